"""Logging: one JSON object a line (for CloudWatch) or plain text, with the job id on every line."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import re
import sys
import textwrap

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


# Control characters (a newline above all) in logged text would start forged lines or drive a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(value: object) -> str:
    return _CONTROL.sub(lambda match: ascii(match.group())[1:-1], str(value))


class TextFormatter(logging.Formatter):
    """One line a record, with its fields as `key=value`; a traceback follows on indented lines,
    so that every line starting at the margin is a record the worker wrote."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if getattr(record, "job_id", None):
            extras = {"job_id": record.job_id, **extras}
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {_one_line(record.getMessage())}"
        line += "".join(f" {_one_line(k)}={_one_line(v)}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + textwrap.indent(self.formatException(record.exc_info), "    ", lambda _: True)
        return redact(line)


def configure_logging(log_format: str = "json", level: str = "INFO", stream=None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_JobIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python warnings become log records, not free text on stderr
    # Library chatter (botocore's retries, moto's request log) stays out of the worker's log.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "moto", "tensorflow", "absl"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
