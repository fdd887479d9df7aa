"""A short sample video made from public-domain photographs that scikit-image ships (no network)."""

from __future__ import annotations

import cv2
import numpy as np

WIDTH, HEIGHT, FPS = 640, 360, 12.0


def _photographs() -> tuple[np.ndarray, np.ndarray]:
    """NASA's astronaut portrait and the classic cameraman, as BGR images."""
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cameraman = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)
    return astronaut, cameraman


def _place(canvas: np.ndarray, image: np.ndarray, left: int, top: int, size: int) -> None:
    """Pastes `image`, resized to `size` square, with its top-left corner at (left, top), clipped."""
    tile = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    x1, y1 = max(left, 0), max(top, 0)
    x2, y2 = min(left + size, canvas.shape[1]), min(top + size, canvas.shape[0])
    if x1 < x2 and y1 < y2:
        canvas[y1:y2, x1:x2] = tile[y1 - top:y2 - top, x1 - left:x2 - left]


def write_sample_video(path: str, seconds: float = 4.0) -> int:
    """Writes an MPEG-4 video in which the astronaut drifts across and the cameraman zooms in.

    Returns the number of frames written.
    """
    astronaut, cameraman = _photographs()
    frame_count = int(seconds * FPS)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    background = np.linspace(40, 110, WIDTH, dtype=np.uint8)[None, :, None].repeat(HEIGHT, 0).repeat(3, 2)
    try:
        for i in range(frame_count):
            t = i / max(frame_count - 1, 1)
            frame = background.copy()
            _place(frame, astronaut, left=int(-20 + 140 * t), top=20, size=320)
            zoom = int(230 + 90 * t)
            _place(frame, cameraman, left=WIDTH - zoom - 10, top=(HEIGHT - zoom) // 2, size=zoom)
            writer.write(frame)
    finally:
        writer.release()
    return frame_count
