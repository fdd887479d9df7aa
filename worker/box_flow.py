"""Moves boxes from one gray frame to the next with sparse Lucas-Kanade optical flow (median flow).

Corners are found inside each box on the previous frame, tracked forward and back, and the
points that come back to where they started vote: the median displacement moves the box and
the median change of the distances between points scales it (Kalal et al., "Forward-Backward
Error", 2010).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# Corners come from the box's central part: its edges are mostly background, which stays put.
INNER_MARGIN = 0.2
MAX_POINTS_PER_BOX = 24
# Fewer surviving points than this and the median is no longer a vote: the caller falls back.
MIN_POINTS = 5
# A point that does not come back to within this many pixels was tracked onto something else.
MAX_FORWARD_BACKWARD_PX = 1.0
LUCAS_KANADE = {
    "winSize": (15, 15),
    "maxLevel": 3,  # a 4-level pyramid follows motions of tens of pixels between analysed frames
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
}


@dataclasses.dataclass(frozen=True)
class BoxMotion:
    """How a box moved: a shift in pixels and a scale factor about its centre."""

    dx: float
    dy: float
    scale: float


def box_motions(
    previous: np.ndarray, current: np.ndarray, boxes: np.ndarray, groups: list[str]
) -> list[BoxMotion | None]:
    """For each box (x1, y1, x2, y2 in pixels of `previous`), its motion into `current`.

    Where two boxes of the same group (say, two people) overlap, the points belong to whichever
    object is in front, so they vote for neither. None where too few points could be followed
    (no texture, occlusion, motion blur).
    """
    groups = np.asarray(groups)
    seeds = [
        _outside(_corners_inside(previous, box), boxes[(groups == groups[i]) & (np.arange(len(boxes)) != i)])
        for i, box in enumerate(boxes)
    ]
    counts = [len(points) for points in seeds]
    if not any(counts):
        return [None] * len(boxes)
    start = np.concatenate(seeds)
    # One forward and one backward call for all boxes together: each call builds both pyramids.
    end, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, **LUCAS_KANADE)
    back, back_status, _ = cv2.calcOpticalFlowPyrLK(current, previous, end, None, **LUCAS_KANADE)
    round_trip_error = np.linalg.norm((start - back).reshape(-1, 2), axis=1)
    followed = (status.ravel() == 1) & (back_status.ravel() == 1) & (round_trip_error < MAX_FORWARD_BACKWARD_PX)
    splits = np.cumsum(counts)[:-1]
    return [
        _median_motion(s.reshape(-1, 2)[ok], e.reshape(-1, 2)[ok])
        for s, e, ok in zip(np.split(start, splits), np.split(end, splits), np.split(followed, splits))
    ]


def _corners_inside(gray: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Good features to track in the central part of `box`, as float32 (n, 1, 2) frame coordinates."""
    x1, y1, x2, y2 = box
    margin_x, margin_y = (x2 - x1) * INNER_MARGIN, (y2 - y1) * INNER_MARGIN
    left, top = max(int(x1 + margin_x), 0), max(int(y1 + margin_y), 0)
    right, bottom = min(int(np.ceil(x2 - margin_x)), gray.shape[1]), min(int(np.ceil(y2 - margin_y)), gray.shape[0])
    if right - left < 3 or bottom - top < 3:
        return np.empty((0, 1, 2), np.float32)
    corners = cv2.goodFeaturesToTrack(
        gray[top:bottom, left:right], maxCorners=MAX_POINTS_PER_BOX, qualityLevel=0.01, minDistance=2
    )
    if corners is None:
        return np.empty((0, 1, 2), np.float32)
    return corners + np.array([left, top], np.float32)


def _outside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The points (n, 1, 2) that lie in none of `boxes` (k, 4)."""
    xy = points.reshape(-1, 1, 2)
    inside = ((xy >= boxes[None, :, :2]) & (xy <= boxes[None, :, 2:])).all(axis=2).any(axis=1)
    return points[~inside]


def _median_motion(start: np.ndarray, end: np.ndarray) -> BoxMotion | None:
    if len(start) < MIN_POINTS:
        return None
    dx, dy = np.median(end - start, axis=0)
    pairs = np.triu_indices(len(start), k=1)
    before = np.linalg.norm(start[pairs[0]] - start[pairs[1]], axis=1)
    after = np.linalg.norm(end[pairs[0]] - end[pairs[1]], axis=1)
    spread = before > 1.0  # points closer than a pixel say nothing about scale
    scale = float(np.median(after[spread] / before[spread])) if spread.any() else 1.0
    return BoxMotion(float(dx), float(dy), scale)
