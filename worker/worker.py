"""The worker loop: long-poll the queue, claim each job, run it, and settle its message."""

from __future__ import annotations

import logging
import threading

from worker.aws.clients import AwsClients
from worker.aws.dead_letters import DeadJobSweeper
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.endings import JobEndings
from worker.errors import JobNotClaimable, MessageRefused, NotAJob
from worker.aws.events import Notifier
from worker.idempotency import IdempotencyMismatch
from worker.identity import default_worker_id
from worker.job_runner import JobRunner
from worker.aws.queue import JobQueue, Message
from worker.aws.jobs import JobStore
from worker.logs import current_job_id
from worker.message_body import read_job
from worker.aws.metrics import JobMetrics
from worker.aws.model_fetch import S3ModelFetcher
from worker.outcome import Outcome, Reason, settle
from worker.aws.storage import Storage
from worker.aws.task_protection import TaskProtection
from worker.workdir import remove_stale_workdirs

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
        self.jobs = JobStore(clients.dynamodb, settings.jobs_table, clock_skew_s=settings.clock_skew_s)
        metrics = JobMetrics(settings.service_name)
        self.endings = JobEndings(self.jobs, Notifier(clients.sns, settings.notify_topic_arn), metrics,
                                  self.worker_id, settings.visibility_timeout)
        self.protection = protection or TaskProtection.from_environment()
        self._abort = threading.Event()
        self.runner = JobRunner(
            settings, self.worker_id, self.queue, self.jobs,
            Storage(clients.s3, settings.max_video_bytes, settings.bucket_allowed),
            pool or worker_pool(settings, clients, metrics), self.endings, metrics, self.protection, self._abort,
        )
        self.running = False
        self.stopping = False
        self.busy = False
        self._stopped = threading.Event()

    # -- the loop ------------------------------------------------------------------------

    def run(self, drain: bool = False, max_jobs: int | None = None) -> int:
        """Processes messages until stopped, or (drain) until none is visible; returns how many."""
        self.running, self.stopping = True, False
        self._stopped.clear()
        remove_stale_workdirs()
        max_receive_count = self.runner.read_queue_policy()
        sweeper = self._dead_job_sweeper()
        handled = 0
        log.info("worker started", extra={"worker_id": self.worker_id, "queue_url": self.queue.url,
                                          "max_receive_count": max_receive_count})
        failures = 0
        while self.running:
            if sweeper and sweeper.due():
                self._sweep(sweeper)
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
                settle(self.queue, message, Outcome.hide(Reason.SHUTDOWN, 0))
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

    def _dead_job_sweeper(self) -> DeadJobSweeper | None:
        try:
            dead_letters = self.queue.dead_letter_queue()
        except Exception:  # without it, jobs whose worker died on every attempt stay RUNNING
            log.warning("could not find the queue's dead-letter queue", exc_info=True)
            return None
        return DeadJobSweeper(dead_letters, self.jobs, self.endings) if dead_letters else None

    def _sweep(self, sweeper: DeadJobSweeper) -> None:
        try:
            sweeper.sweep()
        except Exception:  # the next sweep tries again; the worker carries on with its queue
            log.exception("could not look at the dead-letter queue")

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

    def handle(self, message: Message) -> Outcome:
        """Handles one message, settles it, and returns its outcome.

        Never raises: whatever goes wrong is logged and the message left for SQS to redeliver.
        """
        token = current_job_id.set(None)
        try:
            try:
                outcome = self._handle(message)
            except Exception:
                log.exception("could not handle the message; leaving it for redelivery",
                              extra={"message_id": message.message_id})
                outcome = Outcome.leave(Reason.ERROR)
            return settle(self.queue, message, outcome)
        finally:
            current_job_id.reset(token)

    def _handle(self, message: Message) -> Outcome:
        try:
            request = read_job(message.body, message.message_id)
        except NotAJob as error:
            log.error("message is not a job; leaving it for the dead-letter queue",
                      extra={"message_id": message.message_id, "reason": str(error)})
            return Outcome.leave(Reason.NOT_A_JOB)
        except MessageRefused as refused:
            current_job_id.set(refused.job_id)
            try:
                return self.endings.rejected(message, refused)
            except IdempotencyMismatch as mismatch:  # it names another job: touch nothing
                return self.endings.mismatched(mismatch)
        current_job_id.set(request.job_id)

        try:
            self.jobs.create(request)
        except IdempotencyMismatch as mismatch:
            return self.endings.mismatched(mismatch)
        try:
            lease = self.jobs.claim(request.job_id, self.worker_id, self.settings.visibility_timeout)
        except JobNotClaimable as taken:
            return self.endings.unclaimable(taken)
        log.info("job started", extra={"video": request.video, "detectors": list(request.options.detector_names),
                                       "attempt": lease.attempt, "receive_count": message.receive_count})
        with self.protection.while_busy():
            return self.runner.run(message, request, lease)


def worker_pool(settings: Settings, clients: AwsClients, metrics: JobMetrics) -> DetectorPool:
    """The worker's detectors: models from S3 kept on disk by ETag, loads counted in its metrics."""
    fetch = S3ModelFetcher(clients.s3, cache=True, bucket_allowed=settings.bucket_allowed)
    return DetectorPool(settings.human_model, fetch_model=fetch, cache_size=settings.model_cache_size,
                        on_load=lambda spec, seconds: metrics.model_loaded(seconds))
