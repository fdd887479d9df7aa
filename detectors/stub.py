"""A model-free detector with deterministic boxes, for plumbing tests and trying the system."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detectors.base import Box, Detection, Detector, Findings


class StubDetector(Detector):
    """One centred box per frame whose confidence is the frame's mean brightness.

    The output depends on the pixels, so two paths that decode the same frames agree
    and two that do not, differ.
    """

    name = "stub"
    label = "object"
    model = "stub"

    def __init__(self, min_confidence: float = 0.0, batch_size: int = 8):
        self.min_confidence = min_confidence
        self.batch_size = batch_size

    def prepare(self, frame_bgr: np.ndarray) -> np.ndarray:
        return cv2.resize(frame_bgr, (32, 32), interpolation=cv2.INTER_AREA)

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        results = []
        for frame in frames:
            confidence = round(float(frame.mean()) / 255.0, 4)
            box = Box(0.25, 0.25, 0.5, 0.5)
            results.append(Findings([Detection(self.label, confidence, box)] if confidence >= self.min_confidence else []))
        return results
