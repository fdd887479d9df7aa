"""The detector plug-in kind (one abstract `detect_batch`; `detect` batches once) and the detections it returns."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Detections scored under `min_confidence` but at or above this share of it are weak: never
# reported, they let the tracker keep following an object the detector still half sees.
# Persons from 0.25, faces from 0.45: well above ByteTrack's 0.1, so a weak box is rarely
# anything but the tracked object (see BENCHMARKS.md, interval detection).
WEAK_SHARE = 0.5


@dataclasses.dataclass(frozen=True)
class Box:
    """A box as fractions of the frame (left/top/width/height, as Amazon Rekognition Video)."""

    left: float
    top: float
    width: float
    height: float

    def __post_init__(self):
        values = (self.left, self.top, self.width, self.height)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"box has a non-finite coordinate: {values}")
        if self.width < 0 or self.height < 0:
            raise ValueError(f"box has a negative size: {values}")
        if self.left < 0 or self.top < 0 or self.left + self.width > 1 + 1e-6 or self.top + self.height > 1 + 1e-6:
            raise ValueError(f"box is outside the frame: {values}")

    @classmethod
    def from_corners(cls, x1: float, y1: float, x2: float, y2: float) -> "Box":
        """Builds a box from normalised corners, clipped to the frame."""
        x1, x2 = sorted((min(max(x1, 0.0), 1.0), min(max(x2, 0.0), 1.0)))
        y1, y2 = sorted((min(max(y1, 0.0), 1.0), min(max(y2, 0.0), 1.0)))
        return cls(x1, y1, x2 - x1, y2 - y1)


@dataclasses.dataclass(frozen=True)
class Detection:
    label: str
    confidence: float
    box: Box
    # Normalised (x, y) points by name; faces carry the five of LANDMARK_NAMES.
    landmarks: Mapping[str, tuple[float, float]] | None = None
    # Set by the tracker: the same id for the same object across frames (unique per label),
    # and whether the detector found this box or the tracker carried it forward.
    track_id: int | None = None
    source: str = "detector"

    def __post_init__(self):
        if not self.label:
            raise ValueError("detection has no label")
        if self.source not in ("detector", "tracker"):
            raise ValueError(f"source must be 'detector' or 'tracker', not {self.source!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside [0, 1]")
        for name, (x, y) in (self.landmarks or {}).items():
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"landmark {name} ({x}, {y}) is outside the frame")


@dataclasses.dataclass(frozen=True)
class Findings:
    """One frame's detections at or above the detector's `min_confidence`, and its weak ones."""

    detections: list[Detection]
    weak: list[Detection] = dataclasses.field(default_factory=list)


class Detector(abc.ABC):
    """Finds one kind of object in batches of frames.

    The pipeline calls `prepare` once per frame in its decode thread (so resizing and
    colour conversion overlap inference), then `detect` on the prepared frames.
    """

    name: str
    label: str
    model: str
    min_confidence: float
    batch_size: int = 8
    # How many `detect` calls the pipeline may run at once, on different batches. One unless
    # the detector is safe to call from several threads and gains from it.
    streams: int = 1
    # Whether it runs on a GPU: the video then gets more decoding threads (see worker.analysis.video).
    on_gpu: bool = False

    def prepare(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Turns an OpenCV BGR frame into this model's input; RGB by default."""
        return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """Findings (reported and weak) for each prepared frame; the one place that splits
        frames into batches of `batch_size`."""
        results: list[Findings] = []
        for start in range(0, len(frames), self.batch_size):
            results.extend(self.detect_batch(frames[start : start + self.batch_size]))
        return results

    @abc.abstractmethod
    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[Findings]:
        """Findings for each frame of one batch of at most `batch_size` prepared frames: its
        detections at or above `min_confidence`, and its weak ones (at or above `weak_floor`).
        A detector that cannot tell has no weak ones."""

    @property
    def weak_floor(self) -> float:
        return self.min_confidence * WEAK_SHARE

    def describe(self) -> dict:
        """The detector's entry in a result's `detectors` list."""
        return {"name": self.name, "label": self.label, "model": self.model, "min_confidence": self.min_confidence}
