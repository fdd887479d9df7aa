"""Draws detections onto a frame: box, label, track id and confidence, and the frame's number
and time in a corner. Boxes the detector found are solid; boxes the tracker carried between
detector frames are thinner and dashed, so a viewer can tell a finding from an estimate."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from detectors import Detection

_COLOURS = {"person": (60, 200, 60), "face": (40, 170, 255)}  # BGR
_OTHER = (230, 160, 40)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_DASH = 8  # pixels of line, then as many of gap


def annotate(image: np.ndarray, detections: Sequence[Detection], index: int, timestamp_ms: float) -> np.ndarray:
    """Draws on `image` in place and returns it."""
    height, width = image.shape[:2]
    scale = max(height / 720, 0.45)
    for detection in detections:
        box = detection.box
        x1, y1 = int(box.left * width), int(box.top * height)
        x2, y2 = int((box.left + box.width) * width), int((box.top + box.height) * height)
        colour = _COLOURS.get(detection.label, _OTHER)
        thick = max(round(3 * scale), 2)
        if detection.source == "tracker":
            _dashed_rectangle(image, (x1, y1), (x2, y2), colour, max(thick // 2, 1))
        else:
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick)
        track = f" #{detection.track_id}" if detection.track_id is not None else ""
        _label(image, f"{detection.label}{track} {detection.confidence:.2f}", (x1, y1), colour, scale)
    # Bottom left: box labels sit above boxes, so they rarely reach there.
    _label(image, f"frame {index}  {clock(timestamp_ms)}", (8, height - 8), (255, 255, 255), scale, above=False)
    return image


def clock(timestamp_ms: float) -> str:
    """0:04.100 or 1:02:03.000."""
    seconds, ms = divmod(int(round(timestamp_ms)), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{ms:03d}" if hours else f"{minutes}:{seconds:02d}.{ms:03d}"


def _label(image, text: str, corner: tuple[int, int], colour, scale: float, above: bool = True) -> None:
    """Text on a dark plate, just above the box (inside the frame when the box touches its top)."""
    font_scale = 0.6 * scale
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, 1)
    x, y = corner
    if above:
        y = y - 4 if y - th - base - 4 >= 0 else y + th + base + 4
    x = min(max(x, 0), max(image.shape[1] - tw - 4, 0))
    cv2.rectangle(image, (x, y - th - base), (x + tw + 4, y + base // 2), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (x + 2, y - base // 2), _FONT, font_scale, colour, 1, cv2.LINE_AA)


def _dashed_rectangle(image, top_left, bottom_right, colour, thickness: int) -> None:
    (x1, y1), (x2, y2) = top_left, bottom_right
    for a, b, fixed, horizontal in ((x1, x2, y1, True), (x1, x2, y2, True), (y1, y2, x1, False), (y1, y2, x2, False)):
        for start in range(a, b, 2 * _DASH):
            end = min(start + _DASH, b)
            p, q = ((start, fixed), (end, fixed)) if horizontal else ((fixed, start), (fixed, end))
            cv2.line(image, p, q, colour, thickness)
