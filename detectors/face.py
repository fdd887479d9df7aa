"""The `face` detector's models: MTCNN (the `mtcnn` package and the weights inside it), and the
default, BlazeFace proposals refined by MTCNN's RNet and ONet (detectors.blazeface_mtcnn)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import numpy as np
from mtcnn import MTCNN

from detectors import registry, tf_runtime
from detectors.base import Detector, Findings
from detectors.errors import UnknownDetector
from detectors.face_findings import OnetScoredFaces

MODELS = registry.MODELS["face"]
DEFAULT_MODEL = MODELS[0]


def build_face_detector(model: str = DEFAULT_MODEL, **options) -> Detector:
    """The `face` detector with the named model (`blazeface-mtcnn`, the default, or `mtcnn`)."""
    if model == "mtcnn":
        return FaceDetector(**options)
    if model == "blazeface-mtcnn":
        from detectors.blazeface_mtcnn import BlazeFaceMtcnnDetector

        return BlazeFaceMtcnnDetector(**options)
    raise UnknownDetector(f"unknown face model {model!r}; known models: {', '.join(MODELS)}")


class FaceDetector(OnetScoredFaces):
    """Faces in full-resolution RGB frames (MTCNN builds its own image pyramid)."""

    def __init__(self, min_confidence: float = 0.9, batch_size: int | None = None):
        super().__init__(min_confidence, batch_size)
        self.streams = tf_runtime.inference_streams()
        self.model = f"mtcnn {importlib.metadata.version('mtcnn')}"
        self._mtcnn = MTCNN(device=tf_runtime.configure())

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """Runs MTCNN on one batch of one video's frames (all of one size)."""
        if len({frame.shape for frame in frames}) > 1:
            # mtcnn pads mixed sizes to one and then shifts boxes back by the wrong image's padding.
            return [self.detect_batch([frame])[0] for frame in frames]
        # Given a list, mtcnn runs one batch. Its "numpy" output is one array for the whole batch,
        # rows [frame index, x1, y1, x2, y2, confidence, 5 landmark x, 5 landmark y], and simply
        # empty when no frame has a face (mtcnn then catches TensorFlow's InvalidArgumentError).
        rows = self._mtcnn.detect_faces(
            list(frames), box_format="xyxy", output_type="numpy", threshold_onet=self._above_weak_floor
        )
        return self._findings(rows, frames)
