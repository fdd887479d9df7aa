"""What a job asks for (JobOptions, parsed once from its message) and how the pipeline runs (PipelineConfig)."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """One detector a job asks for, with its own options (None: the detector's default)."""

    name: str
    model: str | None = None
    min_confidence: float | None = None


@dataclasses.dataclass(frozen=True)
class Limits:
    """The worker's limits on a video (None: unlimited)."""

    max_frame_pixels: int | None = None
    max_duration_s: float | None = None


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """The analysis a job asks for, validated: carried unchanged from the message to the pipeline."""

    detectors: tuple[DetectorSpec, ...] = (DetectorSpec("human"),)
    sample_every: int = 1  # analyse frames 0, N, 2N, ...
    detect_every: int = 1  # run the detectors on every Nth analysed frame, track between
    limits: Limits = Limits()

    @property
    def detector_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.detectors)


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How the pipeline runs, the same for every job; benchmarks pass their own."""

    # Batches waiting between the decode thread and inference: enough to hide decode
    # jitter, few enough that memory stays small.
    queue_depth: int = 3
    # A decoder that yields no batch for this long is stuck on a hostile file: the job fails
    # and the thread is abandoned (a C call cannot be interrupted), so the worker goes on.
    decode_stall_s: float = 120.0
    # How long leaving the pipeline waits for the decode thread to finish its current batch.
    decoder_exit_s: float = 10.0
    # FFmpeg's decoding threads; None: chosen for the hardware (worker.analysis.video.decode_threads).
    decode_threads: int | None = None
    # Analysed frames a track survives without a detection; None: about 15, whatever the interval.
    max_missed: int | None = None
    # Whether the tracker follows weak detections too (ByteTrack's second pass).
    weak_detections: bool = True

    def tracker_max_missed(self, detect_every: int) -> int:
        """Tracks survive about 15 analysed frames without a detection, whatever the interval,
        so the count of distinct objects does not depend on it."""
        return self.max_missed if self.max_missed is not None else max(3, math.ceil(15 / detect_every))
