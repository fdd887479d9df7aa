"""What a job asks for (JobOptions, parsed once from its message) and how the pipeline runs (PipelineConfig)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """One detector a job asks for, with its own options (None: the detector's default)."""

    name: str
    model: str | None = None
    min_confidence: float | None = None
    tiles: str | None = None  # human: the views of a frame the model sees (detectors.views)


@dataclasses.dataclass(frozen=True)
class Limits:
    """The worker's limits on a video (None: unlimited)."""

    max_frame_pixels: int | None = None
    max_duration_s: float | None = None


DEFAULT_REDACT = ("face",)


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """The analysis a job asks for, validated: carried unchanged from the message to the pipeline."""

    detectors: tuple[DetectorSpec, ...] = (DetectorSpec("human"),)
    sample_every: int = 1  # analyse frames 0, N, 2N, ...
    detect_every: int = 1  # run the detectors on every Nth analysed frame, track between
    limits: Limits = Limits()
    outputs: tuple[str, ...] = ()  # "annotated", "redacted", "thumbnails" (worker.outputs)
    redact: tuple[str, ...] = DEFAULT_REDACT  # the labels blurred in the redacted video
    min_confidence: float | None = None  # the message's own, which entries without theirs took

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
    # Seconds of video a lost track is kept for re-association (at least one detector frame).
    tracker_lost_s: float = 2.0
    # Whether the tracker follows weak detections too (ByteTrack's second pass).
    weak_detections: bool = True
