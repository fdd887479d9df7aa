"""A track's thumbnail: the crop of its best box with a margin, as JPEG."""

from __future__ import annotations

import os

import cv2
import numpy as np

from detectors import Box

MARGIN = 0.2  # of the box's size on every side: a face or person with a little context
JPEG_QUALITY = 90


def crop(image: np.ndarray, box: Box, margin: float = MARGIN) -> np.ndarray:
    """The pixels of `box` (fractions of the frame) plus `margin`, clipped to the frame; a copy."""
    height, width = image.shape[:2]
    mx, my = box.width * margin, box.height * margin
    left, top = max(int((box.left - mx) * width), 0), max(int((box.top - my) * height), 0)
    right = min(int(np.ceil((box.left + box.width + mx) * width)), width)
    bottom = min(int(np.ceil((box.top + box.height + my) * height)), height)
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    return image[top:bottom, left:right].copy()


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("the thumbnail could not be encoded as JPEG")
    return data.tobytes()


def file_name(label: str, track_id: int) -> str:
    return f"{label}-{track_id}.jpg"


def write_atomically(path: str, data: bytes) -> None:
    """Writes under a temporary name and renames: a reader never sees half a file."""
    partial = f"{path}.part"
    with open(partial, "wb") as out:
        out.write(data)
    os.replace(partial, path)
