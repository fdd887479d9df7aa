"""Faces and their five landmarks, found by MTCNN (the `mtcnn` package and the weights inside it)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np
from mtcnn import MTCNN

from detectors import tf_runtime
from detectors.base import LANDMARK_NAMES, Box, Detection, Detector


class FaceDetector(Detector):
    """Faces in full-resolution RGB frames (MTCNN builds its own image pyramid)."""

    name = "face"
    label = "face"

    def __init__(self, min_confidence: float = 0.9, batch_size: int | None = None):
        self.min_confidence = min_confidence
        self.batch_size = tf_runtime.batch_size(batch_size, cpu=8, gpu=16)
        self.streams = tf_runtime.inference_streams()
        self.model = f"mtcnn {importlib.metadata.version('mtcnn')}"
        self._mtcnn = MTCNN(device=tf_runtime.configure())
        # ONet keeps scores strictly above `threshold_onet`; the next float down keeps a score equal
        # to `min_confidence` too, as every detector does. Filtering inside ONet, before its NMS,
        # equals filtering its output: NMS visits boxes by falling score, so a box below the
        # threshold never suppresses one above it.
        self._threshold_onet = float(np.nextafter(min_confidence, 0.0))

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Runs MTCNN on batches of one video's frames (all of one size)."""
        if len({frame.shape for frame in frames}) > 1:
            # mtcnn pads mixed sizes to one and then shifts boxes back by the wrong image's padding.
            return [self.detect([frame])[0] for frame in frames]
        results: list[list[Detection]] = []
        for start in range(0, len(frames), self.batch_size):
            results += self._detect_batch(frames[start : start + self.batch_size])
        return results

    def _detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Detection]]:
        # Given a list, mtcnn runs one batch. Its "numpy" output is one array for the whole batch,
        # rows [frame index, x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y], and simply
        # empty when no frame has a face (mtcnn then catches TensorFlow's InvalidArgumentError).
        rows = self._mtcnn.detect_faces(
            list(frames), box_format="xyxy", output_type="numpy", threshold_onet=self._threshold_onet
        )
        height, width = frames[0].shape[:2]
        results: list[list[Detection]] = [[] for _ in frames]
        for row in rows.tolist():
            index, x1, y1, x2, y2, confidence = row[:6]
            xs = np.clip(np.asarray(row[6:11]) / width, 0.0, 1.0).tolist()
            ys = np.clip(np.asarray(row[11:16]) / height, 0.0, 1.0).tolist()
            box = Box.from_corners(x1 / width, y1 / height, x2 / width, y2 / height)
            landmarks = dict(zip(LANDMARK_NAMES, zip(xs, ys)))
            results[int(index)].append(Detection(self.label, confidence, box, landmarks))
        return results
