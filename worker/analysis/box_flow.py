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
# 16 points and an 11-pixel window follow vtest.avi's people as 24 and 15 do (the same agreement
# with the every-frame detector at detect_every 5 and 10) for a third less time.
MAX_POINTS_PER_BOX = 16
# Fewer surviving points than this and the median is no longer a vote: the caller falls back.
MIN_POINTS = 5
# A point that does not come back to within this many pixels was tracked onto something else.
MAX_FORWARD_BACKWARD_PX = 1.0
LUCAS_KANADE = {
    "winSize": (11, 11),
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
    return _median_motions(start.reshape(-1, 2), end.reshape(-1, 2), followed, np.repeat(np.arange(len(boxes)), counts),
                           len(boxes))


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


def _median_motions(
    start: np.ndarray, end: np.ndarray, followed: np.ndarray, box_of: np.ndarray, boxes: int
) -> list[BoxMotion | None]:
    """Each box's median shift and median change of its points' pairwise distances, for all boxes
    at once: the points go into a (boxes, MAX_POINTS_PER_BOX) grid padded with NaN, which the
    medians skip (a loop over boxes cost about 1 ms a frame in numpy calls alone)."""
    start, end, box_of = start[followed], end[followed], box_of[followed]
    counts = np.bincount(box_of, minlength=boxes)
    slot = np.arange(len(box_of)) - np.repeat(np.cumsum(counts) - counts, counts)
    grid_start = np.full((boxes, MAX_POINTS_PER_BOX, 2), np.nan)
    grid_end = np.full((boxes, MAX_POINTS_PER_BOX, 2), np.nan)
    grid_start[box_of, slot], grid_end[box_of, slot] = start, end
    voting = counts >= MIN_POINTS
    motions: list[BoxMotion | None] = [None] * boxes
    if not voting.any():
        return motions
    grid_start, grid_end = grid_start[voting], grid_end[voting]
    shift = _row_medians((grid_end - grid_start).transpose(0, 2, 1).reshape(-1, MAX_POINTS_PER_BOX)).reshape(-1, 2)
    first, second = np.triu_indices(MAX_POINTS_PER_BOX, k=1)
    before = np.linalg.norm(grid_start[:, first] - grid_start[:, second], axis=2)
    after = np.linalg.norm(grid_end[:, first] - grid_end[:, second], axis=2)
    # Points closer than a pixel say nothing about scale; padding compares as False too.
    ratio = np.where(before > 1.0, after / np.where(before > 1.0, before, 1.0), np.nan)
    measured = ~np.isnan(ratio).all(axis=1)
    scale = np.ones(len(ratio))
    scale[measured] = _row_medians(ratio[measured])
    for box, (dx, dy), factor in zip(np.flatnonzero(voting), shift.tolist(), scale.tolist()):
        motions[box] = BoxMotion(dx, dy, factor)
    return motions


def _row_medians(values: np.ndarray) -> np.ndarray:
    """The median of each row of a 2-D array, NaN meaning no value (each row has one at least).
    np.nanmedian would do, through masked arrays, at ten times the cost."""
    ordered = np.sort(values, axis=1)  # NaN sorts last
    present = np.count_nonzero(~np.isnan(values), axis=1)
    rows = np.arange(len(values))
    return (ordered[rows, (present - 1) // 2] + ordered[rows, present // 2]) / 2
