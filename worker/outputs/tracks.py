"""The result's `tracks`: one entry per object followed, with when it was seen and its best box.

Built frame by frame (memory grows with the number of tracks, not the length of the video),
so the worker can feed it as frames finish and `videoscan render` from a result on disk.

Flickers: a track seen on fewer than `MIN_FRAMES` analysed frames is left out of the list
(its detections stay in `frames`). A one- or two-frame track is nearly always a false
detection, or a real object lost and found again under a new id; either way a list of who
appeared when is better without it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from detectors import Detection
from worker.outputs.frames import FrameDetections

MIN_FRAMES = 3


@dataclasses.dataclass
class Track:
    track_id: int
    label: str
    first_index: int
    first_ms: float
    last_index: int
    last_ms: float
    frames: int = 0
    max_confidence: float = 0.0
    best_index: int = -1
    best_ms: float = 0.0
    best: Detection | None = None
    # The frame at the best box (BGR), kept only when frames are offered with images.
    best_crop: np.ndarray | None = None
    thumbnail: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.label, self.track_id

    def to_json(self) -> dict[str, Any]:
        box = self.best.box
        entry = {"track_id": self.track_id, "label": self.label,
                 "first_index": self.first_index, "last_index": self.last_index,
                 "first_ms": self.first_ms, "last_ms": self.last_ms, "frames": self.frames,
                 "max_confidence": round(self.max_confidence, 4),
                 "best": {"index": self.best_index, "timestamp_ms": self.best_ms,
                          "box": {name: getattr(box, name) for name in ("left", "top", "width", "height")}}}
        if self.thumbnail:
            entry["thumbnail"] = self.thumbnail
        return entry


class TrackBook:
    """Collects tracks from frames given in index order.

    The best box is the highest-scored one the detector found; a track only ever carried by the
    tracker (possible with `detect_every` > 1) takes its highest-scored carried box.
    `crop` (image, box) -> array, when given, keeps the crop of each track's best box as it
    changes, so thumbnails need no second pass over the video.
    """

    def __init__(self, crop=None):
        self._tracks: dict[tuple[str, int], Track] = {}
        self._crop = crop

    def add(self, frame: FrameDetections, image: np.ndarray | None = None) -> None:
        for detection in frame.detections:
            if detection.track_id is None:
                continue
            track = self._tracks.get((detection.label, detection.track_id))
            if track is None:
                track = Track(detection.track_id, detection.label, frame.index, frame.timestamp_ms,
                              frame.index, frame.timestamp_ms)
                self._tracks[track.key] = track
            track.last_index, track.last_ms = frame.index, frame.timestamp_ms
            track.frames += 1
            if _better(detection, track.best):
                track.best, track.best_index, track.best_ms = detection, frame.index, frame.timestamp_ms
                track.max_confidence = max(track.max_confidence, detection.confidence)
                if self._crop is not None and image is not None:
                    track.best_crop = self._crop(image, detection.box)
            elif detection.source == "detector":
                track.max_confidence = max(track.max_confidence, detection.confidence)

    def tracks(self, min_frames: int = MIN_FRAMES) -> list[Track]:
        """Tracks seen on at least `min_frames` analysed frames, in order of first appearance."""
        kept = [t for t in self._tracks.values() if t.frames >= min_frames]
        return sorted(kept, key=lambda t: (t.first_index, t.label, t.track_id))


def _better(candidate: Detection, best: Detection | None) -> bool:
    """Detector boxes beat carried ones; then the higher confidence wins (the earlier on a tie)."""
    if best is None:
        return True
    rank = (candidate.source == "detector", candidate.confidence)
    return rank > (best.source == "detector", best.confidence)
