"""One PNG contact sheet: every track's thumbnail with its label, id and time range."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from worker.outputs.annotate import clock
from worker.outputs.thumbnails import write_atomically
from worker.outputs.tracks import Track

CELL = 160  # thumbnail area, pixels square
CAPTION = 40
PAD = 8
COLUMNS = 6
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def contact_sheet(tracks: Sequence[Track], columns: int = COLUMNS) -> np.ndarray:
    """The sheet as a BGR image: tracks in order of first appearance, row by row."""
    columns = max(min(columns, len(tracks)), 1)
    rows = max((len(tracks) + columns - 1) // columns, 1)
    sheet = np.full((PAD + rows * (CELL + CAPTION + PAD), PAD + columns * (CELL + PAD), 3), 32, np.uint8)
    if not tracks:
        cv2.putText(sheet, "no tracks", (PAD, PAD + 60), _FONT, 0.6, (220, 220, 220), 1, cv2.LINE_AA)
    for n, track in enumerate(tracks):
        x, y = PAD + (n % columns) * (CELL + PAD), PAD + (n // columns) * (CELL + CAPTION + PAD)
        if track.best_crop is not None and track.best_crop.size:
            _paste_fitted(sheet, track.best_crop, x, y)
        _text(sheet, f"{track.label} #{track.track_id}", x, y + CELL + 16)
        _text(sheet, f"{clock(track.first_ms)}-{clock(track.last_ms)}", x, y + CELL + 34)
    return sheet


def write_sheet(path: str, tracks: Sequence[Track]) -> None:
    ok, data = cv2.imencode(".png", contact_sheet(tracks))
    if not ok:
        raise ValueError("the contact sheet could not be encoded as PNG")
    write_atomically(path, data.tobytes())


def _paste_fitted(sheet: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    """Scales `image` to fit the cell, keeping its aspect, centred."""
    height, width = image.shape[:2]
    scale = CELL / max(height, width)
    size = (max(int(width * scale), 1), max(int(height * scale), 1))
    fitted = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    ox, oy = x + (CELL - size[0]) // 2, y + (CELL - size[1]) // 2
    sheet[oy:oy + size[1], ox:ox + size[0]] = fitted


def _text(sheet: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(sheet, text, (x, y), _FONT, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
