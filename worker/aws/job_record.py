"""A job's record as the jobs table holds it, typed, and the conversions to and from DynamoDB's items."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

QUEUED, RUNNING, SUCCEEDED, FAILED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED"
FINAL_STATES = (SUCCEEDED, FAILED)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """One job. Timestamps are the contract's ISO 8601 strings; `lease_until` is epoch seconds."""

    job_id: str
    status: str
    request: dict[str, Any] = dataclasses.field(default_factory=dict)
    fingerprint: str | None = None
    tag: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    attempt_id: str | None = None
    lease_until: int | None = None
    progress: dict[str, int] | None = None
    result_uri: str | None = None
    error: dict[str, str] | None = None
    last_error: str | None = None
    message_id: str | None = None
    notified_at: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATES

    def started_epoch(self) -> float | None:
        """When its latest attempt started, in epoch seconds (None before any)."""
        return _epoch(self.started_at)

    def finished_epoch(self) -> float | None:
        """When the job ended, in epoch seconds (None while it has not)."""
        return _epoch(self.finished_at)

    def as_json(self) -> dict[str, Any]:
        """The stored attributes, as `videoscan status` prints them."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_item(cls, item: dict) -> JobRecord | None:
        """The record of a DynamoDB item (None for an empty one); attributes it does not know are ignored."""
        if not item:
            return None
        plain = {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in plain.items() if k in known})


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _plain(value: Any) -> Any:
    """Decimals back to int or float, so records print as ordinary JSON."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _to_dynamo(value: Any) -> Any:
    """DynamoDB wants Decimals, not floats."""
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def to_item(values: dict[str, Any]) -> dict:
    """Attribute (or expression) values as DynamoDB takes them."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in values.items()}

