"""People, found by a TF Object Detection API model (by default the packaged SSDLite COCO graph)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors import registry, tf_runtime, views
from detectors.base import Box, Detection, Detector, Findings
from detectors.model_source import ModelFetcher
from detectors.object_detection_model import load_model, load_packaged_model

COCO_PERSON = 1  # class ids of the Object Detection API start at 1


class HumanDetector(Detector):
    """Persons in full-resolution RGB frames, seen as views at the model's own (square) aspect.

    Frames are not pre-resized: the model resizes to 300x300 with the graph's own kernel
    (TF's legacy bilinear); OpenCV's resize differs enough to lose persons the model would find.
    Views are slices of the prepared frame, batched through the graph together, so the graph
    sees `batch_size` times the views per frame.
    """

    name = "human"
    label = "person"
    cpu_batch, gpu_batch = 4, 32  # default frames per model call

    def __init__(self, min_confidence: float = 0.5, model: str | None = None, batch_size: int | None = None,
                 tiles: str = "auto", fetch_model: ModelFetcher | None = None):
        """`model`: a local path or `s3://` location (downloaded by `fetch_model`); None or "ssdlite": the packaged graph.
        `tiles`: the views of a frame the model sees (detectors.views)."""
        self._views = views.tiling(tiles)  # first: a bad setting fails before the model loads
        self.tiles = tiles
        self.min_confidence = min_confidence
        self.streams = tf_runtime.inference_streams()
        self.on_gpu = tf_runtime.on_gpu()  # sets up TensorFlow before the model loads
        packaged = model in (None, registry.MODELS["human"][0])
        self._model = load_packaged_model() if packaged else load_model(model, fetch_model)
        # A model whose input fixes the batch size (TF2 exports fix it at 1) is called with that size.
        self.batch_size = self._model.fixed_batch or tf_runtime.batch_size(batch_size, cpu=self.cpu_batch,
                                                                           gpu=self.gpu_batch)
        self.model = self._model.description

    def views(self, width: int, height: int) -> list[views.View]:
        """The crops of a frame of this size that the model sees."""
        return self._views(width, height)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """Each frame's persons, for one batch of at most `batch_size` frames of one size."""
        size = self.batch_size
        height, width = frames[0].shape[:2]
        frame_views = self.views(width, height)
        batch = _padded_batch(frames, size)
        outputs = self._model.run_batches([views.crop(batch, view) for view in frame_views])
        return [self._persons(outputs, [index + position * size for position in range(len(frame_views))],
                              frame_views, width, height)
                for index in range(len(frames))]

    def _persons(self, outputs: dict[str, np.ndarray], rows: list[int], frame_views: list[views.View],
                 width: int, height: int) -> Findings:
        """One frame's persons from its views' rows of the outputs, mapped to the frame and merged."""
        corners, scores, cut = [], [], []
        for row, view in zip(rows, frame_views):
            count = int(outputs["num_detections"][row])
            keep = ((outputs["detection_classes"][row, :count] == COCO_PERSON)
                    & (outputs["detection_scores"][row, :count] >= self.weak_floor))
            in_view = outputs["detection_boxes"][row, :count][keep][:, [1, 0, 3, 2]]  # (y1, x1, y2, x2) -> x, y
            corners.append(views.to_frame(in_view, view, width, height))
            cut.append(views.cut_by_view(in_view, view, width, height))
            scores.append(outputs["detection_scores"][row, :count][keep])
        corners, scores, cut = np.concatenate(corners), np.concatenate(scores), np.concatenate(cut)
        if len(frame_views) > 1:  # one view: the graph's own NMS has already merged its boxes
            corners, kept = views.merge(corners, scores.tolist(), cut.tolist())
            scores = scores[kept]
        strong = scores >= self.min_confidence  # compared as float32, as the scores are
        return Findings(self._detections(corners[strong], scores[strong]),
                        self._detections(corners[~strong], scores[~strong]))

    def _detections(self, corners: np.ndarray, scores: np.ndarray) -> list[Detection]:
        boxes = [Box.from_corners(*box) for box in corners.tolist()]
        return [Detection(self.label, score, box)
                for box, score in zip(boxes, scores.tolist()) if box.width > 0 and box.height > 0]


def _padded_batch(frames: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Stacks frames into a batch of exactly `size`, zero frames after them, so every call has one shape."""
    batch = np.zeros((size, *frames[0].shape), dtype=np.uint8)
    batch[: len(frames)] = frames
    return batch
