"""The job message: parsing and validating an SQS body into a JobRequest and its JobOptions."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from typing import Any

from detectors import check_detector_name
from worker.errors import InvalidMessage, NotAJob, detector_errors_as_ours
from worker.options import DetectorSpec, JobOptions

JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# SQS caps bodies at 256 KiB; a real job message is a few hundred bytes.
MAX_BODY_BYTES = 16 * 1024
MAX_KEY_BYTES = 1024
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


def decode_body(body: str) -> dict[str, Any]:
    """Parses an SQS body into a JSON object.

    Raises NotAJob for a body that cannot be a job at all (not JSON, not an object), and
    InvalidMessage for a JSON body refused for its size or depth (it gets a FAILED record).
    """
    if len(body.encode("utf-8", "replace")) > MAX_BODY_BYTES:
        raise InvalidMessage(f"message is larger than {MAX_BODY_BYTES} bytes")
    try:
        message = json.loads(body)
    except RecursionError:
        raise InvalidMessage("message is nested too deeply") from None
    except ValueError as error:
        raise NotAJob(f"body is not JSON: {error}") from None
    if not isinstance(message, dict):
        raise NotAJob("body is not a JSON object")
    return message


def job_id_of(message: dict[str, Any], fallback: str) -> str:
    """The job's id: explicit, derived from the client token, or `fallback` (the SQS message id)."""
    job_id = message.get("job_id")
    if isinstance(job_id, str) and JOB_ID_PATTERN.match(job_id):
        return job_id
    if job_id is not None:
        raise InvalidMessage("job_id must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    token = message.get("client_token")
    if isinstance(token, str) and 0 < len(token) <= 64:
        return job_id_for_token(token)
    return fallback


def parse_request(message: dict[str, Any], job_id: str) -> JobRequest:
    """Validates a decoded message; every error names the field at fault."""
    unknown = sorted(set(message) - _FIELDS)
    if unknown:
        raise InvalidMessage(f"unknown field(s): {', '.join(unknown)}")
    version = _integer(message, "version", 1, minimum=1)
    if version != 1:
        raise InvalidMessage(f"version: {version} is not supported (only 1)")
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
    if len(set(detectors)) != len(detectors):
        raise InvalidMessage("detectors must not repeat a name")
    with detector_errors_as_ours():
        for name in detectors:
            check_detector_name(name)
    min_confidence = _confidence(message)
    return JobOptions(
        detectors=tuple(DetectorSpec(name, min_confidence=min_confidence) for name in detectors),
        sample_every=_integer(message, "sample_every", 1, minimum=1),
        detect_every=_integer(message, "detect_every", 1, minimum=1),
    )


def _integer(message: dict, field: str, default: int, minimum: int) -> int:
    value = message.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMessage(f"{field} must be an integer")
    if value < minimum:
        raise InvalidMessage(f"{field} must be >= {minimum}, got {value}")
    return value


def _confidence(message: dict) -> float | None:
    value = message.get("min_confidence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidMessage("min_confidence must be a number")
    if not 0 < value <= 1:
        raise InvalidMessage(f"min_confidence must be in (0, 1], got {value}")
    return float(value)


def _string(message: dict, field: str, max_length: int) -> str | None:
    value = message.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidMessage(f"{field} must be a non-empty string")
    if len(value) > max_length:
        raise InvalidMessage(f"{field} is longer than {max_length} characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidMessage(f"{field} contains control characters")
    return value


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
