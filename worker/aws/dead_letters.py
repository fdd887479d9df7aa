"""Jobs whose worker died on every attempt, ended by any live worker from the dead-letter queue.

When a worker is killed on a job's last attempt (out of memory, a crash on a hostile file),
nothing records the job's end: SQS moves its message to the dead-letter queue and the record
keeps a lapsed lease. Every worker looks at the dead-letter queue now and then, without
deleting anything (the messages stay there for inspection), and ends such jobs FAILED with a
conditional write: several workers may find the same job, one of them records its end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from worker.aws.jobs import RUNNING, JobStore
from worker.aws.queue import JobQueue, Message
from worker.endings import JobEndings
from worker.errors import MessageRefused, NotAJob
from worker.idempotency import request_fingerprint
from worker.message_body import read_job

log = logging.getLogger(__name__)

STOPPED_ON_EVERY_ATTEMPT = "the worker stopped on every attempt"
SWEEP_EVERY_S = 60.0
# A peeked message is hidden this long, so that the next receives of one sweep see others.
PEEK_HIDE_S = 10
# At most this many receives (of up to 10 messages) per sweep: a long dead-letter queue costs little.
MAX_PEEKS = 5
# Message ids known to need nothing more (their job ended and was announced, or they name none).
_MAX_SETTLED = 10_000


class DeadJobSweeper:
    def __init__(self, dead_letters: JobQueue, jobs: JobStore, endings: JobEndings,
                 clock: Callable[[], float] = time.monotonic):
        self._dead_letters = dead_letters
        self._jobs = jobs
        self._endings = endings
        self._clock = clock
        self._last: float | None = None
        self._settled: set[str] = set()

    def due(self) -> bool:
        return self._last is None or self._clock() - self._last >= SWEEP_EVERY_S

    def sweep(self) -> int:
        """Ends the abandoned jobs of the dead-lettered messages it sees; returns how many."""
        self._last = self._clock()
        if len(self._settled) > _MAX_SETTLED:
            self._settled.clear()
        seen: set[str] = set()
        ended = 0
        for _ in range(MAX_PEEKS):
            batch = [m for m in self._dead_letters.receive_many(10, 0, PEEK_HIDE_S) if m.message_id not in seen]
            if not batch:
                break
            for message in batch:
                seen.add(message.message_id)
                if message.message_id not in self._settled:
                    ended += self._end_if_abandoned(message)
        if ended:
            log.info("ended jobs whose worker stopped on every attempt", extra={"jobs_ended": ended})
        return ended

    def _end_if_abandoned(self, message: Message) -> bool:
        try:
            request = read_job(message.body, message.message_id)
        except (NotAJob, MessageRefused):  # an invalid message ends its job when first received
            self._settled.add(message.message_id)
            return False
        record = self._jobs.get(request.job_id)
        if record is None or record.ended:
            if record is None or record.notified_at or not self._endings.notifier.topic_arn:
                self._settled.add(message.message_id)
            else:  # its worker died before announcing the end
                self._endings.already_ended(record.job_id, request.video)
            return False
        # A message refused for naming another request must not end the job it names.
        if record.status != RUNNING or record.fingerprint != request_fingerprint(request.to_message()):
            return False
        return self._endings.abandoned(record, STOPPED_ON_EVERY_ATTEMPT)
