"""The result document: frames stream to disk as they finish; the complete JSON is assembled once."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

from detectors import Detection

SCHEMA = "videoscan/detections@1"
_DIGITS = 4


def detection_json(detection: Detection) -> dict[str, Any]:
    """One detection in the contract's shape, rounded to 4 decimals (sub-pixel at 8K)."""
    box = detection.box
    entry: dict[str, Any] = {
        "label": detection.label,
        "confidence": round(detection.confidence, _DIGITS),
        "box": {name: round(getattr(box, name), _DIGITS) for name in ("left", "top", "width", "height")},
    }
    if detection.landmarks is not None:
        entry["landmarks"] = {name: [round(x, _DIGITS), round(y, _DIGITS)] for name, (x, y) in detection.landmarks.items()}
    entry["track_id"] = detection.track_id
    entry["source"] = detection.source
    return entry


class ResultWriter:
    """Collects frames in a temporary file so memory stays flat however long the video is.

    `write` then produces the contract's document in one pass, with the header and
    summary that are only known once the last frame is done. The file goes in `directory`,
    the job's private work directory, which a restarted worker removes if this one is killed.
    """

    def __init__(self, labels: Iterable[str], directory: str):
        self._labels = list(dict.fromkeys(labels))
        self._frames = tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".frames", dir=directory)
        self._first = True
        self.frames_analyzed = 0
        self.counts = dict.fromkeys(self._labels, 0)
        self.max_in_frame = dict.fromkeys(self._labels, 0)
        self.tracks = dict.fromkeys(self._labels, 0)

    def add_frame(self, index: int, timestamp_ms: float, detections: Sequence[Detection]) -> None:
        frame = {"index": index, "timestamp_ms": timestamp_ms, "detections": [detection_json(d) for d in detections]}
        self._frames.write(("" if self._first else ",\n") + json.dumps(frame, separators=(",", ":")))
        self._first = False
        self.frames_analyzed += 1
        per_label: dict[str, int] = {}
        for detection in detections:
            per_label[detection.label] = per_label.get(detection.label, 0) + 1
        for label, count in per_label.items():
            self.counts[label] = self.counts.get(label, 0) + count
            self.max_in_frame[label] = max(self.max_in_frame.get(label, 0), count)

    def set_tracks(self, tracks: dict[str, int]) -> None:
        """Distinct objects followed per label (how many people appeared, not how many boxes)."""
        self.tracks.update(tracks)

    def summary(self) -> dict[str, Any]:
        return {"frames_analyzed": self.frames_analyzed, "counts": dict(self.counts),
                "max_in_frame": dict(self.max_in_frame), "tracks": dict(self.tracks)}

    def write(self, path: str, header: dict[str, Any], footer: dict[str, Any]) -> None:
        """Writes the whole document to `path`: header fields, frames, summary, footer fields."""
        self._frames.flush()
        self._frames.seek(0)
        with open(path, "w", encoding="utf-8") as out:
            out.write("{" + json.dumps({"schema": SCHEMA, **header})[1:-1] + ',"frames":[\n')
            shutil.copyfileobj(self._frames, out)
            out.write("\n]," + json.dumps({"summary": self.summary(), **footer})[1:] + "\n")

    def close(self) -> None:
        self._frames.close()

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

