"""Job records in DynamoDB. Every write is here, and every write is a named conditional update.

Nothing moves a job out of SUCCEEDED or FAILED, and only the attempt holding a RUNNING
job (its `attempt_id`, with an unexpired `lease_until`) writes its progress or its end.
A lost race surfaces as JobNotClaimable or LeaseLost, never as a raw ClientError.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from worker.aws.job_record import FAILED, FINAL_STATES, QUEUED, RUNNING, SUCCEEDED, JobRecord, to_item
from worker.clock import utc_now_iso
from worker.config import DEFAULT_CLOCK_SKEW_S
from worker.errors import JobNotClaimable, LeaseLost
from worker.idempotency import IdempotencyMismatch, request_fingerprint
from worker.message import JobRequest

__all__ = ["FAILED", "FINAL_STATES", "QUEUED", "RUNNING", "SUCCEEDED", "JobRecord", "JobStore", "Lease"]

# The named sub-conditions every write is built from. A lease is one attempt's hold on
# a RUNNING job: its `attempt_id`, valid until `lease_until` (epoch seconds). `:now_epoch`
# in IS_LAPSED is the reader's clock less the skew tolerated between workers' clocks.
IS_NEW = "attribute_not_exists(job_id)"
IS_QUEUED = "#status = :queued"
IS_LAPSED = "(#status = :running AND lease_until < :now_epoch)"
HELD_BY_ME = "(#status = :running AND attempt_id = :attempt)"



@dataclasses.dataclass(frozen=True)
class Lease:
    """This worker's hold on a RUNNING job, from one claim."""

    job_id: str
    worker_id: str
    attempt_id: str
    attempt: int


class JobStore:
    """The jobs table.

    Writes are idempotent under retries: botocore retries a request whose response was
    lost, and the retry then fails its condition. Each write records the `attempt_id` it
    was made for, so such a failure is recognised as this attempt's own earlier success.
    """

    def __init__(self, dynamodb, table: str, clock: Callable[[], float] = time.time,
                 clock_skew_s: float = DEFAULT_CLOCK_SKEW_S):
        self._db = dynamodb
        self._table = table
        self._clock = clock
        self.clock_skew_s = clock_skew_s

    # -- reads -------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        item = self._db.get_item(TableName=self._table, Key=_key(job_id), ConsistentRead=True).get("Item")
        return JobRecord.from_item(item)

    # -- creation ----------------------------------------------------------------------

    def create(self, request: JobRequest) -> tuple[JobRecord, bool]:
        """Records a QUEUED job unless one with this id exists; returns (record, created).

        IdempotencyMismatch if the existing job was recorded for a different request.
        """
        now = self._clock()
        message = request.to_message()
        record = {
            "job_id": request.job_id,
            "status": QUEUED,
            "request": message,
            "fingerprint": request_fingerprint(message),
            "created_at": utc_now_iso(now),
            "updated_at": utc_now_iso(now),
            "attempts": 0,
        }
        if request.tag is not None:
            record["tag"] = request.tag
        try:
            self._db.put_item(TableName=self._table, Item=to_item(record), ConditionExpression=IS_NEW)
            return JobRecord(**record), True
        except ClientError as error:
            _raise_unless_condition_failed(error)
        existing = self.get(request.job_id)
        # Records made before fingerprints were stored are identified by the request they keep.
        if (existing.fingerprint or request_fingerprint(existing.request)) != record["fingerprint"]:
            raise IdempotencyMismatch(request.job_id)
        return existing, False

    def record_sent(self, job_id: str, message_id: str) -> None:
        """Notes the SQS message that carries a submitted job (makes `submit` retry-safe)."""
        self._update(job_id, "SET message_id = :message_id", "attribute_exists(job_id)", {":message_id": message_id})

    def fail_unclaimed(self, job_id: str, attempt_id: str, fingerprint: str, code: str, message: str,
                       tag: str | None = None) -> bool:
        """Records a job that never started (an invalid message, `fingerprint` of its body) as FAILED.

        False if this very message was refused before (a redelivery); IdempotencyMismatch if the id
        names another job, which an invalid message must not touch.
        """
        now = self._clock()
        values = {":failed": FAILED, ":error": {"code": code, "message": message}, ":now": utc_now_iso(now),
                  ":zero": 0, ":attempt": attempt_id, ":fingerprint": fingerprint}
        expression = ("SET #status = :failed, #error = :error, updated_at = :now, finished_at = :now, "
                      "attempt_id = :attempt, fingerprint = :fingerprint, created_at = :now, attempts = :zero")
        if tag is not None:
            expression += ", tag = :tag"
            values[":tag"] = tag
        try:
            self._update(job_id, expression, IS_NEW, values)
            return True
        except ClientError as error:
            _raise_unless_condition_failed(error)
            if _written_by(error, attempt_id, FAILED):
                return True
            if _old_record(error).fingerprint != fingerprint:
                raise IdempotencyMismatch(job_id) from None
            return False

    def fail_abandoned(self, record: JobRecord, attempt_id: str, code: str, message: str, grace_s: float) -> bool:
        """Ends FAILED a RUNNING job whose lease (as read in `record`) lapsed over `grace_s` ago; False
        if it had another fate since (its holder renewed it, another worker took it or ended it)."""
        now = self._clock()
        try:
            self._update(
                record.job_id,
                "SET #status = :failed, #error = :error, attempt_id = :attempt, finished_at = :now, "
                "updated_at = :now REMOVE lease_until",
                f"{IS_LAPSED} AND attempt_id = :held",
                {":failed": FAILED, ":error": {"code": code, "message": message}, ":attempt": attempt_id,
                 ":now": utc_now_iso(now), ":running": RUNNING, ":held": record.attempt_id,
                 ":now_epoch": _epoch(now - self.clock_skew_s - grace_s)},
            )
            return True
        except ClientError as error:
            _raise_unless_condition_failed(error)
            return _written_by(error, attempt_id, FAILED)

    def mark_notified(self, job_id: str) -> None:
        """Records that the ended job's completion event was published (a redelivery then skips it)."""
        now = self._clock()
        self._update(job_id, "SET notified_at = :now", "#status IN (:succeeded, :failed)",
                     {":now": utc_now_iso(now), ":succeeded": SUCCEEDED, ":failed": FAILED})

    # -- the life of a RUNNING job -------------------------------------------------------

    def claim(self, job_id: str, worker_id: str, lease_s: float) -> Lease:
        """QUEUED (or RUNNING with a lapsed lease) -> RUNNING, held by a new lease."""
        now = self._clock()
        attempt_id = f"{worker_id}/{uuid.uuid4().hex[:12]}"
        try:
            record = self._update(
                job_id,
                "SET #status = :running, worker_id = :worker, attempt_id = :attempt, lease_until = :lease, "
                "started_at = :now, updated_at = :now, attempts = if_not_exists(attempts, :zero) + :one "
                "REMOVE progress",
                f"attribute_exists(job_id) AND ({IS_QUEUED} OR {IS_LAPSED})",
                {":running": RUNNING, ":queued": QUEUED, ":worker": worker_id, ":attempt": attempt_id,
                 ":lease": _epoch(now + lease_s), ":now_epoch": _epoch(now - self.clock_skew_s),
                 ":now": utc_now_iso(now),
                 ":zero": 0, ":one": 1},
                return_new=True,
            )
        except ClientError as error:
            _raise_unless_condition_failed(error)
            old = _old_record(error)
            if old is None or old.attempt_id != attempt_id:
                raise JobNotClaimable(job_id, old and old.status, old and old.lease_until) from None
            record = old  # a retry of this very claim, which had landed
        return Lease(job_id, worker_id, attempt_id, record.attempts)

    def progress(self, lease: Lease, frames_done: int, frames_total: int, lease_s: float) -> None:
        """Writes progress and renews the lease; LeaseLost if this attempt no longer holds the job."""
        now = self._clock()
        self._held_update(
            lease, RUNNING,
            "SET progress = :progress, lease_until = :lease, updated_at = :now",
            {":progress": {"frames_done": frames_done, "frames_total": frames_total},
             ":lease": _epoch(now + lease_s), ":now": utc_now_iso(now)},
        )

    def succeed(self, lease: Lease, result_uri: str, frames_done: int) -> None:
        now = self._clock()
        self._held_update(
            lease, SUCCEEDED,
            "SET #status = :succeeded, result_uri = :uri, progress = :progress, finished_at = :now, "
            "updated_at = :now REMOVE lease_until",
            {":succeeded": SUCCEEDED, ":uri": result_uri, ":now": utc_now_iso(now),
             ":progress": {"frames_done": frames_done, "frames_total": frames_done}},
        )

    def fail(self, lease: Lease, code: str, message: str) -> None:
        now = self._clock()
        self._held_update(
            lease, FAILED,
            "SET #status = :failed, #error = :error, finished_at = :now, updated_at = :now REMOVE lease_until",
            {":failed": FAILED, ":error": {"code": code, "message": message}, ":now": utc_now_iso(now)},
        )

    def release(self, lease: Lease, reason: str) -> None:
        """RUNNING -> QUEUED so that the next worker to receive the message starts it at once."""
        now = self._clock()
        self._held_update(
            lease, QUEUED,
            "SET #status = :queued, last_error = :reason, updated_at = :now REMOVE worker_id, lease_until",
            {":queued": QUEUED, ":reason": reason, ":now": utc_now_iso(now)},
        )

    # -- plumbing ------------------------------------------------------------------------

    def _held_update(self, lease: Lease, target_status: str, expression: str, values: dict[str, Any]) -> None:
        try:
            self._update(lease.job_id, expression, HELD_BY_ME,
                         {**values, ":running": RUNNING, ":attempt": lease.attempt_id})
        except ClientError as error:
            _raise_unless_condition_failed(error)
            if not _written_by(error, lease.attempt_id, target_status):
                raise LeaseLost(f"job {lease.job_id} is no longer held by {lease.attempt_id}") from None

    def _update(self, job_id: str, expression: str, condition: str, values: dict[str, Any],
                return_new: bool = False) -> JobRecord | None:
        # `status` and `error` are DynamoDB reserved words.
        names = {name: name[1:] for name in ("#status", "#error") if name in expression or name in condition}
        response = self._db.update_item(
            TableName=self._table,
            Key=_key(job_id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW" if return_new else "NONE",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **({"ExpressionAttributeNames": names} if names else {}),
        )
        return JobRecord.from_item(response.get("Attributes", {}))


def _old_record(error: ClientError) -> JobRecord | None:
    """The record as it stood when a write's condition failed."""
    return JobRecord.from_item(error.response.get("Item") or {})


def _written_by(error: ClientError, attempt_id: str, status: str) -> bool:
    """Whether a failed condition hides this attempt's own earlier write of `status` (a retried request)."""
    old = _old_record(error)
    return old is not None and old.attempt_id == attempt_id and old.status == status


def _key(job_id: str) -> dict:
    return {"job_id": {"S": job_id}}


def _epoch(seconds: float) -> int:
    return int(seconds)


def _raise_unless_condition_failed(error: ClientError) -> None:
    if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
        raise error

