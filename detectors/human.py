"""People, found by a TF Object Detection API model (by default the packaged SSDLite COCO graph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors import tf_runtime
from detectors.base import Box, Detection, Detector, Findings
from detectors.model_source import ModelFetcher
from detectors.object_detection_model import load_model, load_packaged_model

COCO_PERSON = 1  # class ids of the Object Detection API start at 1


class HumanDetector(Detector):
    """Persons in full-resolution RGB frames.

    Frames are not pre-resized: the model resizes to 300x300 with the graph's own kernel
    (TF's legacy bilinear); OpenCV's resize differs enough to lose persons the model would find.
    """

    name = "human"
    label = "person"
    cpu_batch, gpu_batch = 4, 32  # default frames per model call

    def __init__(self, min_confidence: float = 0.5, model: str | None = None, batch_size: int | None = None,
                 fetch_model: ModelFetcher | None = None):
        """`model`: a local path or `s3://` location (downloaded by `fetch_model`); else the packaged graph."""
        self.min_confidence = min_confidence
        self.streams = tf_runtime.inference_streams()
        self.on_gpu = tf_runtime.on_gpu()  # sets up TensorFlow before the model loads
        self._model = load_packaged_model() if model is None else load_model(model, fetch_model)
        # A model whose input fixes the batch size (TF2 exports fix it at 1) is called with that size.
        self.batch_size = self._model.fixed_batch or tf_runtime.batch_size(batch_size, cpu=self.cpu_batch,
                                                                           gpu=self.gpu_batch)
        self.model = self._model.description

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """Runs the model on one batch of one video's frames (all of one size)."""
        outputs = self._model(_padded_batch(frames, self.batch_size))
        return [self._persons(outputs, index) for index in range(len(frames))]

    def _persons(self, outputs: dict[str, np.ndarray], index: int) -> Findings:
        count = int(outputs["num_detections"][index])
        boxes = outputs["detection_boxes"][index, :count]
        scores = outputs["detection_scores"][index, :count]
        persons = outputs["detection_classes"][index, :count] == COCO_PERSON
        strong = persons & (scores >= self.min_confidence)  # compared as float32, as the scores are
        return Findings(self._detections(boxes, scores, strong),
                        self._detections(boxes, scores, persons & ~strong & (scores >= self.weak_floor)))

    def _detections(self, boxes: np.ndarray, scores: np.ndarray, keep: np.ndarray) -> list[Detection]:
        return [
            Detection(self.label, score, Box.from_corners(x1, y1, x2, y2))
            for (y1, x1, y2, x2), score in zip(boxes[keep].tolist(), scores[keep].tolist())
        ]


def _padded_batch(frames: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Stacks frames into a batch of exactly `size`, zero frames after them, so every call has one shape."""
    batch = np.zeros((size, *frames[0].shape), dtype=np.uint8)
    batch[: len(frames)] = frames
    return batch
