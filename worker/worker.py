"""The worker loop: long-poll the queue, claim each job, run it, record its end, settle the message."""

from __future__ import annotations

import datetime
import logging
import os
import threading
import time

from worker.analysis import Limits, analyze_file
from worker.aws import AwsClients
from worker.config import Settings
from worker.detector_pool import DetectorPool
from worker.errors import (AccessDenied, InvalidMessage, JobCancelled, JobFailure, JobNotClaimable, LeaseLost,
                           MessageRefused, NotAJob)
from worker.events import Notifier, completion_event, event_from_record
from worker.gpu import GpuSampler
from worker.heartbeat import Heartbeat
from worker.identity import default_worker_id
from worker.jobqueue import JobQueue, Message
from worker.jobs import FAILED, SUCCEEDED, JobStore, Lease
from worker.logs import current_job_id
from worker.message import JobRequest, read_job
from worker.metrics import JobMetrics
from worker.storage import Storage, split_s3_uri
from worker.task_protection import TaskProtection
from worker.workdir import private_workdir, remove_stale_workdirs

log = logging.getLogger(__name__)

LONG_POLL_S = 20
# With --drain, an empty receive this long means no message is visible (a long poll of
# at least 1 s asks every SQS server, so it cannot miss a visible one).
DRAIN_POLL_S = 2
# Longest pause between receives while SQS keeps failing.
MAX_BACKOFF_S = 30


class Worker:
    def __init__(self, settings: Settings, clients: AwsClients, pool: DetectorPool | None = None,
                 worker_id: str | None = None, protection: TaskProtection | None = None):
        settings.require("queue_url", "jobs_table")
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self.queue = JobQueue(clients.sqs, settings.queue_url)
        self.jobs = JobStore(clients.dynamodb, settings.jobs_table)
        self.storage = Storage(clients.s3, settings.max_video_bytes, settings.bucket_allowed)
        self.notifier = Notifier(clients.sns, settings.notify_topic_arn)
        self.pool = pool or DetectorPool(settings.human_model)
        self.metrics = JobMetrics(settings.service_name)
        self.protection = protection or TaskProtection.from_environment()
        self.running = False
        self.stopping = False
        self.busy = False
        self._abort = threading.Event()
        self._stopped = threading.Event()
        self._max_receive_count: int | None = None

    # -- the loop ------------------------------------------------------------------------

    def run(self, drain: bool = False, max_jobs: int | None = None) -> int:
        """Processes messages until stopped, or (drain) until none is visible; returns how many."""
        self.running, self.stopping = True, False
        self._stopped.clear()
        remove_stale_workdirs()
        self._max_receive_count = self._read_max_receive_count()
        handled = 0
        log.info("worker started", extra={"worker_id": self.worker_id, "queue_url": self.queue.url,
                                          "max_receive_count": self._max_receive_count})
        failures = 0
        while self.running:
            try:
                message = self.queue.receive(DRAIN_POLL_S if drain else LONG_POLL_S, self.settings.visibility_timeout)
                failures = 0
            except Exception:  # SQS unreachable even after botocore's retries: back off, keep going
                failures += 1
                log.exception("could not receive from the queue", extra={"failures_in_a_row": failures})
                self._stopped.wait(min(2 ** failures, MAX_BACKOFF_S))
                continue
            if message is None:
                if drain:
                    break
                continue
            if not self.running:
                # It arrived on the poll that was in flight when the stop came: hand it straight back.
                self.queue.set_visibility(message, 0)
                log.info("stopping: returned a message received during shutdown",
                         extra={"message_id": message.message_id})
                break
            self.busy = True
            try:
                self.handle(message)
            finally:
                self.busy = False
            handled += 1
            if max_jobs is not None and handled >= max_jobs:
                break
        self.running = False
        log.info("worker stopped", extra={"worker_id": self.worker_id, "messages_handled": handled})
        return handled

    def stop(self) -> None:
        """Stops polling; the job in hand finishes."""
        if self.running:
            log.info("stopping: no more messages will be received")
        self.running = False
        self.stopping = True
        self._stopped.set()

    def abort(self) -> None:
        """Stops polling and releases the job in hand for another worker."""
        self.stop()
        self._abort.set()

    # -- one message ---------------------------------------------------------------------

    def handle(self, message: Message) -> str:
        """Handles one message; returns the job's outcome (a status, or why nothing ran).

        Never raises: whatever goes wrong is logged and the message left for SQS to redeliver.
        """
        token = current_job_id.set(None)
        try:
            return self._handle(message)
        except Exception:
            log.exception("could not handle the message; leaving it for redelivery",
                          extra={"message_id": message.message_id})
            return "ERROR"
        finally:
            current_job_id.reset(token)

    def _handle(self, message: Message) -> str:
        try:
            request = read_job(message.body, message.message_id)
        except NotAJob as error:
            log.error("message is not a job; leaving it for the dead-letter queue",
                      extra={"message_id": message.message_id, "reason": str(error)})
            return "NOT_A_JOB"
        except MessageRefused as refused:
            current_job_id.set(refused.job_id)
            return self._reject(message, refused)
        current_job_id.set(request.job_id)

        self.jobs.create(request)
        try:
            lease = self.jobs.claim(request.job_id, self.worker_id, self.settings.visibility_timeout)
        except JobNotClaimable as taken:
            return self._settle_unclaimable(message, taken)
        log.info("job started", extra={"video": request.video, "detectors": list(request.detectors),
                                       "attempt": lease.attempt, "receive_count": message.receive_count})
        with self.protection.while_busy():
            return self._run_claimed(message, request, lease)

    def _run_claimed(self, message: Message, request: JobRequest, lease: Lease) -> str:
        started = time.time()
        with GpuSampler() as gpu:
            outcome, frames = self._run_to_end(message, request, lease)
        if outcome in (SUCCEEDED, FAILED):
            self.metrics.job_ended(outcome == SUCCEEDED, duration_s=time.time() - started,
                                   queue_wait_s=started - message.sent_at, frames=frames, gpu=gpu.summary())
        return outcome

    def _run_to_end(self, message: Message, request: JobRequest, lease: Lease) -> tuple[str, int | None]:
        """Runs a claimed job and records its end; returns the outcome and the frames analysed."""
        try:
            with Heartbeat(self.queue, self.jobs, message, lease, self.settings.visibility_timeout,
                           self.protection) as heartbeat:
                result_uri, summary = self._execute(request, heartbeat)
            self.jobs.succeed(lease, result_uri, summary["frames_analyzed"])
        except JobFailure as failure:
            return self._fail(message, request, lease, failure.code, str(failure)), None
        except LeaseLost as lost:
            log.warning("job taken over by another worker; leaving it", extra={"reason": str(lost)})
            return "LOST", None
        except JobCancelled:
            self._release(message, lease, "worker shut down", visible_in_s=0)
            return "RELEASED", None
        except Exception as error:
            log.exception("job hit an unexpected error")
            reason = f"{type(error).__name__}: {error}"
            if self._is_last_attempt(message):
                # SQS moves the message to the dead-letter queue next; the record must not stay RUNNING.
                return self._fail(message, request, lease, "INTERNAL", reason, settle=False), None
            self._release(message, lease, reason, visible_in_s=None)
            return "RETRY", None
        log.info("job succeeded", extra={"result_uri": result_uri, **summary})
        self._finish(message, completion_event(request.job_id, SUCCEEDED, request.tag, request.video,
                                               result_uri=result_uri))
        return SUCCEEDED, summary["frames_analyzed"]

    def _execute(self, request: JobRequest, heartbeat: Heartbeat) -> tuple[str, dict]:
        result_uri = self._result_uri(request)
        detectors = self.pool.get(request.detectors, request.min_confidence)

        def check_continue() -> None:
            heartbeat.check()
            if self._abort.is_set():
                raise JobCancelled("worker is shutting down")

        with private_workdir() as workdir:
            video_path = self.storage.fetch_video(request.video, workdir)
            result_path = os.path.join(workdir, "detections.json")
            summary = analyze_file(
                video_path, result_path,
                video_uri=request.video, job_id=request.job_id, tag=request.tag, detectors=detectors,
                sample_every=request.sample_every, detect_every=request.detect_every, worker_id=self.worker_id,
                limits=Limits(self.settings.max_frame_pixels, self.settings.max_duration_s),
                on_progress=heartbeat.update, check_continue=check_continue,
            )
            check_continue()
            heartbeat.confirm()  # never publish a result for a job this worker no longer holds
            self.storage.publish_result(result_path, result_uri)
        return result_uri, summary

    def _result_uri(self, request: JobRequest) -> str:
        if request.output:
            prefix = request.output
        elif self.settings.results_bucket:
            prefix = f"s3://{self.settings.results_bucket}/results/{request.job_id}/"
        else:
            raise InvalidMessage("output is required: VIDEOSCAN_RESULTS_BUCKET is not set")
        bucket, _ = split_s3_uri(prefix)
        if not self.settings.bucket_allowed(bucket):
            raise AccessDenied(f"output bucket {bucket!r} is not in VIDEOSCAN_ALLOWED_BUCKETS")
        return prefix + "detections.json"

    def _read_max_receive_count(self) -> int | None:
        try:
            return self.queue.max_receive_count()
        except Exception:  # without it, a poison job's last attempt is simply not recognised
            log.warning("could not read the queue's redrive policy", exc_info=True)
            return None

    def _is_last_attempt(self, message: Message) -> bool:
        return self._max_receive_count is not None and message.receive_count >= self._max_receive_count

    # -- endings -------------------------------------------------------------------------

    def _fail(self, message: Message, request: JobRequest, lease: Lease, code: str, reason: str,
              settle: bool = True) -> str:
        log.warning("job failed", extra={"code": code, "error": reason})
        self.jobs.fail(lease, code, reason)
        event = completion_event(request.job_id, FAILED, request.tag, request.video,
                                 error={"code": code, "message": reason})
        if settle:
            self._finish(message, event)
        else:
            self._notify(event)
        return FAILED

    def _reject(self, message: Message, refused: MessageRefused) -> str:
        """An invalid message: recorded FAILED (unless that id already has another fate) and settled."""
        log.warning("message rejected", extra={"code": refused.code, "error": str(refused),
                                               "message_id": message.message_id})
        attempt_id = f"{self.worker_id}/{message.receipt_handle[-16:]}"
        if self.jobs.fail_unclaimed(refused.job_id, attempt_id, refused.code, str(refused), refused.tag):
            self.metrics.job_ended(succeeded=False)
            self._finish(message, completion_event(refused.job_id, FAILED, refused.tag, refused.video,
                                                   error={"code": refused.code, "message": str(refused)}))
        else:
            self._settle_ended(message, refused.job_id, refused.video)
        return FAILED

    def _settle_unclaimable(self, message: Message, taken: JobNotClaimable) -> str:
        if taken.finished:
            log.info("job already ended; settling the duplicate message", extra={"status": taken.status})
            return self._settle_ended(message, taken.job_id)
        # A live worker holds it: hand the duplicate back until that lease would lapse, rather
        # than run the job twice at once. If the holder died, the next delivery takes it over.
        delay = self.settings.visibility_timeout
        if taken.lease_until:
            delay = min(delay, max(1, int(taken.lease_until - time.time()) + 1))
        log.info("job is held by another worker; returning the duplicate message",
                 extra={"status": taken.status, "retry_in_s": delay})
        self.queue.set_visibility(message, delay)
        return "BUSY"

    def _release(self, message: Message, lease: Lease, reason: str, visible_in_s: int | None) -> None:
        """Hands a job back: record QUEUED, and the message visible again now (0) or after its timeout."""
        try:
            self.jobs.release(lease, reason)
            if visible_in_s is not None:
                self.queue.set_visibility(message, visible_in_s)
            log.info("job released", extra={"reason": reason})
        except LeaseLost:
            log.info("job was already taken over; nothing to release")

    def _settle_ended(self, message: Message, job_id: str, video: str | None = None) -> str:
        """Settles a message whose job has already ended, publishing its event if the worker
        that ended it died before it could."""
        record = self.jobs.get(job_id)
        if not (self.notifier.topic_arn and record and record["status"] in (SUCCEEDED, FAILED)
                and not record.get("notified_at")):
            self.queue.delete(message)
            return "DUPLICATE"
        # The worker that ended the job may still be publishing: give it a visibility timeout.
        ended_ago = time.time() - datetime.datetime.fromisoformat(record["finished_at"]).timestamp()
        if ended_ago < self.settings.visibility_timeout:
            self.queue.set_visibility(message, int(self.settings.visibility_timeout - ended_ago) + 1)
            return "BUSY"
        log.info("publishing the completion event a previous attempt did not")
        self._finish(message, event_from_record(record, video))
        return "DUPLICATE"

    def _finish(self, message: Message, event: dict) -> None:
        """Publishes the job's completion event, then settles its message."""
        if self._notify(event):
            self.queue.delete(message)

    def _notify(self, event: dict) -> bool:
        """Publishes the event once per job (recorded in the job), at least once across crashes.

        If SNS fails, the message is left: its redelivery finds the job ended but not
        notified, and publishes then.
        """
        if not self.notifier.topic_arn:
            return True
        try:
            self.notifier.publish(event)
        except Exception:
            log.error("could not publish the completion event; leaving the message so a redelivery retries it",
                      exc_info=True)
            return False
        self.jobs.mark_notified(event["job_id"])
        return True
