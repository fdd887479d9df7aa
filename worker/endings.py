"""How a job ends: its record's end state, its completion event, and the Outcome for its message."""

from __future__ import annotations

import logging
import time

from worker.errors import JobNotClaimable, LeaseLost, MessageRefused
from worker.idempotency import IdempotencyMismatch, refused_fingerprint
from worker.aws.events import Notifier, completion_event, event_from_record
from worker.aws.jobs import FAILED, SUCCEEDED, JobRecord, JobStore, Lease
from worker.aws.queue import Message
from worker.message import JobRequest
from worker.aws.metrics import JobMetrics
from worker.outcome import Outcome, Reason

log = logging.getLogger(__name__)


class JobEndings:
    """Every ending of a job, each returning what becomes of its message (applied by the worker)."""

    def __init__(self, jobs: JobStore, notifier: Notifier, metrics: JobMetrics, worker_id: str,
                 visibility_timeout: int):
        self.jobs = jobs
        self.notifier = notifier
        self.metrics = metrics
        self.worker_id = worker_id
        self.visibility_timeout = visibility_timeout

    def succeeded(self, request: JobRequest, result_uri: str, outputs: dict[str, str] | None = None) -> Outcome:
        return self.finish(completion_event(request.job_id, SUCCEEDED, request.tag, request.video,
                                            result_uri=result_uri, outputs=outputs), Reason.SUCCEEDED)

    def failed(self, request: JobRequest, lease: Lease, code: str, reason: str, settle: bool = True) -> Outcome:
        """Records the job FAILED; `settle=False` leaves its message (SQS dead-letters it next)."""
        log.warning("job failed", extra={"code": code, "error": reason})
        self.jobs.fail(lease, code, reason)
        event = completion_event(request.job_id, FAILED, request.tag, request.video,
                                 error={"code": code, "message": reason})
        if settle:
            return self.finish(event, Reason.FAILED)
        self._notify(event)
        return Outcome.leave(Reason.FAILED)

    def rejected(self, message: Message, refused: MessageRefused) -> Outcome:
        """An invalid message: recorded FAILED (unless that id already has another fate) and settled."""
        log.warning("message rejected", extra={"code": refused.code, "error": str(refused),
                                               "message_id": message.message_id})
        attempt_id = f"{self.worker_id}/{message.receipt_handle[-16:]}"
        if self.jobs.fail_unclaimed(refused.job_id, attempt_id, refused_fingerprint(message.body), refused.code,
                                    str(refused), refused.tag):
            self.metrics.job_ended(succeeded=False)
            return self.finish(completion_event(refused.job_id, FAILED, refused.tag, refused.video,
                                                error={"code": refused.code, "message": str(refused)}), Reason.FAILED)
        return self.already_ended(refused.job_id, refused.video).with_reason(Reason.FAILED)

    def abandoned(self, record: JobRecord, reason: str) -> bool:
        """Ends FAILED a job whose worker died on every attempt (found by its dead-lettered message);
        False if it had another fate meanwhile."""
        # A duplicate of its message may still be on the job queue: it has had a visibility timeout
        # past the lapse to be received and take the job over.
        if not self.jobs.fail_abandoned(record, f"{self.worker_id}/dead-letter", "INTERNAL", reason,
                                        grace_s=self.visibility_timeout):
            return False
        log.warning("job failed: its message was dead-lettered while its lease had lapsed",
                    extra={"code": "INTERNAL", "error": reason, "attempts": record.attempts})
        self.metrics.job_ended(succeeded=False)
        self._notify(completion_event(record.job_id, FAILED, record.tag, record.request.get("video"),
                                      error={"code": "INTERNAL", "message": reason}))
        return True

    def mismatched(self, mismatch: IdempotencyMismatch) -> Outcome:
        """A message naming an existing job with another request: refused, left for the dead-letter queue."""
        log.error("message refused: its job id names a different request; leaving it for the dead-letter queue",
                  extra={"code": mismatch.code, "error": str(mismatch)})
        return Outcome.leave(Reason.REFUSED)

    def unclaimable(self, taken: JobNotClaimable) -> Outcome:
        if taken.finished:
            log.info("job already ended; settling the duplicate message", extra={"status": taken.status})
            return self.already_ended(taken.job_id)
        # A live worker holds it: hand the duplicate back until that lease would lapse (on any
        # clock within the skew tolerated), rather than run the job twice at once. If the holder
        # died, the next delivery takes it over.
        delay = self.visibility_timeout + self.jobs.clock_skew_s
        if taken.lease_until:
            delay = min(delay, max(1, int(taken.lease_until + self.jobs.clock_skew_s - time.time()) + 1))
        log.info("job is held by another worker; returning the duplicate message",
                 extra={"status": taken.status, "retry_in_s": delay})
        return Outcome.hide(Reason.BUSY, delay)

    def released(self, lease: Lease, reason: str, now: bool) -> Outcome:
        """Hands a job back: record QUEUED, the message visible again now, or after its timeout."""
        outcome = Outcome.hide(Reason.RELEASED, 0) if now else Outcome.leave(Reason.RETRY)
        try:
            self.jobs.release(lease, reason)
        except LeaseLost:
            log.info("job was already taken over; nothing to release")
            return Outcome.leave(outcome.reason)
        log.info("job released", extra={"reason": reason})
        return outcome

    def already_ended(self, job_id: str, video: str | None = None) -> Outcome:
        """For a message whose job has already ended: publishes its event if the worker that
        ended it died before it could."""
        record = self.jobs.get(job_id)
        if not (self.notifier.topic_arn and record and record.ended and not record.notified_at):
            return Outcome.delete(Reason.DUPLICATE)
        # The worker that ended the job may still be publishing: give it a visibility timeout.
        ended_ago = time.time() - record.finished_epoch()
        if ended_ago < self.visibility_timeout:
            return Outcome.hide(Reason.BUSY, int(self.visibility_timeout - ended_ago) + 1)
        log.info("publishing the completion event a previous attempt did not")
        return self.finish(event_from_record(record, video), Reason.DUPLICATE)

    def finish(self, event: dict, reason: Reason) -> Outcome:
        """Publishes the job's completion event; its message is settled only once that is done."""
        return Outcome.delete(reason) if self._notify(event) else Outcome.leave(reason)

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
