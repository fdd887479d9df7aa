"""Writes an H.264 MP4 (yuv420p, `faststart`) frame by frame with PyAV, keeping the source's
frame times and copying its audio packets unchanged.

The file is written under a temporary name beside the target and renamed when complete: a
reader never sees half a video.
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import numpy as np

# x264 takes most of the time of rendering on a CPU: "superfast" costs a quarter less than
# "veryfast" for somewhat larger files; CRF 23 is x264's own default quality.
X264_OPTIONS = {"preset": "superfast", "crf": "23"}
# Audio that MP4 can carry as it is; anything else is re-encoded to AAC.
MP4_AUDIO = {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}
_STANDARD_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


class VideoWriter:
    """One output video shaped like `video_stream` (size, rate, time base), with a copy of each of
    `audio_streams`. `write(image, pts)` takes BGR frames; `mux_audio(packet)` the source's packets."""

    def __init__(self, path: str, video_stream: av.VideoStream, audio_streams=(), threads: int = 0):
        self.path = path
        self._partial = f"{path}.part"
        self._container = av.open(self._partial, "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self._video = self._add_video(video_stream, threads)
            self._audio = {source.index: _AudioCopy(self._container, source) for source in audio_streams}
        except Exception:
            self._abandon()
            raise
        self._last_pts: int | None = None
        self._step = 1

    def _add_video(self, source: av.VideoStream, threads: int) -> av.VideoStream:
        if source.width % 2 or source.height % 2:
            raise ValueError(f"frames are {source.width}x{source.height}: H.264 in yuv420p needs even sizes")
        rate = source.average_rate or source.guessed_rate or Fraction(25)
        stream = self._container.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
        stream.width, stream.height, stream.pix_fmt = source.width, source.height, "yuv420p"
        stream.time_base = source.time_base or 1 / rate
        stream.codec_context.time_base = stream.time_base
        stream.thread_count = threads
        return stream

    @property
    def time_base(self) -> Fraction:
        return self._video.codec_context.time_base

    def write(self, image: np.ndarray, pts: int | None) -> None:
        """Encodes one BGR frame at presentation time `pts` (in the source's time base).

        A missing or backward time (vtest.avi's last frames) becomes the last one plus a step:
        the encoder needs increasing times, and the frame keeps its place in the sequence."""
        if self._last_pts is not None:
            if pts is None or pts <= self._last_pts:
                pts = self._last_pts + self._step
            else:
                self._step = pts - self._last_pts
        elif pts is None:
            pts = 0
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = pts, self.time_base
        self._container.mux(self._video.encode(frame))
        self._last_pts = pts

    def mux_audio(self, packet: av.Packet) -> None:
        copy = self._audio.get(packet.stream.index)
        if copy is not None:
            copy.mux(packet)

    def close(self) -> None:
        """Flushes the encoders, finishes the file and gives it its name."""
        try:
            self._container.mux(self._video.encode(None))
            for copy in self._audio.values():
                copy.flush()
            self._container.close()
        except Exception:
            self._abandon()
            raise
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drops the partial file (a failed render leaves nothing behind)."""
        self._abandon()

    def _abandon(self) -> None:
        try:
            self._container.close()
        except Exception:  # closing a broken file may fail too; it is removed either way
            pass
        if os.path.exists(self._partial):
            os.remove(self._partial)


class _AudioCopy:
    """The source's audio packets, remuxed unchanged; re-encoded to AAC only where MP4 cannot hold them."""

    def __init__(self, container, source: av.AudioStream):
        self._container = container
        self._copy = source.codec_context.name in MP4_AUDIO
        if self._copy:
            self.stream = container.add_stream_from_template(source)
        else:
            # The standard layout for the channel count: AVI's PCM may name none, which AAC refuses.
            layout = _STANDARD_LAYOUTS.get(source.channels, source.layout.name)
            self.stream = container.add_stream("aac", rate=source.rate, layout=layout)
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=source.rate)

    def mux(self, packet: av.Packet) -> None:
        if packet.dts is None and packet.size == 0:
            if not self._copy:
                self._encode(packet.decode())
            return  # the demuxer's end-of-stream marker
        if self._copy:
            original = packet.stream
            packet.stream = self.stream
            self._container.mux(packet)
            packet.stream = original  # the packet may go to another output next
        else:
            self._encode(packet.decode())

    def _encode(self, frames) -> None:
        for frame in frames:
            for resampled in self._resampler.resample(frame):
                self._container.mux(self.stream.encode(resampled))

    def flush(self) -> None:
        if not self._copy:
            self._container.mux(self.stream.encode(None))
