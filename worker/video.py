"""Reads a video file as a stream of decoded frames with their index and presentation time."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import cv2
import numpy as np

from worker.errors import VideoTooLarge, VideoTooLong, VideoUnreadable

_CODECS = {
    "avc1": "h264", "h264": "h264", "x264": "h264", "avc3": "h264",
    "hev1": "hevc", "hvc1": "hevc", "hevc": "hevc", "h265": "hevc",
    "mp4v": "mpeg4", "fmp4": "mpeg4", "xvid": "mpeg4", "divx": "mpeg4",
    "mjpg": "mjpeg", "vp80": "vp8", "vp90": "vp9", "vp09": "vp9", "av01": "av1",
}


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What the container says; `frame_count` and `fps` are claims until decoding ends."""

    width: int
    height: int
    fps: float
    frame_count: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class Frame:
    index: int
    timestamp_ms: float
    image: np.ndarray  # BGR, as OpenCV decodes


class VideoReader:
    """Opens a video, checks it against the limits, and streams its frames.

    Every frame is grabbed (so indexes and timestamps are exact), but only sampled
    frames are decoded into images. After iteration, `frames_decoded`, `duration_ms`
    and `measured_fps` describe what was really in the file: containers lie.
    """

    def __init__(self, path: str, max_frame_pixels: int | None = None, max_duration_s: float | None = None):
        self.path = path
        self.max_duration_s = max_duration_s
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise VideoUnreadable("the file is not a readable video (empty, truncated or another format)")
        self.info = self._read_info()
        if self.info.width <= 0 or self.info.height <= 0:
            raise VideoUnreadable("the video has no frame size")
        if max_frame_pixels and self.info.width * self.info.height > max_frame_pixels:
            raise VideoTooLarge(
                f"frames are {self.info.width}x{self.info.height}, over the limit of {max_frame_pixels} pixels"
            )
        if max_duration_s and self.info.duration_s > max_duration_s:
            raise VideoTooLong(f"the video lasts {self.info.duration_s:.0f} s, over the limit of {max_duration_s:.0f} s")
        self.frames_decoded = 0
        self.duration_ms = 0.0
        self._timestamps = _Timestamps(self.info.fps)

    def _read_info(self) -> VideoInfo:
        fourcc = int(self._capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
        fourcc = fourcc.strip("\x00 ").lower()
        return VideoInfo(
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0),
            frame_count=max(int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            codec=_CODECS.get(fourcc, fourcc or "unknown"),
        )

    @property
    def measured_fps(self) -> float:
        """Frames per second from the decoded timestamps; the container's claim if there are none."""
        if self.frames_decoded > 1 and self.duration_ms > 0:
            return round(self.frames_decoded * 1000.0 / self.duration_ms, 3)
        return self.info.fps

    def frames(self, sample_every: int = 1) -> Iterator[Frame]:
        """Yields frames 0, N, 2N, ...; raises VideoUnreadable if no frame decodes at all."""
        index = 0
        while self._capture.grab():
            timestamp_ms = self._timestamps.next(self._capture.get(cv2.CAP_PROP_POS_MSEC))
            self.frames_decoded = index + 1
            self.duration_ms = self._timestamps.end_ms
            if self.max_duration_s and timestamp_ms > self.max_duration_s * 1000:
                raise VideoTooLong(f"the video lasts longer than the limit of {self.max_duration_s:.0f} s")
            if index % sample_every == 0:
                ok, image = self._capture.retrieve()
                if not ok or image is None:
                    raise VideoUnreadable(f"frame {index} could not be decoded")
                yield Frame(index, timestamp_ms, image)
            index += 1
        if self.frames_decoded == 0:
            raise VideoUnreadable("no frame could be decoded")

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Timestamps:
    """Turns the decoder's presentation times into increasing milliseconds from the first frame.

    Some containers report nothing or jump backwards (vtest.avi's last frame reads 0);
    such frames get the previous time plus the last good interval.
    """

    def __init__(self, fps: float):
        self._base: float | None = None
        self._last = 0.0
        self._interval = 1000.0 / fps if fps > 0 else 40.0

    @property
    def end_ms(self) -> float:
        return round(self._last + self._interval, 3)

    def next(self, raw_ms: float) -> float:
        if self._base is None:
            self._base = raw_ms
            return 0.0
        elapsed = raw_ms - self._base
        if elapsed > self._last:
            self._interval = elapsed - self._last
        else:
            elapsed = self._last + self._interval
        self._last = elapsed
        return round(elapsed, 3)
