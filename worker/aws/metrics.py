"""Job metrics as CloudWatch Embedded Metric Format lines in the worker's JSON log.

CloudWatch extracts them from the awslogs stream, so metrics cost no API calls.
"""

from __future__ import annotations

import logging
import time

NAMESPACE = "videoscan"
DIMENSION = "Service"
UNITS = {
    "JobsSucceeded": "Count",
    "JobsFailed": "Count",
    "JobDuration": "Milliseconds",
    "QueueWait": "Milliseconds",
    "FramesAnalyzed": "Count",
    "FramesPerSecond": "Count/Second",
    "OutputSeconds": "Seconds",
    "GpuUtilization": "Percent",
    "GpuMemoryUsed": "Megabytes",
    "ModelLoads": "Count",
    "ModelLoadTime": "Seconds",
}

log = logging.getLogger("videoscan.metrics")


def emf_document(service: str, values: dict[str, float], timestamp_s: float | None = None) -> dict:
    """The EMF envelope for `values` (metric name -> value), one dimension: the service."""
    timestamp_ms = int((time.time() if timestamp_s is None else timestamp_s) * 1000)
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
            }],
        },
        DIMENSION: service,
        **values,
    }


class JobMetrics:
    def __init__(self, service: str):
        self._service = service

    def job_ended(self, succeeded: bool, duration_s: float | None = None, queue_wait_s: float | None = None,
                  frames: int | None = None, gpu: dict[str, float] | None = None,
                  output_s: float | None = None) -> None:
        values = {"JobsSucceeded": int(succeeded), "JobsFailed": int(not succeeded)}
        if duration_s is not None:
            values["JobDuration"] = round(duration_s * 1000, 1)
        if queue_wait_s is not None:
            values["QueueWait"] = round(max(queue_wait_s, 0.0) * 1000, 1)
        if frames is not None:
            values["FramesAnalyzed"] = frames
            if duration_s:
                values["FramesPerSecond"] = round(frames / duration_s, 2)
        if output_s:
            values["OutputSeconds"] = round(output_s, 1)  # seconds of annotated/redacted video made
        values.update(gpu or {})
        log.info("metrics", extra=emf_document(self._service, values))

    def model_loaded(self, seconds: float) -> None:
        """A detector's model was built (downloaded if need be, and loaded): one per cache miss."""
        log.info("metrics", extra=emf_document(self._service, {"ModelLoads": 1, "ModelLoadTime": round(seconds, 3)}))
