"""The analysis pipeline: decode ahead in a thread, run the detectors in batches, track, stream results.

The same pipeline serves `videoscan analyze` and the queue worker.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextvars
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from detectors import Detector, Findings
from worker.errors import VideoUnreadable
from worker.options import PipelineConfig
from worker.analysis.results import ResultWriter
from worker.analysis.tracking import MultiTracker, tracking_view
from worker.analysis.video import VideoReader

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class AnalysedFrame:
    index: int
    timestamp_ms: float
    gray: np.ndarray  # the tracker's view of the frame
    detect: bool  # a detector frame (else the tracker carries boxes onto it)


@dataclasses.dataclass(frozen=True)
class Batch:
    frames: list[AnalysedFrame]
    inputs: dict[str, list[np.ndarray]]  # detector name -> its prepared detector frames, in order


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
    detect_every: int = 1,
    on_progress: ProgressCallback | None = None,
    check_continue: Callable[[], None] | None = None,
    config: PipelineConfig = PipelineConfig(),
) -> VideoFacts:
    """Runs the detectors on every `detect_every`-th sampled frame, tracks objects across all
    sampled frames, and adds each frame to `writer` with its tracked detections.

    `on_progress(frames_done, frames_total_estimate)` is called after each batch;
    `check_continue()` is called before each batch and stops the run by raising.
    """
    batch_size = max(d.batch_size for d in detectors)
    estimate = max(1, -(-reader.info.frame_count // sample_every))
    tracker = MultiTracker(lost_s=config.tracker_lost_s)  # one per video: no track or id carries over
    # Batches in inference at once; every detector must allow that many calls together.
    streams = min(d.streams for d in detectors)
    in_flight: collections.deque[tuple[Batch, concurrent.futures.Future]] = collections.deque()

    def finish_oldest() -> None:  # the tracker takes the batches in order
        batch, detected = in_flight.popleft()
        found = iter(detected.result())  # re-raises an error in detect
        for frame in batch.frames:
            if frame.detect:
                findings = next(found)
                weak = findings.weak if config.weak_detections else ()
                finished = tracker.observe(frame.index, frame.timestamp_ms, frame.gray, findings.detections, weak)
            else:
                finished = tracker.carry(frame.index, frame.timestamp_ms, frame.gray)
            for final in finished:  # the tracker holds frames back until their tracks are confirmed or gone
                writer.add_frame(final.index, final.timestamp_ms, final.detections)
        if on_progress:
            done = writer.frames_analyzed
            on_progress(done, max(estimate, done))

    pool = concurrent.futures.ThreadPoolExecutor(streams, thread_name_prefix="detect")
    try:
        with _Decoder(reader, detectors, batch_size, sample_every, detect_every, config) as decoder:
            for batch in decoder:
                if check_continue:
                    check_continue()
                context = contextvars.copy_context()  # keeps the job id on the detect thread's log lines
                in_flight.append((batch, pool.submit(context.run, _detect, detectors, batch)))
                if len(in_flight) == streams:
                    finish_oldest()
            while in_flight:
                finish_oldest()
        for final in tracker.flush():
            writer.add_frame(final.index, final.timestamp_ms, final.detections)
    finally:
        pool.shutdown(cancel_futures=True)  # on an error too: no detect call outlives the run
    writer.set_tracks(tracker.track_counts())
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


def _detect(detectors: Sequence[Detector], batch: Batch) -> list[Findings]:
    """Every detector's findings on each detector frame of the batch, merged per frame."""
    per_frame = [Findings([], []) for frame in batch.frames if frame.detect]
    for detector in detectors:
        for merged, found in zip(per_frame, detector.detect(batch.inputs[detector.name])):
            merged.detections.extend(found.detections)
            merged.weak.extend(found.weak)
    return per_frame


class _Decoder:
    """Decodes and prepares batches in a background thread, ahead of inference.

    The thread blocks only when the bounded queue is full; an error in it is
    re-raised in the consumer, and leaving the context stops it.
    """

    _END = object()

    def __init__(self, reader: VideoReader, detectors: Sequence[Detector], batch_size: int, sample_every: int,
                 detect_every: int, config: PipelineConfig):
        self._reader = reader
        self._stall_timeout_s = config.decode_stall_s
        self._exit_s = config.decoder_exit_s
        self._detectors = list(detectors)
        self._batch_size = batch_size
        self._sample_every = sample_every
        self._detect_every = detect_every
        self._queue: queue.Queue = queue.Queue(maxsize=config.queue_depth)
        self._stopped = threading.Event()
        context = contextvars.copy_context()  # keeps the job id on the thread's log lines
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="decode", daemon=True)

    def __enter__(self) -> "_Decoder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        deadline = time.monotonic() + self._exit_s
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
        """Batches hold `batch_size` detector frames and the carried frames between them."""
        try:
            frames: list[AnalysedFrame] = []
            inputs: dict[str, list[np.ndarray]] = {d.name: [] for d in self._detectors}
            for position, frame in enumerate(self._reader.frames(self._sample_every)):
                detect = position % self._detect_every == 0
                if detect and len(inputs[self._detectors[0].name]) == self._batch_size:
                    self._put(Batch(frames, inputs))
                    frames, inputs = [], {d.name: [] for d in self._detectors}
                frames.append(AnalysedFrame(frame.index, frame.timestamp_ms, tracking_view(frame.image), detect))
                if detect:  # carried frames are never prepared for the detectors: that is the saving
                    for detector in self._detectors:
                        inputs[detector.name].append(detector.prepare(frame.image))
            if frames:
                self._put(Batch(frames, inputs))
            self._put(self._END)
        except _Stopped:
            pass
        except BaseException as error:  # handed to the consumer, which decides
            self._put_final(error)

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
