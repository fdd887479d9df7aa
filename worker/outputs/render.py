"""Renders the outputs of one result in one pass over its video: an annotated video, a redacted
video, track thumbnails and a contact sheet. Decoding, drawing and encoding stream frame by
frame, and the result's frames are read as they are needed: memory stays flat with length.

The pipeline's side of the interface is `render(frames, video_path, request)`: `frames` are
`FrameDetections` in increasing index order (every analysed frame, with its weak detections
when redacting), and `video_path` the source video they were found in.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterable, Iterator, Sequence

import av

from worker.outputs.annotate import annotate
from worker.outputs.frames import FrameDetections, ResultFrames
from worker.outputs.redact import HOLD_S, Redactor, blur_regions
from worker.outputs.sheet import write_sheet
from worker.outputs.thumbnails import crop, file_name, jpeg, write_atomically
from worker.outputs.tracks import Track, TrackBook
from worker.outputs.video_writer import VideoWriter

DEFAULT_REDACT = ("face",)


@dataclasses.dataclass(frozen=True)
class RenderRequest:
    """What to make; every path is optional, and nothing is decoded for an empty request."""

    annotated: str | None = None
    redacted: str | None = None
    redact_labels: Sequence[str] = DEFAULT_REDACT
    thumbnails_dir: str | None = None
    sheet: str | None = None
    threads: int = 0  # FFmpeg's own choice

    @property
    def wants_tracks(self) -> bool:
        return bool(self.thumbnails_dir or self.sheet)


@dataclasses.dataclass(frozen=True)
class Rendered:
    frames: int
    tracks: list[Track]


def render(frames: Iterable[FrameDetections], video_path: str, request: RenderRequest,
           expected_size: tuple[int, int] | None = None) -> Rendered:
    """Makes the requested outputs in one pass. Each file appears only complete: a failure leaves
    no partial file (and no video at all if it comes before the videos are finished)."""
    try:
        source = av.open(video_path)
    except (av.FFmpegError, OSError) as error:
        raise ValueError(f"{video_path}: not a readable video ({error})") from None
    writers: list[VideoWriter] = []
    try:
        if not source.streams.video:
            raise ValueError(f"{video_path}: has no video stream")
        video, audio = source.streams.video[0], list(source.streams.audio)
        if expected_size and expected_size != (video.width, video.height):
            raise ValueError(f"the result is for a {expected_size[0]}x{expected_size[1]} video, "
                             f"{video_path} is {video.width}x{video.height}")
        video.thread_type = "AUTO"
        annotated = request.annotated and VideoWriter(request.annotated, video, audio, request.threads)
        writers += [annotated] if annotated else []
        redacted = request.redacted and VideoWriter(request.redacted, video, audio, request.threads)
        writers += [redacted] if redacted else []
        fps = float(video.average_rate or video.guessed_rate or 25)
        redactor = Redactor(request.redact_labels, hold_frames=max(round(HOLD_S * fps), 2))
        book = TrackBook(crop=crop)
        analysed = _Lookahead(frames)
        count, first_time = 0, None
        for index, frame in enumerate(_decoded(source, video, audio, writers)):
            count = index + 1
            first_time = frame.time if first_time is None else first_time
            image = frame.to_ndarray(format="bgr24")
            previous, following = analysed.at(index)
            current = previous if previous is not None and previous.index == index else None
            if current is not None and request.wants_tracks:
                book.add(current, image)
            if redacted:
                regions = redactor.regions(index, previous, following)
                redacted.write(blur_regions(image.copy() if annotated else image, regions), frame.pts)
            if annotated:
                timestamp_ms = current.timestamp_ms if current else _since(frame.time, first_time)
                annotated.write(annotate(image, _shown(index, previous), index, timestamp_ms), frame.pts)
        tracks = book.tracks()
        for writer in writers:
            writer.close()
        writers = []
        _write_track_files(tracks, request)
        return Rendered(count, tracks)
    finally:
        for writer in writers:
            writer.abort()
        source.close()


def render_result(result_path: str, video_path: str, request: RenderRequest) -> Rendered:
    """`render` from a result document on disk, read as it goes."""
    with open(result_path, encoding="utf-8") as stream:
        frames = ResultFrames(stream)
        iterator = iter(frames)
        first = next(iterator, None)  # reads the header
        size = frames.header.get("video", {})
        expected = (size["width"], size["height"]) if "width" in size and "height" in size else None
        return render(_chain(first, iterator), video_path, request, expected)


def render_command(result_path: str, video_path: str, output: str | None, redact: str | None,
                   sheet: str | None) -> int:
    """`videoscan render`: annotated by default, redacted with `--redact`, and the sheet with `--sheet`."""
    for path in (result_path, video_path):
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
    labels = [label.strip() for label in (redact or "").split(",") if label.strip()]
    if redact is not None and not labels:
        raise ValueError("--redact needs at least one label, e.g. --redact face")
    kind = "redacted" if labels else "annotated"
    output = output or f"{os.path.splitext(os.path.basename(video_path))[0]}.{kind}.mp4"
    request = RenderRequest(**{kind: output}, redact_labels=labels or DEFAULT_REDACT, sheet=sheet)
    rendered = render_result(result_path, video_path, request)
    print(f"{kind} video ({rendered.frames} frames): {output}", file=sys.stderr)
    if sheet:
        print(f"contact sheet ({len(rendered.tracks)} tracks): {sheet}", file=sys.stderr)
    return 0


def _decoded(source, video, audio, writers: list[VideoWriter]) -> Iterator[av.VideoFrame]:
    """The video's frames in presentation order; audio packets go straight to the writers."""
    for packet in source.demux(video, *audio):
        if packet.stream.type == "audio":
            for writer in writers:
                writer.mux_audio(packet)
            continue
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue  # a damaged packet: the analysis skipped it too


def _since(time: float | None, first: float | None) -> float:
    """Milliseconds from the first frame, as the result's `timestamp_ms` counts them."""
    return round((time - first) * 1000, 3) if time is not None and first is not None else 0.0


def _shown(index: int, previous: FrameDetections | None) -> list:
    """The boxes to draw: the analysed frame's own, or between analysed frames (`sample_every` > 1)
    the last analysed frame's, drawn as carried."""
    if previous is None:
        return []
    if previous.index == index:
        return previous.detections
    return [dataclasses.replace(d, source="tracker") for d in previous.detections]


def _write_track_files(tracks: list[Track], request: RenderRequest) -> None:
    if request.thumbnails_dir:
        os.makedirs(request.thumbnails_dir, exist_ok=True)
        for track in tracks:
            if track.best_crop is not None:
                track.thumbnail = os.path.join(request.thumbnails_dir, file_name(track.label, track.track_id))
                write_atomically(track.thumbnail, jpeg(track.best_crop))
    if request.sheet:
        write_sheet(request.sheet, tracks)


class _Lookahead:
    """The analysed frames around a source frame: the last at or before it, and the next after it."""

    def __init__(self, frames: Iterable[FrameDetections]):
        self._frames = iter(frames)
        self._previous: FrameDetections | None = None
        self._following = next(self._frames, None)

    def at(self, index: int) -> tuple[FrameDetections | None, FrameDetections | None]:
        while self._following is not None and self._following.index <= index:
            upcoming = next(self._frames, None)
            if upcoming is not None and upcoming.index <= self._following.index:
                raise ValueError(f"result frames out of order: {upcoming.index} after {self._following.index}")
            self._previous, self._following = self._following, upcoming
        return self._previous, self._following


def _chain(first: FrameDetections | None, rest: Iterator[FrameDetections]) -> Iterator[FrameDetections]:
    if first is not None:
        yield first
        yield from rest
