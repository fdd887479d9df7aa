"""The per-frame detections the outputs are drawn from, and a streaming reader of a result document."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, TextIO

from detectors import Box, Detection

_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class FrameDetections:
    """One analysed frame: its reported detections (with `track_id` and `source`), and its weak
    ones (scored under `min_confidence`: never reported, but blurred when redacting, where a
    false blur is cheap and a missed face is not)."""

    index: int
    timestamp_ms: float
    detections: list[Detection]
    weak: list[Detection] = dataclasses.field(default_factory=list)


def detection_from_json(entry: dict[str, Any]) -> Detection:
    box = entry["box"]
    return Detection(label=entry["label"], confidence=float(entry["confidence"]),
                     box=Box(box["left"], box["top"], box["width"], box["height"]),
                     track_id=entry.get("track_id"), source=entry.get("source", "detector"))


def frame_from_json(entry: dict[str, Any]) -> FrameDetections:
    return FrameDetections(int(entry["index"]), float(entry["timestamp_ms"]),
                           [detection_from_json(d) for d in entry["detections"]])


class ResultFrames:
    """Reads a result document's `frames` one at a time, so a six-hour result is never held whole.

    The result writer puts every header field before `frames`; `header` holds them once the
    first frame has been read. Anything not a videoscan result is a ValueError naming the problem.
    """

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._decoder = json.JSONDecoder()
        self._buffer = ""
        self._position = 0
        self.header: dict[str, Any] = {}

    def __iter__(self) -> Iterator[FrameDetections]:
        self._read_header()
        while True:
            self._skip(",")
            if self._peek() == "]":
                return
            entry = self._value()
            if not isinstance(entry, dict):
                raise ValueError("result: an entry of `frames` is not an object")
            yield frame_from_json(entry)

    def _read_header(self) -> None:
        self._skip("")
        if self._peek() != "{":
            raise ValueError("result: not a JSON object")
        self._position += 1
        while True:
            self._skip(",")
            if self._peek() == "}":
                raise ValueError("result: not a videoscan detections document (it has no frames)")
            key = self._value()
            self._skip("")
            if self._peek() != ":":
                raise ValueError("result: malformed JSON")
            self._position += 1
            self._skip("")
            if key == "frames":
                if self._peek() != "[":
                    raise ValueError("result: `frames` is not a list")
                self._position += 1
                if self.header.get("schema", "").split("@")[0] != "videoscan/detections":
                    raise ValueError("result: not a videoscan detections document (no schema before frames)")
                return
            self.header[key] = self._value()

    def _peek(self) -> str:
        if not self._fill(1):
            raise ValueError("result: the document ends early")
        return self._buffer[self._position]

    def _skip(self, separators: str) -> None:
        """Steps over whitespace and the given separator characters."""
        while self._fill(1) and (self._buffer[self._position].isspace() or self._buffer[self._position] in separators):
            self._position += 1

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError:
                if not self._more():
                    raise ValueError("result: malformed or truncated JSON") from None
                continue
            if end == len(self._buffer) and self._more():
                continue  # a number may go on in the next chunk
            self._position = end
            return value

    def _more(self) -> bool:
        """Reads one more chunk; False at the end of the stream."""
        available = len(self._buffer) - self._position
        self._fill(available + 1)
        return len(self._buffer) - self._position > available

    def _fill(self, wanted: int) -> bool:
        """Makes `wanted` characters available from the position; False at the end of the stream."""
        if len(self._buffer) - self._position >= wanted:
            return True
        self._buffer = self._buffer[self._position:]
        self._position = 0
        while len(self._buffer) < wanted:
            chunk = self._stream.read(max(_CHUNK, wanted - len(self._buffer)))
            if not chunk:
                return False
            self._buffer += chunk
        return True
