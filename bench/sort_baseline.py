"""SORT as its paper describes it (Bewley et al., "Simple Online and Realtime Tracking", ICIP 2016), the baseline.

Written here from the paper, not copied from its GPL-3.0 code: a constant-velocity Kalman filter
over (centre x, centre y, area, aspect) with a constant aspect, IoU matching with the Hungarian
algorithm at IoU >= 0.3, tracks deleted after one unmatched frame (T_lost = 1), and a track
reported on a frame only when it was detected there and has been detected on min_hits = 3 frames in
a row (or the sequence is that young). The noise settings are the published implementation's.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from worker.analysis.association import iou_matrix

IOU_MIN = 0.3
MAX_AGE = 1
MIN_HITS = 3

_F = np.eye(7) + np.eye(7, k=4)
_H = np.eye(4, 7)
_Q = np.diag([1, 1, 1, 1, 0.01, 0.01, 0.0001])
_R = np.diag([1, 1, 10, 10])


class _Track:
    def __init__(self, box: np.ndarray, track_id: int):
        self.x = np.concatenate([_observation(box), np.zeros(3)])
        self.p = np.diag([10, 10, 10, 10, 10000, 10000, 10000]).astype(float)
        self.id = track_id
        self.since_update = 0
        self.streak = 0

    def predict(self) -> np.ndarray:
        if self.x[6] + self.x[2] <= 0:  # an area about to turn negative stops shrinking
            self.x[6] = 0.0
        self.x = _F @ self.x
        self.p = _F @ self.p @ _F.T + _Q
        if self.since_update > 0:
            self.streak = 0
        self.since_update += 1
        return _box(self.x)

    def update(self, box: np.ndarray) -> None:
        s = _H @ self.p @ _H.T + _R
        gain = self.p @ _H.T @ np.linalg.inv(s)
        self.x = self.x + gain @ (_observation(box) - _H @ self.x)
        self.p = (np.eye(7) - gain @ _H) @ self.p
        self.since_update = 0
        self.streak += 1


class Sort:
    """Feed each frame's detections (n, 4) as x1, y1, x2, y2; get back (id, box) for the tracks reported."""

    def __init__(self):
        self._tracks: list[_Track] = []
        self._frames = 0
        self._started = 0

    def update(self, boxes: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._frames += 1
        predicted = np.array([t.predict() for t in self._tracks]).reshape(-1, 4)
        keep = np.isfinite(predicted).all(axis=1)
        self._tracks = [t for t, k in zip(self._tracks, keep) if k]
        predicted = predicted[keep]
        iou = _iou(boxes, predicted)
        matched_boxes, matched_tracks = set(), set()
        if iou.size:
            for d, t in zip(*linear_sum_assignment(-iou)):
                if iou[d, t] >= IOU_MIN:
                    self._tracks[t].update(boxes[d])
                    matched_boxes.add(d)
                    matched_tracks.add(t)
        for d in range(len(boxes)):
            if d not in matched_boxes:
                self._started += 1
                self._tracks.append(_Track(boxes[d], self._started))
        reported = [(t.id, _box(t.x)) for t in self._tracks
                    if t.since_update < 1 and (t.streak >= MIN_HITS or self._frames <= MIN_HITS)]
        self._tracks = [t for t in self._tracks if t.since_update <= MAX_AGE]
        return reported


def _observation(box: np.ndarray) -> np.ndarray:
    width, height = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + width / 2, box[1] + height / 2, width * height, width / height])


def _box(x: np.ndarray) -> np.ndarray:
    width = np.sqrt(max(x[2] * x[3], 0.0))
    height = x[2] / width if width > 0 else 0.0
    return np.array([x[0] - width / 2, x[1] - height / 2, x[0] + width / 2, x[1] + height / 2])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every x1, y1, x2, y2 box in `a` with every one in `b`."""
    return iou_matrix(_centre_size(a), _centre_size(b))


def _centre_size(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
