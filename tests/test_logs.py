"""The worker's log stream: one JSON object a line, and metric lines that CloudWatch can extract (EMF)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time

import pytest

from support.helpers import send, upload, videoscan
from worker.aws.metrics import UNITS
from worker.logs import configure_logging, current_job_id

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


def test_text_log_lines_cannot_be_forged_by_a_newline_in_a_job_id_or_field(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    stream = io.StringIO()
    configure_logging("text", "INFO", stream)
    forged = "\n2026-11-30 07:00:00,000 ERROR worker: forged line"
    token = current_job_id.set("msg-1" + forged)
    try:
        logging.getLogger("worker").warning("message rejected" + forged, extra={"error": "unknown field(s): x" + forged,
                                                                                "colour\x1b[31m": "red\r"})
        try:
            raise ValueError("boom" + forged)
        except ValueError:
            logging.getLogger("worker").exception("failed")
    finally:
        current_job_id.reset(token)

    lines = stream.getvalue().splitlines()
    records = [line for line in lines if not line.startswith(" ")]  # continuation lines are indented
    assert len(records) == 2 and "forged line" in records[0] and "\x1b" not in stream.getvalue()
    assert records[1].endswith("ERROR worker: failed job_id=msg-1\\n2026-11-30 07:00:00,000 ERROR worker: forged line")
    assert any("ValueError: boom" in line for line in lines[2:])
@pytest.mark.slow
def test_a_real_model_job_in_json_mode_writes_only_json_lines(clients, resources, data_dir):
    # given a real video and both TensorFlow detectors, whose C++ runtime writes to stderr at start
    video = upload(clients, resources.results_bucket, "in/hamilton.mp4", str(data_dir / "short_hamilton_clip.mp4"))
    send(clients, resources, {"video": video, "detectors": ["human", "face"], "sample_every": 100, "job_id": "real"})

    # when a worker process drains the queue in json mode, with TensorFlow's logging left to its default
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-m", "worker", "run", "--drain"], capture_output=True, text=True,
                         timeout=300, env={**env, "VIDEOSCAN_LOG_FORMAT": "json"})

    # then the job succeeded and every line on both streams is one JSON log object
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines() + run.stderr.splitlines()
    for text in lines:
        try:
            line = json.loads(text)
        except ValueError:
            pytest.fail(f"not JSON: {text!r}")
        assert {"time", "level", "logger", "message"} <= set(line), text
    assert any(json.loads(text).get("job_id") == "real" for text in lines)
    assert not [text for text in lines if json.loads(text)["level"] == "INFO" and "native" in json.loads(text)["logger"]]


def test_native_stderr_lines_become_json_at_their_own_level():
    from worker.native_log import json_line

    error = json.loads(json_line("E0000 00:00:1796021857.358954   22519 cuda_platform.cc:52] failed call to cuInit\n",
                                 logging.WARNING))
    assert (error["level"], error["logger"], error["message"]) == ("ERROR", "native.cuda_platform.cc:52",
                                                                   "failed call to cuInit")
    opencv = json.loads(json_line("[ WARN:0@1.234] global cap.cpp:164 open VIDEOIO: backend failed", logging.WARNING))
    assert (opencv["level"], opencv["logger"]) == ("WARNING", "native.opencv")
    # INFO below TF_CPP_MIN_LOG_LEVEL=1 is dropped, absl's pre-init notice with it
    assert json_line("I0000 00:00:1796021831.877870   22519 cudart_stub.cc:31] Could not find cuda drivers",
                     logging.WARNING) is None
    assert json_line("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
                     logging.WARNING) is None
    # JSON passes through unchanged; any other text is kept, whatever the native level
    assert json_line('{"level": "INFO", "message": "m"}\n', logging.CRITICAL) == '{"level": "INFO", "message": "m"}'
    failure = json.loads(json_line("videoscan: INTERNAL: boom", logging.CRITICAL))
    assert (failure["level"], failure["logger"], failure["message"]) == ("ERROR", "stderr", "videoscan: INTERNAL: boom")
    assert json.loads(json_line("3 frames analysed", logging.CRITICAL))["level"] == "WARNING"
    assert json_line("   \n", logging.INFO) is None
