"""The analysis pipeline: decode ahead in a thread, run the detectors in batches, stream results.

The same pipeline serves `videoscan analyze` and the queue worker.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from detectors import Detection, Detector
from worker.errors import VideoUnreadable
from worker.results import ResultWriter
from worker.video import Frame, VideoReader

log = logging.getLogger(__name__)

# Batches waiting between the decode thread and inference: enough to hide decode
# jitter, few enough that memory stays small.
QUEUE_DEPTH = 3
# A decoder that yields no batch for this long is stuck on a hostile file: the job fails
# and the thread is abandoned (a C call cannot be interrupted), so the worker goes on.
DECODE_STALL_S = 120.0
# How long leaving the pipeline waits for the decode thread to finish its current batch.
DECODER_EXIT_S = 10.0
ProgressCallback = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class Batch:
    frames: list[tuple[int, float]]  # (index, timestamp_ms)
    inputs: dict[str, list[np.ndarray]]  # detector name -> prepared frames


@dataclasses.dataclass(frozen=True)
class VideoFacts:
    """What decoding found, for the result's `video` block."""

    width: int
    height: int
    fps: float
    frame_count: int
    frames_skipped: int
    duration_ms: float
    codec: str

    def to_json(self, uri: str) -> dict:
        return {"uri": uri, **dataclasses.asdict(self)}


def analyze(
    reader: VideoReader,
    detectors: Sequence[Detector],
    writer: ResultWriter,
    sample_every: int = 1,
    on_progress: ProgressCallback | None = None,
    check_continue: Callable[[], None] | None = None,
    stall_timeout_s: float = DECODE_STALL_S,
) -> VideoFacts:
    """Runs every detector over the sampled frames and adds each frame to `writer`.

    `on_progress(frames_done, frames_total_estimate)` is called after each batch;
    `check_continue()` is called before each batch and stops the run by raising.
    """
    batch_size = max(d.batch_size for d in detectors)
    estimate = max(1, -(-reader.info.frame_count // sample_every))
    with _Decoder(reader, detectors, batch_size, sample_every, stall_timeout_s) as decoder:
        for batch in decoder:
            if check_continue:
                check_continue()
            per_frame: list[list[Detection]] = [[] for _ in batch.frames]
            for detector in detectors:
                for i, found in enumerate(_detect_in_chunks(detector, batch.inputs[detector.name])):
                    per_frame[i].extend(found)
            for (index, timestamp_ms), found in zip(batch.frames, per_frame):
                writer.add_frame(index, timestamp_ms, found)
            if on_progress:
                done = writer.frames_analyzed
                on_progress(done, max(estimate, done))
    facts = VideoFacts(
        width=reader.info.width,
        height=reader.info.height,
        fps=reader.measured_fps,
        frame_count=reader.frames_decoded,
        frames_skipped=reader.frames_skipped,
        duration_ms=reader.duration_ms,
        codec=reader.info.codec,
    )
    if on_progress:
        on_progress(writer.frames_analyzed, writer.frames_analyzed)
    return facts


def _detect_in_chunks(detector: Detector, inputs: list[np.ndarray]) -> list[list[Detection]]:
    """Calls `detect` with at most the detector's own batch size."""
    results: list[list[Detection]] = []
    for start in range(0, len(inputs), detector.batch_size):
        results.extend(detector.detect(inputs[start : start + detector.batch_size]))
    return results


class _Decoder:
    """Decodes and prepares batches in a background thread, ahead of inference.

    The thread blocks only when the bounded queue is full; an error in it is
    re-raised in the consumer, and leaving the context stops it.
    """

    _END = object()

    def __init__(self, reader: VideoReader, detectors: Sequence[Detector], batch_size: int, sample_every: int,
                 stall_timeout_s: float):
        self._reader = reader
        self._stall_timeout_s = stall_timeout_s
        self._detectors = list(detectors)
        self._batch_size = batch_size
        self._sample_every = sample_every
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self._stopped = threading.Event()
        context = contextvars.copy_context()  # keeps the job id on the thread's log lines
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="decode", daemon=True)

    def __enter__(self) -> "_Decoder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        deadline = time.monotonic() + DECODER_EXIT_S
        while self._thread.is_alive() and time.monotonic() < deadline:
            self._drain()  # unblocks a thread waiting to put
            self._thread.join(timeout=0.1)
        if self._thread.is_alive():
            log.error("abandoning a decode thread that does not stop")
            self._reader.abandon()

    def __iter__(self):
        while True:
            try:
                item = self._queue.get(timeout=self._stall_timeout_s)
            except queue.Empty:
                raise VideoUnreadable(f"decoding stalled for {self._stall_timeout_s:.0f} s") from None
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _run(self) -> None:
        try:
            frames: list[Frame] = []
            for frame in self._reader.frames(self._sample_every):
                frames.append(frame)
                if len(frames) == self._batch_size:
                    self._put(self._prepare(frames))
                    frames = []
            if frames:
                self._put(self._prepare(frames))
            self._put(self._END)
        except _Stopped:
            pass
        except BaseException as error:  # handed to the consumer, which decides
            self._put_final(error)

    def _prepare(self, frames: list[Frame]) -> Batch:
        return Batch(
            frames=[(f.index, f.timestamp_ms) for f in frames],
            inputs={d.name: [d.prepare(f.image) for f in frames] for d in self._detectors},
        )

    def _put(self, item) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _Stopped

    def _put_final(self, error: BaseException) -> None:
        try:
            self._put(error)
        except _Stopped:
            pass

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass


class _Stopped(Exception):
    """The consumer left; the decode thread ends quietly."""
