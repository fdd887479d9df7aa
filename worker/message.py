"""The job message: parsing and validating an SQS body into a JobRequest and its JobOptions."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import detectors.errors
from detectors import check_detector_model, check_detector_name
from detectors.views import TILINGS
from worker.errors import InvalidMessage, UnknownDetector, detector_errors_as_ours
from worker.options import DEFAULT_REDACT, DetectorSpec, JobOptions

# Always used with fullmatch: `$` would also match before a final newline.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
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
           "output", "tag", "client_token", "job_id", "outputs", "redact"}
OUTPUT_KINDS = ("annotated", "redacted", "thumbnails")
# The options a `detectors` object may set, per detector (only `human` has views to choose).
_DETECTOR_FIELDS = {"human": {"name", "model", "min_confidence", "tiles"}, "face": {"name", "model", "min_confidence"},
                    "stub": {"name", "min_confidence"}}


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
        message = {
            "job_id": self.job_id, "video": self.video,
            "detectors": [_detector_entry(spec, options.min_confidence) for spec in options.detectors],
            "sample_every": options.sample_every, "detect_every": options.detect_every,
            "min_confidence": options.min_confidence,
            # Defaults left out: records of jobs from before these fields compare equal.
            "outputs": list(options.outputs) or None,
            "redact": list(options.redact) if options.redact != DEFAULT_REDACT else None,
            "output": self.output, "tag": self.tag, "client_token": self.client_token, "version": self.version,
        }
        return {k: v for k, v in message.items() if v is not None}


def job_id_for_token(client_token: str) -> str:
    return uuid.uuid5(_TOKEN_NAMESPACE, client_token).hex


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
    if not isinstance(detectors, list) or not detectors:
        raise InvalidMessage("detectors must be a non-empty list of detector names or objects")
    min_confidence = _confidence(message, "min_confidence")
    specs = tuple(_detector_spec(entry, f"detectors[{index}]", min_confidence) for index, entry in enumerate(detectors))
    if len({spec.name for spec in specs}) != len(specs):
        raise InvalidMessage("detectors must not repeat a name")
    return JobOptions(
        detectors=specs,
        sample_every=_integer(message, "sample_every", 1, minimum=1, maximum=MAX_EVERY),
        detect_every=_integer(message, "detect_every", 1, minimum=1, maximum=MAX_EVERY),
        min_confidence=min_confidence,
        outputs=_names_list(message, "outputs", (), allowed=OUTPUT_KINDS),
        redact=_names_list(message, "redact", DEFAULT_REDACT),
    )


def _names_list(message: dict, field: str, default: tuple[str, ...],
                allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """A list of distinct short names (`outputs`, `redact`), in the message's order."""
    value = message.get(field)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        raise InvalidMessage(f"{field} must be a list of names")
    for name in value:
        _check_text(name, field)
        if allowed is not None and name not in allowed:
            raise InvalidMessage(f"{field}: unknown output {shown(name)} (one of {', '.join(allowed)})")
    if len(set(value)) != len(value):
        raise InvalidMessage(f"{field} must not repeat a name")
    if field == "redact" and not value:
        raise InvalidMessage("redact must name at least one label")
    return tuple(value)


def _detector_spec(entry: Any, where: str, min_confidence: float | None) -> DetectorSpec:
    """One `detectors` entry: a name, or an object choosing the detector's model and options."""
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise InvalidMessage(f"{where} must be a detector name or an object, got {shown(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidMessage(f"{where}.name must be a non-empty string")
    _check_text(name, f"{where}.name")
    with detector_errors_as_ours():
        check_detector_name(name)
    where = f"{where} ({shown(name)})"
    unknown = set(entry) - _DETECTOR_FIELDS.get(name, {"name"})
    if unknown:
        raise InvalidMessage(f"{where}: unknown option(s): {_names(unknown)}")
    model = entry.get("model")
    if model is not None:
        if not isinstance(model, str) or not model:
            raise InvalidMessage(f"{where}.model must be a non-empty string")
        _check_text(model, f"{where}.model")
        try:
            check_detector_model(name, model)
        except detectors.errors.UnknownDetector as error:
            raise UnknownDetector(f"{where}: {error}") from None
    tiles = entry.get("tiles")
    if tiles is not None and tiles not in TILINGS:
        raise InvalidMessage(f"{where}.tiles must be one of {', '.join(TILINGS)}, got {shown(tiles)}")
    own = _confidence(entry, "min_confidence", f"{where}.min_confidence")
    return DetectorSpec(name, model, own if own is not None else min_confidence, tiles)


def _detector_entry(spec: DetectorSpec, min_confidence: float | None) -> str | dict[str, Any]:
    """A spec as its message entry: a plain name when it chose nothing of its own."""
    entry = {"name": spec.name, "model": spec.model, "tiles": spec.tiles,
             "min_confidence": spec.min_confidence if spec.min_confidence != min_confidence else None}
    entry = {key: value for key, value in entry.items() if value is not None}
    return spec.name if len(entry) == 1 else entry


def _integer(message: dict, field: str, default: int, minimum: int, maximum: int) -> int:
    value = message.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidMessage(f"{field} must be an integer from {minimum} to {maximum}, got {shown(value)}")
    return value


def _confidence(message: dict, field: str, named: str | None = None) -> float | None:
    value = message.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not MIN_CONFIDENCE_FLOOR <= value <= 1:
        raise InvalidMessage(f"{named or field} must be a number from {MIN_CONFIDENCE_FLOOR} to 1, got {shown(value)}")
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
