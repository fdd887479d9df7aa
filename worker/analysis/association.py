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


def assign(iou: np.ndarray, threshold: float, bonus: np.ndarray | None = None) -> list[tuple[int, int]]:
    """(row, column) pairs with the largest total IoU (plus `bonus`, where given) among pairs whose IoU is
    at or above `threshold`, in row order."""
    if not iou.size:
        return []
    admissible = iou >= threshold
    # An admissible pair always scores above the inadmissible ones (at zero), whatever its bonus.
    score = np.where(admissible, np.maximum(iou + (0.0 if bonus is None else bonus), 1e-6), 0.0)
    rows, columns = linear_sum_assignment(score, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, columns) if admissible[r, c]]


def direction_agreement(tracks: np.ndarray, origins: np.ndarray, found: np.ndarray) -> np.ndarray:
    """How well the step from each track's last observed centre to each detection's centre keeps the
    track's direction (OC-SORT's observation-centric momentum, Cao et al. 2023): from 0.5 (same
    direction) to -0.5 (opposite); 0 for a track without a direction. `tracks` (n, 2) unit vectors or
    zeros, `origins` (n, 2) last observed centres, `found` (m, 4) detection boxes."""
    steps = found[None, :, :2] - origins[:, None, :]
    lengths = np.linalg.norm(steps, axis=2, keepdims=True)
    steps = np.divide(steps, lengths, out=np.zeros_like(steps), where=lengths > 0)
    cosine = np.clip((steps * tracks[:, None, :]).sum(axis=2), -1.0, 1.0)
    known = (np.abs(tracks).sum(axis=1) > 0)[:, None] & (lengths[..., 0] > 0)
    return np.where(known, (np.pi / 2 - np.arccos(cosine)) / np.pi, 0.0)


def centre_size(box: Box) -> np.ndarray:
    return np.array([box.left + box.width / 2, box.top + box.height / 2, box.width, box.height])


def corners(box: np.ndarray) -> np.ndarray:
    return np.concatenate([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], axis=-1)


def clipped(box: np.ndarray) -> np.ndarray:
    """The part of `box` inside the frame (a negative size is zero)."""
    cx, cy, width, height = box.tolist()  # plain floats: numpy's clip costs more than the arithmetic here
    width, height = max(width, 0.0), max(height, 0.0)
    x1, x2 = min(max(cx - width / 2, 0.0), 1.0), min(max(cx + width / 2, 0.0), 1.0)
    y1, y2 = min(max(cy - height / 2, 0.0), 1.0), min(max(cy + height / 2, 0.0), 1.0)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])
