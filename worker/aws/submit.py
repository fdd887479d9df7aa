"""Submitting a job: record it QUEUED, then send its message, idempotently per job id."""

from __future__ import annotations

import logging

from worker.aws.queue import JobQueue
from worker.aws.jobs import QUEUED, JobStore
from worker.message import JobRequest

log = logging.getLogger(__name__)


def submit(request: JobRequest, jobs: JobStore, queue: JobQueue) -> bool:
    """Returns whether a message was sent.

    Submitting the same job id again (the same `client_token`) sends nothing new, unless
    an earlier submit recorded the job but died before its message was sent.
    """
    record, created = jobs.create(request)
    if not created and (record.message_id or record.status != QUEUED):
        log.info("job already submitted", extra={"job_id": request.job_id, "status": record.status})
        return False
    message_id = queue.send(request.to_message())
    jobs.record_sent(request.job_id, message_id)
    return True
