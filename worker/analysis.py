"""One video file in, one complete result document out: shared by `analyze` and the worker."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence

from detectors import Detector
from worker.clock import utc_now_iso
from worker.pipeline import ProgressCallback, analyze
from worker.results import ResultWriter
from worker.video import VideoReader, decode_threads


@dataclasses.dataclass(frozen=True)
class Limits:
    max_frame_pixels: int | None = None
    max_duration_s: float | None = None


def analyze_file(
    video_path: str,
    out_path: str,
    *,
    video_uri: str,
    job_id: str,
    tag: str | None,
    detectors: Sequence[Detector],
    sample_every: int,
    detect_every: int,
    worker_id: str,
    limits: Limits = Limits(),
    on_progress: ProgressCallback | None = None,
    check_continue: Callable[[], None] | None = None,
) -> dict:
    """Runs the pipeline on `video_path` and writes the contract's document to `out_path`.

    Work files go next to `out_path`, which is in the caller's private work directory.
    Returns the document's summary.
    """
    started_at = utc_now_iso(time.time())
    threads = decode_threads(for_gpu=any(d.on_gpu for d in detectors))
    with VideoReader(video_path, limits.max_frame_pixels, limits.max_duration_s, threads) as reader, \
            ResultWriter((d.label for d in detectors), os.path.dirname(os.path.abspath(out_path))) as writer:
        facts = analyze(reader, detectors, writer, sample_every, detect_every, on_progress, check_continue)
        header = {
            "job_id": job_id,
            "tag": tag,
            "video": facts.to_json(video_uri),
            "detectors": [d.describe() for d in detectors],
            "sample_every": sample_every,
            "detect_every": detect_every,
        }
        footer = {"worker_id": worker_id, "started_at": started_at, "finished_at": utc_now_iso(time.time())}
        writer.write(out_path, header, footer)
        return writer.summary()
