"""What becomes of one SQS message: an Outcome, decided once per message and applied in one place."""

from __future__ import annotations

import dataclasses
import enum
import logging

from worker.errors import LeaseLost
from worker.aws.queue import JobQueue, Message

log = logging.getLogger(__name__)


class Reason(enum.Enum):
    """Why the message got its disposition."""

    SUCCEEDED = "SUCCEEDED"  # the job ran and succeeded
    FAILED = "FAILED"  # the job (or its invalid message) ended FAILED
    DUPLICATE = "DUPLICATE"  # the job had already ended
    BUSY = "BUSY"  # another live worker holds the job, or is still publishing its end
    RELEASED = "RELEASED"  # the worker is shutting down: the job goes to another worker now
    RETRY = "RETRY"  # an unexpected error: released, redelivered after the visibility timeout
    LOST = "LOST"  # another worker took the job over
    NOT_A_JOB = "NOT_A_JOB"  # the body cannot name a job: left for the dead-letter queue
    REFUSED = "REFUSED"  # it names an existing job with a different request: left for the dead-letter queue
    ERROR = "ERROR"  # the worker could not handle the message at all
    SHUTDOWN = "SHUTDOWN"  # received while stopping, handed straight back


class Disposition(enum.Enum):
    DELETE = "delete"  # settled: SQS forgets it
    HIDE = "hide"  # visible again after `hide_s` (0: now)
    LEAVE = "leave"  # untouched: redelivered after its visibility timeout, or dead-lettered


@dataclasses.dataclass(frozen=True)
class Outcome:
    reason: Reason
    disposition: Disposition
    hide_s: int | None = None

    @classmethod
    def delete(cls, reason: Reason) -> "Outcome":
        return cls(reason, Disposition.DELETE)

    @classmethod
    def hide(cls, reason: Reason, seconds: int) -> "Outcome":
        return cls(reason, Disposition.HIDE, max(0, int(seconds)))

    @classmethod
    def leave(cls, reason: Reason) -> "Outcome":
        return cls(reason, Disposition.LEAVE)

    def with_reason(self, reason: Reason) -> "Outcome":
        return dataclasses.replace(self, reason=reason)

    def to_json(self) -> dict:
        entry = {"reason": self.reason.value, "disposition": self.disposition.value}
        if self.hide_s is not None:
            entry["hide_s"] = self.hide_s
        return entry


def settle(queue: JobQueue, message: Message, outcome: Outcome) -> Outcome:
    """Applies `outcome` to the message and logs it; every handled message passes through here.

    Logged before it is applied, so that a log reader sees the attempt end before another
    worker can receive the message. Returns the outcome, or ERROR if SQS refused it.
    """
    log.info("message settled", extra={"message_id": message.message_id, "outcome": outcome.to_json()})
    try:
        if outcome.disposition is Disposition.DELETE:
            queue.delete(message)
        elif outcome.disposition is Disposition.HIDE:
            queue.set_visibility(message, outcome.hide_s)
    except LeaseLost:
        log.info("the message is no longer this worker's; nothing to settle", extra={"message_id": message.message_id})
    except Exception:  # the message stays as it is; SQS redelivers it
        log.exception("could not settle the message", extra={"message_id": message.message_id})
        return Outcome.leave(Reason.ERROR)
    return outcome
