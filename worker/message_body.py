"""Reading an SQS body: JSON with bounded size, integers and nesting, duplicate keys found, then validated."""

from __future__ import annotations

import json
from typing import Any

from worker.errors import InvalidMessage, JobFailure, MessageRefused, NotAJob
from worker.message import JobRequest, _names, _s3_uri, _string, job_id_of, parse_request

# A real job message is a few hundred bytes. A larger body is still read (up to SQS's own
# 1 MiB cap) to find the job it names, and that job is refused.
MAX_BODY_BYTES = 16 * 1024
_MAX_READ_BYTES = 1024 * 1024
# Python refuses to convert integers of over 4300 digits; any integer this long is out of every
# field's range, so it is read as infinity, which every field refuses naming itself.
_MAX_INT_DIGITS = 100


def read_job(body: str, message_id: str) -> JobRequest:
    """The job an SQS body asks for.

    Raises NotAJob for a body that cannot name a job (not JSON, not an object: it gets no
    record), and MessageRefused for one that is not a valid job: the job it names, or the
    message id when it names none, ends FAILED with the failure's code.
    """
    size = len(body.encode("utf-8", "replace"))
    message, duplicates = _decode(body, message_id, size)
    job_id = message_id
    try:
        if duplicates & {"job_id", "client_token"}:  # which one names the job is ambiguous
            raise InvalidMessage(f"duplicate key(s): {_names(duplicates)}")
        job_id = job_id_of(message, message_id)
        if duplicates:
            raise InvalidMessage(f"duplicate key(s): {_names(duplicates)}")
        if size > MAX_BODY_BYTES:
            raise InvalidMessage(f"message is larger than {MAX_BODY_BYTES} bytes")
        return parse_request(message, job_id)
    except JobFailure as failure:
        raise MessageRefused(failure, job_id, *_reportable(message, duplicates)) from None


def _decode(body: str, message_id: str, size: int) -> tuple[dict[str, Any], set[str]]:
    """The body's JSON object, and the keys that appear more than once in it (at any depth)."""
    if size > _MAX_READ_BYTES:
        raise MessageRefused(InvalidMessage(f"message is larger than {MAX_BODY_BYTES} bytes"), message_id)
    duplicates: set[str] = set()

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        message = dict(pairs)
        if len(message) < len(pairs):
            seen: set[str] = set()
            duplicates.update(key for key, _ in pairs if key in seen or seen.add(key))
        return message

    try:
        # RFC 8259 lets a parser ignore a leading byte-order mark; Windows editors and shells write one.
        message = json.loads(body.removeprefix("\ufeff"), object_pairs_hook=unique_keys, parse_int=_bounded_int)
    except RecursionError:
        raise MessageRefused(InvalidMessage("message is nested too deeply"), message_id) from None
    except ValueError as error:
        raise NotAJob(f"body is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise NotAJob("body is not a JSON object")
    return message, duplicates


def _bounded_int(digits: str) -> int | float:
    if len(digits) <= _MAX_INT_DIGITS:
        return int(digits)
    return float("-inf") if digits.startswith("-") else float("inf")


def _reportable(message: dict[str, Any], duplicates: set[str]) -> tuple[str | None, str | None]:
    """The tag and video of a refused message, for its record and event: each only if valid itself."""
    def valid(field: str, validate) -> str | None:
        try:
            return None if field in duplicates else validate(message, field)
        except InvalidMessage:
            return None
    return valid("tag", lambda m, f: _string(m, f, 256)), valid("video", _s3_uri)
