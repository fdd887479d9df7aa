"""Reads a video file as a stream of decoded frames with their index and presentation time."""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np

from detectors.cores import usable_cores
from worker.errors import VideoTooLarge, VideoTooLong, VideoUnreadable

# FFmpeg reports every damaged packet on stderr, which would break the JSON log stream;
# damage is counted and reported in the result instead (read at each capture's open).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# Only single-file media containers are opened: playlists (HLS, DASH), concat lists and image
# sequences make FFmpeg read other files or URLs they name, whatever the file is called. FFmpeg
# refuses any demuxer not listed and any protocol but reading the one local file; OpenCV passes
# these options to every open, and reads them at each open.
SINGLE_FILE_DEMUXERS = ("mov", "avi", "matroska", "mpegts", "mpeg", "flv", "asf", "ogg", "ivf", "nut",
                        "h264", "hevc", "m4v")
os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = (f"format_whitelist;{','.join(SINGLE_FILE_DEMUXERS)}"
                                              "|protocol_whitelist;file")
# OpenCV's own warnings too (a file FFmpeg cannot open gets one): VIDEO_UNREADABLE says it.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
# Consecutive failed grabs after which the stream is taken to be over; damaged packets in
# the middle of a file fail a grab or a few (a dozen seen on a real H.264 file), then it resumes.
MAX_GRAB_FAILURES = 64

_CODECS = {
    "avc1": "h264", "h264": "h264", "x264": "h264", "avc3": "h264",
    "hev1": "hevc", "hvc1": "hevc", "hevc": "hevc", "h265": "hevc",
    "mp4v": "mpeg4", "fmp4": "mpeg4", "xvid": "mpeg4", "divx": "mpeg4",
    "mjpg": "mjpeg", "vp80": "vp8", "vp90": "vp9", "vp09": "vp9", "av01": "av1",
}


def decode_threads(for_gpu: bool) -> int:
    """FFmpeg's decoding threads. Next to a GPU, decoding is what limits the frame rate (the
    models run tens of times faster than on a CPU), so it gets every usable core; next to
    CPU inference, two keep ahead of the models and leave them the other cores."""
    cores = usable_cores()
    return cores if for_gpu else min(cores, 2)


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
    frames are decoded into images. After iteration, `frames_decoded`, `frames_skipped`,
    `duration_ms` and `measured_fps` describe what was really in the file: containers lie.
    """

    def __init__(self, path: str, max_frame_pixels: int | None = None, max_duration_s: float | None = None,
                 decode_threads: int | None = None):
        """`decode_threads`: FFmpeg's decoding threads, else its default (one per CPU it counts)."""
        self.path = path
        self.max_duration_s = max_duration_s
        # FFmpeg only: OpenCV's other backends (image sequences, its own MJPEG reader) would open
        # what the options above refuse.
        params = [] if decode_threads is None else [cv2.CAP_PROP_N_THREADS, decode_threads]
        self._capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
        if not self._capture.isOpened():
            raise VideoUnreadable("the file is not a readable video in a single-file container "
                                  "(empty, truncated, another format, a playlist or an image)")
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
            return round((self.frames_decoded + self._timestamps.skipped) * 1000.0 / self.duration_ms, 3)
        return self.info.fps

    @property
    def frames_skipped(self) -> int:
        """Frames lost to damage: gaps in the presentation times, and what the container's
        duration promises after the last frame that decoded (an estimate)."""
        interval = self._timestamps.typical_interval
        tail = self.info.duration_s * 1000 - self.duration_ms if self.frames_decoded else 0.0
        return self._timestamps.skipped + (round(tail / interval) if tail > 2 * interval else 0)

    def frames(self, sample_every: int = 1) -> Iterator[Frame]:
        """Yields frames 0, N, 2N, ...; raises VideoUnreadable if no frame decodes at all."""
        index = 0
        while self._grab():
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

    def _grab(self) -> bool:
        """Grabs the next frame, stepping over damaged packets; False at the end of the stream."""
        for _ in range(MAX_GRAB_FAILURES):
            if self._capture.grab():
                return True
        return False

    def abandon(self) -> None:
        """Leaves the capture to a decode call that never returned: releasing it under that call would crash."""
        self._capture = None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Timestamps:
    """Turns the decoder's presentation times into increasing milliseconds from the first frame.

    Some containers report nothing or jump backwards (vtest.avi's last frame reads 0);
    such frames get the previous time plus the typical interval. A jump of more than
    1.5 typical intervals means frames were lost to damage; they are counted.
    """

    def __init__(self, fps: float):
        self._base: float | None = None
        self._last = 0.0
        self._recent = deque([1000.0 / fps if fps > 0 else 40.0], maxlen=15)
        self.skipped = 0

    @property
    def typical_interval(self) -> float:
        return statistics.median(self._recent)

    @property
    def end_ms(self) -> float:
        return round(self._last + self.typical_interval, 3)

    def next(self, raw_ms: float) -> float:
        if self._base is None:
            self._base = raw_ms
            return 0.0
        elapsed = raw_ms - self._base
        step = elapsed - self._last
        if step <= 0:
            elapsed = self._last + self.typical_interval
        elif step > 1.5 * self.typical_interval and len(self._recent) > 2:
            self.skipped += round(step / self.typical_interval) - 1
        else:
            self._recent.append(step)
        self._last = elapsed
        return round(elapsed, 3)
