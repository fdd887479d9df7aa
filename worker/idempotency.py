"""A job id's identity: the fingerprint of the request it was first recorded for.

A job id (explicit, or derived from a client token) names one request for good. The record
keeps a fingerprint of it; the same request again is a duplicate, another one is refused
with IDEMPOTENCY_MISMATCH and touches nothing (as Rekognition answers a reused
ClientRequestToken). `version` is left out: it names the message format, not the request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from worker.errors import JobFailure


class IdempotencyMismatch(JobFailure):
    """The job id already names a different request."""

    code = "IDEMPOTENCY_MISMATCH"

    def __init__(self, job_id: str):
        super().__init__(f"job {job_id} already exists with a different request")
        self.job_id = job_id


def request_fingerprint(message: dict[str, Any]) -> str:
    """Of a validated request, as `JobRequest.to_message` writes it."""
    canonical = json.dumps({k: v for k, v in message.items() if k != "version"}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=True)
    return "request:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def refused_fingerprint(body: str) -> str:
    """Of a message refused as invalid: its redelivery is the same refused job, any other message is not."""
    return "refused:" + hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
