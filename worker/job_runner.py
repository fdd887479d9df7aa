"""Runs one claimed job: fetch the video, analyse it, publish the result, record the end."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

from worker.analysis.file import AnalysisJob, analyze_file
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.endings import JobEndings
from worker.errors import AccessDenied, InvalidMessage, JobCancelled, JobFailure, LeaseLost
from worker.gpu import GpuSampler
from worker.aws.heartbeat import Heartbeat
from worker.aws.queue import JobQueue, Message
from worker.aws.jobs import JobStore, Lease
from worker.message import JobRequest
from worker.aws.metrics import JobMetrics
from worker.options import PipelineConfig
from worker.outcome import Outcome, Reason
from worker.outputs.job import JobOutputs, content_type_of
from worker.aws.storage import Storage, split_s3_uri
from worker.aws.task_protection import TaskProtection
from worker.workdir import private_workdir

log = logging.getLogger(__name__)

RESULT_NAME = "detections.json"


@dataclasses.dataclass
class JobRunner:
    """Runs claimed jobs to their end; `abort` (set by the worker) releases the job in hand."""

    settings: Settings
    worker_id: str
    queue: JobQueue
    jobs: JobStore
    storage: Storage
    pool: DetectorPool
    endings: JobEndings
    metrics: JobMetrics
    protection: TaskProtection
    abort: threading.Event
    pipeline: PipelineConfig = PipelineConfig()
    _max_receive_count: int | None = dataclasses.field(default=None, init=False)

    def read_queue_policy(self) -> int | None:
        """Learns after how many receives SQS dead-letters a message (to recognise a last attempt)."""
        try:
            self._max_receive_count = self.queue.max_receive_count()
        except Exception:  # without it, a poison job's last attempt is simply not recognised
            log.warning("could not read the queue's redrive policy", exc_info=True)
            self._max_receive_count = None
        return self._max_receive_count

    def run(self, message: Message, request: JobRequest, lease: Lease) -> Outcome:
        started = time.time()
        with GpuSampler() as gpu:
            outcome, frames, output_s = self._run_to_end(message, request, lease)
        if outcome.reason in (Reason.SUCCEEDED, Reason.FAILED):
            self.metrics.job_ended(outcome.reason is Reason.SUCCEEDED, duration_s=time.time() - started,
                                   queue_wait_s=started - message.sent_at, frames=frames, gpu=gpu.summary(),
                                   output_s=output_s)
        return outcome

    def _run_to_end(self, message: Message, request: JobRequest,
                    lease: Lease) -> tuple[Outcome, int | None, float | None]:
        """Runs a claimed job and records its end; returns its outcome, the frames analysed and the
        seconds of output video made."""
        try:
            with Heartbeat(self.queue, self.jobs, message, lease, self.settings.visibility_timeout,
                           self.protection) as heartbeat:
                result_uri, summary, outputs = self._execute(request, heartbeat)
            self.jobs.succeed(lease, result_uri, summary["frames_analyzed"])
        except JobFailure as failure:
            return self.endings.failed(request, lease, failure.code, str(failure)), None, None
        except LeaseLost as lost:
            log.warning("job taken over by another worker; leaving it", extra={"reason": str(lost)})
            return Outcome.leave(Reason.LOST), None, None
        except JobCancelled:
            return self.endings.released(lease, "worker shut down", now=True), None, None
        except Exception as error:
            log.exception("job hit an unexpected error")
            reason = f"{type(error).__name__}: {error}"
            if self._is_last_attempt(message):
                # SQS moves the message to the dead-letter queue next; the record must not stay RUNNING.
                return self.endings.failed(request, lease, "INTERNAL", reason, settle=False), None, None
            return self.endings.released(lease, reason, now=False), None, None
        log.info("job succeeded", extra={"result_uri": result_uri, **summary})
        return (self.endings.succeeded(request, result_uri, outputs.outputs if outputs else None),
                summary["frames_analyzed"], outputs.video_seconds if outputs else None)

    def _execute(self, request: JobRequest, heartbeat: Heartbeat) -> tuple[str, dict, JobOutputs | None]:
        result_uri = self._result_uri(request)
        configured = request.output is None  # the operator's results bucket, not the message's
        self.storage.check_output(result_uri, request.job_id, configured)  # before any work
        options = dataclasses.replace(request.options, limits=self.settings.limits)
        detectors = self.pool.get(options.detectors)
        job = AnalysisJob(request.job_id, request.video, options, self.worker_id, request.tag)

        def check_continue() -> None:
            heartbeat.check()
            if self.abort.is_set():
                raise JobCancelled("worker is shutting down")

        with private_workdir() as workdir:
            video_path = self.storage.fetch_video(request.video, workdir, check_continue)
            result_path = os.path.join(workdir, RESULT_NAME)
            outputs = JobOutputs(video_path, options, workdir, result_uri.removesuffix(RESULT_NAME),
                                 self._output_publisher(heartbeat)) if options.outputs else None
            try:
                summary = analyze_file(video_path, result_path, job, detectors, self.pipeline,
                                       on_progress=heartbeat.update, check_continue=check_continue,
                                       make_outputs=outputs)
            except Exception as error:
                # Not once the result's upload has begun: it may have landed, pointing at them.
                if outputs and not isinstance(error, LeaseLost):  # lost: the names may be another worker's now
                    self._withdraw(outputs.published.values())
                raise
            check_continue()
            heartbeat.confirm()  # never publish a result for a job this worker no longer holds
            self.storage.publish_result(result_path, result_uri, request.job_id, configured)
        return result_uri, summary, outputs

    def _output_publisher(self, heartbeat: Heartbeat):
        def publish(path: str, uri: str) -> None:
            heartbeat.confirm()  # outputs go only under a job this worker still holds
            self.storage.publish_file(path, uri, content_type_of(uri))
        return publish

    def _withdraw(self, uris) -> None:
        """Removes this attempt's outputs when its result is not published: without the result, no
        reader is pointed at them, and a retry writes them again under the same names."""
        for uri in uris:
            try:
                self.storage.delete(uri)
            except Exception:  # the retry overwrites it; nothing refers to it meanwhile
                log.warning("could not remove an unpublished output", extra={"uri": uri}, exc_info=True)

    def _result_uri(self, request: JobRequest) -> str:
        own = f"s3://{self.settings.results_bucket}/results/{request.job_id}/" if self.settings.results_bucket else None
        if request.output:
            prefix = request.output
            # results/ in the results bucket holds each job's default prefix: only its own may be named.
            if own and prefix.startswith(f"s3://{self.settings.results_bucket}/results/") and prefix != own:
                raise InvalidMessage(f"output must not be inside another job's results/ prefix in "
                                     f"VIDEOSCAN_RESULTS_BUCKET (this job's is {own})")
        elif own:
            prefix = own
        else:
            raise InvalidMessage("output is required: VIDEOSCAN_RESULTS_BUCKET is not set")
        bucket, _ = split_s3_uri(prefix)
        if not self.settings.bucket_allowed(bucket):
            raise AccessDenied(f"output bucket {bucket!r} is not in VIDEOSCAN_ALLOWED_BUCKETS")
        return prefix + RESULT_NAME

    def _is_last_attempt(self, message: Message) -> bool:
        return self._max_receive_count is not None and message.receive_count >= self._max_receive_count
