"""Settings: built once, from command-line flags, then the environment, then defaults."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from worker.errors import ConfigError
from worker.options import Limits

# The heartbeat extends the message and renews the lease every third of the visibility timeout,
# but never more often than every 0.5 s: 2 s is the shortest timeout it keeps to that schedule
# for (and at 0 no lease can be held at all). Real deployments use minutes.
MIN_VISIBILITY_TIMEOUT_S = 2
# SQS's own maximum.
MAX_VISIBILITY_TIMEOUT_S = 43200
# How far apart two workers' clocks may be: a lease counts as lapsed only this long after
# its end by the reader's clock. NTP-synced hosts (Amazon Time Sync) are within milliseconds.
DEFAULT_CLOCK_SKEW_S = 10.0

_ENV = {
    "region": "AWS_REGION",
    "queue_url": "VIDEOSCAN_QUEUE_URL",
    "jobs_table": "VIDEOSCAN_JOBS_TABLE",
    "results_bucket": "VIDEOSCAN_RESULTS_BUCKET",
    "notify_topic_arn": "VIDEOSCAN_NOTIFY_TOPIC_ARN",
    "visibility_timeout": "VIDEOSCAN_VISIBILITY_TIMEOUT",
    "max_video_bytes": "VIDEOSCAN_MAX_VIDEO_BYTES",
    "max_duration_s": "VIDEOSCAN_MAX_DURATION_S",
    "max_frame_pixels": "VIDEOSCAN_MAX_FRAME_PIXELS",
    "allowed_buckets": "VIDEOSCAN_ALLOWED_BUCKETS",
    "stop_grace_s": "VIDEOSCAN_STOP_GRACE_S",
    "clock_skew_s": "VIDEOSCAN_CLOCK_SKEW_S",
    "require_gpu": "VIDEOSCAN_REQUIRE_GPU",
    "human_model": "VIDEOSCAN_HUMAN_MODEL",
    "model_cache_size": "VIDEOSCAN_MODEL_CACHE_SIZE",
    "service_name": "VIDEOSCAN_SERVICE_NAME",
    "log_format": "VIDEOSCAN_LOG_FORMAT",
    "log_level": "VIDEOSCAN_LOG_LEVEL",
}


@dataclasses.dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    queue_url: str | None = None
    jobs_table: str | None = None
    results_bucket: str | None = None
    notify_topic_arn: str | None = None
    visibility_timeout: int = 300
    max_video_bytes: int = 10 * 1024**3
    max_duration_s: float = 21600.0
    max_frame_pixels: int = 7680 * 4608
    allowed_buckets: frozenset[str] = frozenset()
    # After SIGTERM, how long the job in hand may run on before it is released. ECS waits
    # the task's stopTimeout (120 s at most on EC2) before SIGKILL: this leaves time to release.
    stop_grace_s: float = 90.0
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S
    require_gpu: bool = False
    # A TF2 SavedModel directory or frozen .pb (local path or s3://) for `human`.
    human_model: str | None = None
    # Detectors (a model with its options) kept built between jobs; the least recently used is dropped.
    model_cache_size: int = 4
    # The `Service` dimension of the worker's CloudWatch metrics.
    service_name: str = "videoscan"
    log_format: str = "json"
    log_level: str = "INFO"

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **flags: Any) -> "Settings":
        """Flags that are not None beat the environment, which beats the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(_ENV[field.name])
            if field.name == "region":
                raw = raw or env.get("AWS_DEFAULT_REGION")
            if raw not in (None, ""):
                values[field.name] = _convert(field.name, raw, field.type)
        values.update({k: v for k, v in flags.items() if v is not None})
        settings = cls(**values)
        settings._validate()
        return settings

    def require(self, *names: str) -> None:
        """Fail with a clear message when a command needs settings that are unset."""
        missing = [_ENV[name] for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError(f"missing configuration: set {', '.join(missing)}")

    @property
    def limits(self) -> Limits:
        return Limits(self.max_frame_pixels, self.max_duration_s)

    def bucket_allowed(self, bucket: str) -> bool:
        if not self.allowed_buckets:
            return True
        return bucket in self.allowed_buckets or bucket == self.results_bucket

    def _validate(self) -> None:
        if not MIN_VISIBILITY_TIMEOUT_S <= self.visibility_timeout <= MAX_VISIBILITY_TIMEOUT_S:
            raise ConfigError(f"VIDEOSCAN_VISIBILITY_TIMEOUT must be within {MIN_VISIBILITY_TIMEOUT_S}.."
                              f"{MAX_VISIBILITY_TIMEOUT_S} seconds, got {self.visibility_timeout}")
        if self.log_format not in ("json", "text"):
            raise ConfigError("VIDEOSCAN_LOG_FORMAT must be 'json' or 'text'")
        for name in ("stop_grace_s", "clock_skew_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{_ENV[name]} must not be negative")
        for name in ("max_video_bytes", "max_duration_s", "max_frame_pixels", "model_cache_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{_ENV[name]} must be positive")


def _convert(name: str, raw: str, annotation: str) -> Any:
    try:
        if name == "allowed_buckets":
            return frozenset(b.strip() for b in raw.split(",") if b.strip())
        if annotation.startswith("bool"):
            if raw.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if annotation.startswith("int"):
            return int(raw)
        if annotation.startswith("float"):
            return float(raw)
        return raw
    except ValueError:
        raise ConfigError(f"{_ENV[name]}={raw!r} is not a valid {annotation.split(' ')[0]}") from None
