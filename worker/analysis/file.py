"""One video file in, one complete result document out: shared by `analyze` and the worker."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence

from detectors import Detector
from worker.clock import utc_now_iso
from worker.options import JobOptions, PipelineConfig
from worker.analysis.pipeline import ProgressCallback, analyze
from worker.analysis.results import ResultWriter
from worker.analysis.video import VideoReader, decode_threads


@dataclasses.dataclass(frozen=True)
class AnalysisJob:
    """One analysis: what it is asked for, and what its result document names."""

    job_id: str
    video_uri: str
    options: JobOptions
    worker_id: str
    tag: str | None = None


def analyze_file(
    video_path: str,
    out_path: str,
    job: AnalysisJob,
    detectors: Sequence[Detector],
    config: PipelineConfig = PipelineConfig(),
    on_progress: ProgressCallback | None = None,
    check_continue: Callable[[], None] | None = None,
) -> dict:
    """Runs the pipeline on `video_path` with `detectors` (built for `job.options.detectors`) and
    writes the contract's document to `out_path`.

    Work files go next to `out_path`, which is in the caller's private work directory.
    Returns the document's summary.
    """
    started_at = utc_now_iso(time.time())
    options, limits = job.options, job.options.limits
    threads = config.decode_threads or decode_threads(for_gpu=any(d.on_gpu for d in detectors))
    with VideoReader(video_path, limits.max_frame_pixels, limits.max_duration_s, threads) as reader, \
            ResultWriter((d.label for d in detectors), os.path.dirname(os.path.abspath(out_path))) as writer:
        facts = analyze(reader, detectors, writer, options.sample_every, options.detect_every, on_progress,
                        check_continue, config)
        header = {
            "job_id": job.job_id,
            "tag": job.tag,
            "video": facts.to_json(job.video_uri),
            "detectors": [d.describe() for d in detectors],
            "sample_every": options.sample_every,
            "detect_every": options.detect_every,
        }
        footer = {"worker_id": job.worker_id, "started_at": started_at, "finished_at": utc_now_iso(time.time())}
        writer.write(out_path, header, footer)
        return writer.summary()
