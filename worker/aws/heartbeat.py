"""Keeps a running job alive from one background thread: message visibility, lease, progress."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable

from worker.errors import LeaseLost
from worker.aws.queue import MAX_VISIBILITY_S, JobQueue, Message
from worker.aws.jobs import JobStore, Lease
from worker.aws.task_protection import TaskProtection

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 5.0


class Heartbeat:
    """Every few seconds writes the latest progress (which renews the job's lease), and
    extends the message's visibility once a third of it has passed, well before expiry
    (and the task's scale-in protection, when it is due).

    If either write shows that another worker owns the job now, `check()` raises
    LeaseLost so the pipeline stops instead of racing the new owner.
    """

    def __init__(self, queue: JobQueue, jobs: JobStore, message: Message, lease: Lease,
                 visibility_timeout: int, protection: TaskProtection | None = None,
                 interval_s: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.time):
        self._queue = queue
        self._protection = protection
        self._clock = clock
        self._jobs = jobs
        self._message = message
        self._lease = lease
        self._visibility_timeout = visibility_timeout
        self._interval_s = min(interval_s, max(visibility_timeout / 3.0, 0.5))
        self._progress = (0, 0)
        self._lost: LeaseLost | None = None
        self._stop = threading.Event()
        self._extended_at = message.received_at
        # When the lease was last renewed (before the write, so on the safe side).
        self._renewed_at = self._clock()
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="heartbeat", daemon=True)

    def update(self, frames_done: int, frames_total: int) -> None:
        self._progress = (frames_done, frames_total)

    def check(self) -> None:
        """Raises LeaseLost if another worker took the job, or may have: after a pause (a frozen
        process, a stalled VM) longer than the lease, the job is no longer safely this worker's."""
        # The lease lasts a visibility timeout from its last renewal; a small margin covers clock skew.
        margin = min(1.0, self._visibility_timeout / 4)
        unrenewed_s = self._clock() - self._renewed_at
        if self._lost is None and unrenewed_s > self._visibility_timeout - margin:
            self._lost = LeaseLost(f"lease not renewed for {unrenewed_s:.0f} s")
        if self._lost is not None:
            raise self._lost

    def confirm(self) -> None:
        """Renews the lease now, raising LeaseLost if another worker holds the job (before a result is published)."""
        self.check()
        self._renew()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        """Writes the progress, which renews the lease; LeaseLost if the job is no longer ours."""
        started = self._clock()
        self._jobs.progress(self._lease, *self._progress, lease_s=self._visibility_timeout)
        self._renewed_at = started

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._beat()
            except LeaseLost as lost:
                log.warning("job lost to another worker; stopping it", extra={"reason": str(lost)})
                self._lost = lost
                return
            except Exception:  # a failed beat is retried at the next one
                log.warning("heartbeat failed; retrying", exc_info=True)

    def _beat(self) -> None:
        if self._clock() - self._extended_at >= self._visibility_timeout / 3.0:
            # SQS caps a message's hidden time at 12 hours from its receipt; past that the
            # lease alone keeps other workers from running the job.
            remaining = MAX_VISIBILITY_S - (self._clock() - self._message.received_at)
            if remaining > 1:
                self._queue.set_visibility(self._message, min(self._visibility_timeout, int(remaining)))
            self._extended_at = self._clock()
        self._renew()
        if self._protection:
            self._protection.renew_if_due()
