"""MTCNN's last stage (ONet, from the `mtcnn` package) on face proposals from another detector.

ONet scores each proposal, regresses its box and predicts the five landmarks, exactly as it
does on RNet's proposals inside MTCNN: proposals squared, crops of 48x48 normalised to
(pixel - 127.5) / 128, ONet's own threshold and its NMS (min-overlap 0.7). Its scores are
therefore MTCNN's, and `min_confidence` keeps its meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from mtcnn.stages import StageONet
from mtcnn.utils.bboxes import adjust_bboxes, limit_bboxes, pick_matches, replace_confidence, resize_to_square, \
    smart_nms_from_bboxes
from mtcnn.utils.landmarks import adjust_landmarks

ONET_SIZE = (48, 48)
ONET_NMS = 0.7  # MTCNN's default `nms_onet`


class OnetRefiner:
    def __init__(self, device: str):
        self._device = device
        self._onet = StageONet()._model

    def refine(self, frames: Sequence[np.ndarray], proposals: Sequence[np.ndarray], threshold: float) -> np.ndarray:
        """ONet on each frame's proposals (rows x1, y1, x2, y2, score in pixels; frames of one size).

        Returns MTCNN's rows: frame index, x1, y1, x2, y2, ONet score, 5 landmark x, 5 landmark y,
        for the faces scored above `threshold`, boxes limited to the frame as MTCNN limits them.
        """
        rows = [np.column_stack([np.full(len(found), index), found[:, :5]])
                for index, found in enumerate(proposals) if len(found)]
        if not rows:
            return np.empty((0, 16))
        bboxes = resize_to_square(np.concatenate(rows).astype(np.float64))
        with tf.device(self._device):
            offsets, landmarks, scores = self._onet(self._patches(frames, bboxes))
        landmarks = adjust_landmarks(landmarks, bboxes)
        bboxes = adjust_bboxes(replace_confidence(bboxes, scores.numpy()), offsets.numpy())
        bboxes = pick_matches(np.concatenate([bboxes, landmarks], axis=-1), scores_column=5, score_threshold=threshold)
        if not len(bboxes):
            return np.empty((0, 16))
        bboxes = smart_nms_from_bboxes(bboxes, threshold=ONET_NMS, method="min", initial_sort=True)
        shapes = np.asarray([frame.shape for frame in frames])
        return limit_bboxes(bboxes, images_shapes=shapes, limit_landmarks=False)

    def _patches(self, frames: Sequence[np.ndarray], bboxes: np.ndarray) -> tf.Tensor:
        """48x48 crops normalised as MTCNN normalises its frames. Cropped from the uint8 frames and
        normalised after (the resize is linear): the frames are never copied to float. Outside
        the frame MTCNN crops zeros of its normalised image, which is 127.5 here."""
        height, width = frames[0].shape[:2]
        corners = bboxes[:, [2, 1, 4, 3]] / np.asarray([height, width, height, width])
        patches = tf.image.crop_and_resize(np.stack(frames), corners.astype(np.float32), bboxes[:, 0].astype(np.int32),
                                           ONET_SIZE, extrapolation_value=127.5)
        return (patches - 127.5) / 128
