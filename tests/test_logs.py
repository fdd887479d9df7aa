"""The worker's log stream: one JSON object a line, and metric lines that CloudWatch can extract (EMF)."""

from __future__ import annotations

import json
import time

from support.helpers import send, upload, videoscan
from worker.aws.metrics import UNITS

EMF_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
             "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
             "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
             "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def assert_valid_emf(line: dict, service: str) -> None:
    metadata = line["_aws"]
    assert abs(metadata["Timestamp"] / 1000 - time.time()) < 600
    (directive,) = metadata["CloudWatchMetrics"]
    assert directive["Namespace"] == "videoscan"
    assert directive["Dimensions"] == [["Service"]] and line["Service"] == service
    assert directive["Metrics"]
    for metric in directive["Metrics"]:
        assert metric["Unit"] in EMF_UNITS and metric["Unit"] == UNITS[metric["Name"]]
        assert isinstance(line[metric["Name"]], (int, float))


def test_json_log_lines_and_emf_metrics(clients, resources, small_video):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "good"})
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "bad", "sample_every": -1})

    run = videoscan("run", "--drain", env={"VIDEOSCAN_SERVICE_NAME": "svc-test"})

    assert run.returncode == 0, run.stderr
    lines = [json.loads(text) for text in run.stderr.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    metric_lines = [line for line in lines if "_aws" in line]
    for line in metric_lines:
        assert_valid_emf(line, "svc-test")
    by_job = {line["job_id"]: line for line in metric_lines}
    assert set(by_job) == {"good", "bad"}
    good, bad = by_job["good"], by_job["bad"]
    assert (good["JobsSucceeded"], good["JobsFailed"], good["FramesAnalyzed"]) == (1, 0, 24)
    assert good["JobDuration"] > 0 and good["FramesPerSecond"] > 0 and good["QueueWait"] >= 0
    assert "GpuUtilization" not in good  # no GPU on this machine: no GPU metrics
    assert (bad["JobsSucceeded"], bad["JobsFailed"]) == (0, 1)


def test_text_logs_carry_the_job_id(clients, resources, small_video):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "texty"})

    run = videoscan("run", "--drain", env={"VIDEOSCAN_LOG_FORMAT": "text"})

    assert run.returncode == 0, run.stderr
    assert not run.stderr.lstrip().startswith("{")
    assert any("job succeeded" in line and "job_id=texty" in line for line in run.stderr.splitlines())
