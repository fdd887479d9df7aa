"""One followed object: its Kalman estimate, its last detection, and whether it is confirmed yet."""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from detectors import Box, Detection
from worker.analysis.association import centre_size, clipped, corners
from worker.analysis.box_flow import BoxMotion
from worker.analysis.kalman import BoxFilter, measurement

# A track's direction is the way its last few observed centres went: more than two, so detector
# jitter does not turn it, few, so a turn does.
DIRECTION_SPAN = 4


@dataclasses.dataclass(eq=False)
class Track:
    """A track is tentative until `hits` detections confirm it; only then does it get an id.

    `box` is the estimate on the latest analysed frame, as (cx, cy, width, height) fractions of the
    frame: the detection on a detector frame, the optical-flow or filter estimate between them.
    """

    detection: Detection  # the last one matched (a weak one with the last reported confidence)
    estimate: BoxFilter
    box: np.ndarray
    seen_ms: float  # timestamp of the last matched detection
    hits: int = 1  # detections matched in a row
    missed: int = 0  # detector frames since the last match
    steps: int = 0  # analysed frames since the last match
    track_id: int | None = None  # set once confirmed
    ended: bool = False
    # The filter right after the last matched detection, and that detection's measurement: after a gap,
    # the track is re-estimated along the straight path from there to the new one (OC-SORT's
    # observation-centric re-update), instead of trusting a velocity that drifted while nothing was seen.
    _observed: BoxFilter | None = None
    _observed_at: np.ndarray | None = None
    _centres: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=DIRECTION_SPAN))

    @classmethod
    def start(cls, detection: Detection, timestamp_ms: float) -> Track:
        box = centre_size(detection.box)
        estimate = BoxFilter.start(measurement(box))
        track = cls(detection, estimate, box, timestamp_ms, _observed=estimate.copy(), _observed_at=measurement(box))
        track._centres.append(box[:2])
        return track

    @property
    def tentative(self) -> bool:
        return self.track_id is None and not self.ended

    def predict(self) -> np.ndarray:
        """Steps the estimate one analysed frame ahead; returns the box it predicts (clipped to the frame)."""
        self.steps += 1
        self.estimate.predict(keep_size=self.missed > 0)
        self.box = clipped(self.estimate.box())
        return self.box

    def match(self, detection: Detection, timestamp_ms: float) -> None:
        """The object was detected (reported, or weakly) on the frame just predicted."""
        box = centre_size(detection.box)
        observed = measurement(box)
        if self.missed and self._observed is not None:
            self.estimate = self._observed
            for step in range(1, self.steps):
                self.estimate.predict()
                self.estimate.update(self._observed_at + (observed - self._observed_at) * step / self.steps)
            self.estimate.predict()
        self.estimate.update(observed)
        self._observed, self._observed_at = self.estimate.copy(), observed
        self._centres.append(box[:2])
        self.detection, self.box, self.seen_ms = detection, box, timestamp_ms
        self.hits += 1
        self.missed = self.steps = 0

    @property
    def observed_centre(self) -> np.ndarray:
        return self._centres[-1]

    def direction(self) -> np.ndarray:
        """The unit vector its observed centres moved along lately; zeros while unknown."""
        step = self._centres[-1] - self._centres[0]
        length = math.hypot(*step)
        return step / length if length > 0 else np.zeros(2)

    def flow(self, origin: np.ndarray, motion: BoxMotion, width: int, height: int) -> None:
        """Optical flow moved the object from its box `origin` on the previous frame: the moved box is the
        estimate, and a measurement for the filter."""
        centre = origin[:2] + np.array([motion.dx / width, motion.dy / height])
        self.box = clipped(np.concatenate([centre, origin[2:] * motion.scale]))
        if self.box[3] > 0:
            self.estimate.update(measurement(self.box))

    def carried_detection(self) -> Detection:
        """The box now, with the last detection's label, confidence and (moved) landmarks."""
        landmarks = self.detection.landmarks
        return Detection(
            label=self.detection.label,
            confidence=self.detection.confidence,
            box=Box.from_corners(*corners(self.box).tolist()),
            landmarks=_moved_landmarks(landmarks, self.detection.box, self.box) if landmarks else None,
            source="tracker",
        )


def _moved_landmarks(
    landmarks: Mapping[str, tuple[float, float]], detected: Box, box: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Landmarks keep their place within the box, as those of a rigidly moving face do."""
    before = centre_size(detected)
    points = np.array(list(landmarks.values()))
    moved = np.clip(box[:2] + (points - before[:2]) * box[2:] / before[2:], 0.0, 1.0)
    return {name: (float(x), float(y)) for name, (x, y) in zip(landmarks, moved)}
