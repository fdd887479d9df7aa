"""Faces scored by MTCNN's ONet (both face models): MTCNN's output rows turned into each frame's findings,
faces at or above `min_confidence` and weak ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors import tf_runtime
from detectors.base import LANDMARK_NAMES, Box, Detection, Detector, Findings


class OnetScoredFaces(Detector):
    """What the face models share: ONet's scores, and the floors compared with them."""

    name = "face"
    label = "face"
    cpu_batch, gpu_batch = 8, 16  # default frames per model call

    def __init__(self, min_confidence: float, batch_size: int | None):
        self.min_confidence = min_confidence
        self.batch_size = tf_runtime.batch_size(batch_size, cpu=self.cpu_batch, gpu=self.gpu_batch)
        self.on_gpu = tf_runtime.on_gpu()
        # ONet keeps scores strictly above its threshold; the next float down keeps a score equal
        # to the floor too, as every detector does. ONet keeps the weak faces as well, and they
        # change none of the others: its NMS lets a box be suppressed only by higher-scored ones.
        self._above_weak_floor = float(np.nextafter(self.weak_floor, 0.0))
        self._above_min_confidence = float(np.nextafter(min_confidence, 0.0))

    def _findings(self, rows: np.ndarray, frames: Sequence[np.ndarray]) -> list[Findings]:
        height, width = frames[0].shape[:2]
        return findings_from_rows(rows, len(frames), height, width, self.label, self._above_min_confidence)



def findings_from_rows(rows: np.ndarray, frames: int, height: int, width: int, label: str,
                       strong_above: float) -> list[Findings]:
    """`rows`: frame index, x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y (pixels), the
    faces kept down to the weak floor. Those scored above `strong_above` are reported."""
    results = [Findings([], []) for _ in range(frames)]
    # Compared as ONet compares, on the same array.
    strong = (rows[:, 5] > strong_above).tolist() if len(rows) else []
    for row, is_strong in zip(rows.tolist(), strong):
        index, x1, y1, x2, y2, confidence = row[:6]
        xs = np.clip(np.asarray(row[6:11]) / width, 0.0, 1.0).tolist()
        ys = np.clip(np.asarray(row[11:16]) / height, 0.0, 1.0).tolist()
        box = Box.from_corners(x1 / width, y1 / height, x2 / width, y2 / height)
        landmarks = dict(zip(LANDMARK_NAMES, zip(xs, ys)))
        found = results[int(index)]
        (found.detections if is_strong else found.weak).append(Detection(label, confidence, box, landmarks))
    return results
