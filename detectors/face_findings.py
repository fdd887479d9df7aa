"""MTCNN's output rows turned into each frame's findings: faces at or above `min_confidence`, and weak ones."""

from __future__ import annotations

import numpy as np

from detectors.base import LANDMARK_NAMES, Box, Detection, Findings


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
