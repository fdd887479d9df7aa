"""MTCNN's second and last stages (RNet, ONet, from the `mtcnn` package) on another detector's proposals.

BlazeFace takes the place of PNet, MTCNN's first stage and the costly one (it scans an image
pyramid). RNet and ONet then run as inside MTCNN: proposals squared, crops of 24x24 and 48x48
normalised to (pixel - 127.5) / 128, RNet's threshold (0.7) and NMS (union, 0.7), ONet's threshold
and NMS (min, 0.7); only RNet looks twice at the boxes it doubts, as PNet's boxes come to it already
regressed. The scores are MTCNN's own, so `min_confidence` keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from mtcnn.stages import StageONet, StageRNet
from mtcnn.utils.bboxes import adjust_bboxes, limit_bboxes, pick_matches, replace_confidence, resize_to_square, \
    smart_nms_from_bboxes
from mtcnn.utils.landmarks import adjust_landmarks

# MTCNN's defaults (`threshold_rnet`, `nms_rnet`, `nms_onet`).
RNET_THRESHOLD, RNET_NMS, ONET_NMS = 0.7, 0.7, 0.7
# A second look for the doubtful: PNet's boxes reach RNet already moved by PNet's own box regression,
# onto MTCNN's idea of a face box; another detector's are not. A box RNet scores between this floor
# and its threshold is moved by RNet's regression and scored again (see BENCHMARKS.md, faces).
FIRST_LOOK_FLOOR = 0.05

EMPTY = np.empty((0, 16))


class MtcnnRefiner:
    def __init__(self, device: str):
        self._device = device
        # Traced once for any number of crops: eager Keras calls cost more than the networks.
        self._rnet = _traced(StageRNet()._model, 24)
        self._onet = _traced(StageONet()._model, 48)

    def refine(self, frames: Sequence[np.ndarray], proposals: Sequence[np.ndarray], threshold: float) -> np.ndarray:
        """RNet (twice where in doubt) then ONet on each frame's proposals (rows x1, y1, x2, y2, score in
        pixels; frames of one size).

        Returns MTCNN's rows: frame index, x1, y1, x2, y2, ONet score, 5 landmark x, 5 landmark y,
        for the faces ONet scores above `threshold`, boxes limited to the frame as MTCNN limits them.
        """
        rows = [np.column_stack([np.full(len(found), index), found[:, :5]])
                for index, found in enumerate(proposals) if len(found)]
        if not rows:
            return EMPTY
        bboxes = resize_to_square(np.concatenate(rows).astype(np.float64))
        with tf.device(self._device):
            frames = tf.convert_to_tensor(np.stack(frames))
        bboxes = pick_matches(self._rnet_look(frames, bboxes), score_threshold=FIRST_LOOK_FLOOR)
        if not len(bboxes):
            return EMPTY
        doubtful = bboxes[:, 5] <= RNET_THRESHOLD
        if doubtful.any():
            bboxes = np.concatenate([bboxes[~doubtful], self._rnet_look(frames, resize_to_square(bboxes[doubtful]))])
        bboxes = pick_matches(bboxes, score_threshold=RNET_THRESHOLD)
        if not len(bboxes):
            return EMPTY
        bboxes = resize_to_square(smart_nms_from_bboxes(bboxes, threshold=RNET_NMS, method="union", initial_sort=True))
        with tf.device(self._device):
            offsets, landmarks, scores = self._onet(self._patches(frames, bboxes, 48))
        landmarks = adjust_landmarks(landmarks, bboxes)
        bboxes = adjust_bboxes(replace_confidence(bboxes, scores.numpy()), offsets.numpy())
        bboxes = pick_matches(np.concatenate([bboxes, landmarks], axis=-1), scores_column=5, score_threshold=threshold)
        if not len(bboxes):
            return EMPTY
        bboxes = smart_nms_from_bboxes(bboxes, threshold=ONET_NMS, method="min", initial_sort=True)
        shapes = np.repeat([frames.shape[1:]], frames.shape[0], axis=0)
        return limit_bboxes(bboxes, images_shapes=shapes, limit_landmarks=False)

    def _rnet_look(self, frames: tf.Tensor, bboxes: np.ndarray) -> np.ndarray:
        """The boxes with RNet's scores, moved by its box regression."""
        with tf.device(self._device):
            offsets, scores = self._rnet(self._patches(frames, bboxes, 24))
        return adjust_bboxes(replace_confidence(bboxes, scores.numpy()), offsets.numpy())

    @staticmethod
    def _patches(frames: tf.Tensor, bboxes: np.ndarray, size: int) -> tf.Tensor:
        """Square crops normalised as MTCNN normalises its frames. Cropped from the uint8 frames and
        normalised after (the resize is linear), so the frames are never copied to float; outside
        the frame MTCNN crops the zeros of its normalised image, which is 127.5 here."""
        height, width = frames.shape[1:3]
        corners = bboxes[:, [2, 1, 4, 3]] / np.asarray([height, width, height, width])
        patches = tf.image.crop_and_resize(frames, corners.astype(np.float32), bboxes[:, 0].astype(np.int32),
                                           (size, size), extrapolation_value=127.5)
        return (patches - 127.5) / 128


def _traced(model, size: int):
    return tf.function(model, input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
