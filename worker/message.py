"""The job message: parsing and validating an SQS body into a JobRequest and its JobOptions."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

from detectors import check_detector_name
from worker.errors import InvalidMessage, JobFailure, MessageRefused, NotAJob, detector_errors_as_ours
from worker.options import DetectorSpec, JobOptions

# Always used with fullmatch: `$` would also match before a final newline.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A real job message is a few hundred bytes. A larger body is still read (up to SQS's own
# 1 MiB cap) to find the job it names, and that job is refused.
MAX_BODY_BYTES = 16 * 1024
_MAX_READ_BYTES = 1024 * 1024
# Python refuses to convert integers of over 4300 digits; any integer this long is out of every
# field's range, so it is read as infinity, which every field refuses naming itself.
_MAX_INT_DIGITS = 100
MAX_KEY_BYTES = 1024
# Frame steps beyond any video's frame count change nothing (6 h at 240 fps is 5.2 M frames);
# the bound keeps every number one that DynamoDB (38 digits) and any JSON reader hold exactly.
MAX_EVERY = 10_000_000
# DynamoDB cannot store a number under 1e-130, and no detector score is that fine.
MIN_CONFIDENCE_FLOOR = 1e-6
# C0 and C1 control characters and DEL: never part of a name or a tag, and terminals obey them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Job ids derived from a client token are stable across submits and machines.
_TOKEN_NAMESPACE = uuid.UUID("6f1c3c2e-3d55-4c8e-9a53-0b1f0e6b7a10")

_FIELDS = {"version", "video", "detectors", "sample_every", "detect_every", "min_confidence",
           "output", "tag", "client_token", "job_id"}


@dataclasses.dataclass(frozen=True)
class JobRequest:
    job_id: str
    video: str
    options: JobOptions = JobOptions()
    output: str | None = None
    tag: str | None = None
    client_token: str | None = None
    version: int = 1

    def to_message(self) -> dict[str, Any]:
        """The validated message, as stored in the job record and sent on the queue."""
        options = self.options
        # The message's one min_confidence applies to every detector it names.
        message = {
            "job_id": self.job_id, "video": self.video, "detectors": list(options.detector_names),
            "sample_every": options.sample_every, "detect_every": options.detect_every,
            "min_confidence": options.detectors[0].min_confidence,
            "output": self.output, "tag": self.tag, "client_token": self.client_token, "version": self.version,
        }
        return {k: v for k, v in message.items() if v is not None}


def job_id_for_token(client_token: str) -> str:
    return uuid.uuid5(_TOKEN_NAMESPACE, client_token).hex


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


def _names(keys, most: int = 5) -> str:
    """Names from a message, as an error may show them: escaped, short, and only the first few."""
    keys = sorted(keys)
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(shown(key) for key in keys[:most]) + more


def job_id_of(message: dict[str, Any], fallback: str) -> str:
    """The job's id: explicit, derived from the client token, or `fallback` (the SQS message id)."""
    job_id = message.get("job_id")
    if isinstance(job_id, str) and JOB_ID_PATTERN.fullmatch(job_id):
        return job_id
    if job_id is not None:
        raise InvalidMessage("job_id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    token = _string(message, "client_token", 64)
    return job_id_for_token(token) if token is not None else fallback


def parse_request(message: dict[str, Any], job_id: str) -> JobRequest:
    """Validates a decoded message; every error names the field at fault."""
    unknown = set(message) - _FIELDS
    if unknown:
        raise InvalidMessage(f"unknown field(s): {_names(unknown)}")
    version = message.get("version", 1)
    if type(version) is not int or version != 1:
        raise InvalidMessage(f"version: {shown(version)} is not supported (only 1)")
    return JobRequest(
        job_id=job_id,
        video=_s3_uri(message, "video", required=True),
        options=parse_options(message),
        output=_output(message),
        tag=_string(message, "tag", 256),
        client_token=_string(message, "client_token", 64),
        version=version,
    )


def parse_options(message: dict[str, Any]) -> JobOptions:
    """The analysis options (shared by jobs and `videoscan analyze`), validated."""
    detectors = message.get("detectors", ["human"])
    if not isinstance(detectors, list) or not detectors or not all(isinstance(d, str) for d in detectors):
        raise InvalidMessage("detectors must be a non-empty list of detector names")
    for name in detectors:
        _check_text(name, "detectors")
    if len(set(detectors)) != len(detectors):
        raise InvalidMessage("detectors must not repeat a name")
    with detector_errors_as_ours():
        for name in detectors:
            check_detector_name(name)
    min_confidence = _confidence(message)
    return JobOptions(
        detectors=tuple(DetectorSpec(name, min_confidence=min_confidence) for name in detectors),
        sample_every=_integer(message, "sample_every", 1, minimum=1, maximum=MAX_EVERY),
        detect_every=_integer(message, "detect_every", 1, minimum=1, maximum=MAX_EVERY),
    )


def _integer(message: dict, field: str, default: int, minimum: int, maximum: int) -> int:
    value = message.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidMessage(f"{field} must be an integer from {minimum} to {maximum}, got {shown(value)}")
    return value


def _confidence(message: dict) -> float | None:
    value = message.get("min_confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_CONFIDENCE_FLOOR <= value <= 1:
        raise InvalidMessage(f"min_confidence must be a number from {MIN_CONFIDENCE_FLOOR} to 1, got {shown(value)}")
    return float(value)


def _string(message: dict, field: str, max_length: int) -> str | None:
    value = message.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{field} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidMessage(f"{field} is longer than {max_length} characters")
    _check_text(value, field)
    return value


def _check_text(value: str, field: str) -> None:
    """Text that can be stored, logged and shown: encodable (no lone surrogate), no control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(f"{field} is not valid Unicode text (it holds a lone surrogate)") from None
    if _CONTROL.search(value):
        raise InvalidMessage(f"{field} contains control characters")


def shown(value: Any, limit: int = 40) -> str:
    """A value as it may appear in an error or a log: ASCII only, escaped, and short."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _s3_uri(message: dict, field: str, required: bool = False, key_required: bool = True) -> str | None:
    value = message.get(field)
    if value is None:
        if required:
            raise InvalidMessage(f"{field} is required")
        return None
    # An S3 key is any UTF-8 text up to 1024 bytes: spaces and punctuation included.
    key = r"(.+)" if key_required else r"(.*)"
    match = isinstance(value, str) and re.fullmatch(rf"s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/{key}", value, re.DOTALL)
    if not match:
        raise InvalidMessage(f"{field} must be an s3://bucket/key URI")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidMessage(f"{field} contains control characters")
    try:
        key_bytes = len(match.group(1).encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidMessage(f"{field} is not valid Unicode") from None
    if key_bytes > MAX_KEY_BYTES:
        raise InvalidMessage(f"{field}: the key is longer than S3's {MAX_KEY_BYTES} bytes")
    return value


def _output(message: dict) -> str | None:
    value = message.get("output")
    if isinstance(value, str) and value.count("/") == 2:
        value += "/"  # a bare bucket means the bucket's root
    uri = _s3_uri({"output": value}, "output", key_required=False)
    if uri is None:
        return None
    if ".." in uri.split("/"):
        raise InvalidMessage("output must not contain '..' segments")
    return uri if uri.endswith("/") else uri + "/"
