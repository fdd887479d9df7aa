"""Boxes as (centre x, centre y, width, height) arrays, their overlaps, and the optimal one-to-one matching."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from detectors import Box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (n, 4) with every box in `b` (m, 4), both centre/size."""
    a, b = corners(a)[:, None, :], corners(b)[None, :, :]
    overlap = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0.0, None).prod(-1)
    union = (a[..., 2:] - a[..., :2]).prod(-1) + (b[..., 2:] - b[..., :2]).prod(-1) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def assign(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs with the largest total IoU among pairs at or above `threshold`, in row order."""
    if not iou.size:
        return []
    admissible = np.where(iou >= threshold, iou, 0.0)
    rows, columns = linear_sum_assignment(admissible, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, columns) if admissible[r, c] > 0]


def centre_size(box: Box) -> np.ndarray:
    return np.array([box.left + box.width / 2, box.top + box.height / 2, box.width, box.height])


def corners(box: np.ndarray) -> np.ndarray:
    return np.concatenate([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], axis=-1)


def clipped(box: np.ndarray) -> np.ndarray:
    """The part of `box` inside the frame (a negative size is zero)."""
    box = np.concatenate([box[:2], np.maximum(box[2:], 0.0)])
    x1, y1, x2, y2 = np.clip(corners(box), 0.0, 1.0)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
