"""Logging: one JSON object a line (for CloudWatch) or plain text, with the job id on every line."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import sys

current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_job_id", default=None)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "job_id"}


# Credentials and signed-URL parts never reach the log, whoever passed them to it: also a
# presigned URL percent-encoded inside another URL (`=` as %3D, `&` as %26, or once more
# encoded as %253D), and credentials-file keys with or without their `aws_` prefix.
_SEPARATOR = r"(\\?[\"']?\s*(?:[=:]|%(?:25)?3[DdAa])\s*\\?[\"']?)"
_VALUE = r"(?:(?!%(?:25)?26)[^\s&\"',}\\])+"
_SECRETS = [
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "[access-key-id]"),
    (re.compile(r"(?i)(X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId|"
                r"secret_access_key|session_token|SecretAccessKey|SessionToken)" + _SEPARATOR + _VALUE),
     r"\1\2[redacted]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _JobIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = current_job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "job_id", None):
            entry["job_id"] = record.job_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if getattr(record, "job_id", None):
            extras = {"job_id": record.job_id, **extras}
        return redact(line + "".join(f" {k}={v}" for k, v in extras.items()))


def configure_logging(log_format: str = "json", level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter (botocore's retries, moto's request log) stays out of the worker's log.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto", "tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
