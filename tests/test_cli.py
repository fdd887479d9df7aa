"""The `videoscan` command line, run as a real process against moto's server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from support.contract_checks import assert_contract_result
from support.doubles import GatedDetector
from support.fault_proxy import FaultPlan, FaultProxy
from support.helpers import queue_depth, read_result, receive_events, subscribe_queue, upload, videoscan, wait_for
from worker.analysis.detector_pool import DetectorPool
from worker.aws.jobs import JobStore
from worker.message import parse_request
from worker.worker import Worker


def test_submit_twice_with_one_client_token_gives_one_job_and_one_result(clients, resources, small_video, tmp_path):
    # given a video and a topic subscriber
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)

    # when the same upload is submitted twice with one client token
    submits = [videoscan("submit", video, "--detectors", "stub", "--tag", "cam-9", "--client-token", "upload-77")
               for _ in range(2)]

    # then both print the same job id, and only one message was sent
    assert [s.returncode for s in submits] == [0, 0], submits[0].stderr
    job_id = submits[0].stdout.strip()
    assert submits[1].stdout.strip() == job_id
    assert queue_depth(clients, resources.queue_url) == 1
    assert json.loads(videoscan("status", job_id).stdout)["status"] == "QUEUED"

    # when a worker process drains the queue
    run = videoscan("run", "--drain")
    assert run.returncode == 0, run.stderr

    # then status, results and the event agree on one successful job
    record = json.loads(videoscan("status", job_id).stdout)
    assert (record["status"], record["attempts"], record["tag"]) == ("SUCCEEDED", 1, "cam-9")
    out = tmp_path / "result.json"
    fetched = videoscan("results", job_id, "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(out.read_text()) == read_result(clients, record["result_uri"])
    assert_contract_result(json.loads(out.read_text()))
    events = receive_events(clients, events_url)
    assert [(e["job_id"], e["status"], e["tag"]) for e in events] == [(job_id, "SUCCEEDED", "cam-9")]
    # and every worker log line is one JSON object, with the job id on the lines about the job
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert any(line.get("job_id") == job_id and line["message"] == "job succeeded" for line in lines)
    assert all({"time", "level", "message"} <= set(line) for line in lines)


@pytest.mark.parametrize("args, env, reason", [
    (["submit", "https://not/s3.mp4"], {}, "video must be an s3://bucket/key URI"),
    (["submit", "s3://b/k.mp4", "--sample-every", "0"], {}, "must be >= 1"),
    (["submit", "s3://b/k.mp4", "--detectors", "dog"], {}, "unknown detector"),
    (["submit", "s3://bbb/k.mp4", "--detectors", "face:yolo"], {}, "unknown face model 'yolo'"),
    (["submit", "s3://bbb/k.mp4", "--detectors", "face", "--tiles", "2x2"], {}, "--tiles is an option of the human"),
    (["submit", "s3://b/k.mp4", "--tiles", "3x3"], {}, "invalid choice"),
    (["submit", "s3://b/k.mp4"], {"VIDEOSCAN_QUEUE_URL": ""}, "VIDEOSCAN_QUEUE_URL"),
    (["status", "../../etc"], {}, "not a valid job id"),
    (["status", "nl\n"], {}, "not a valid job id"),
    (["run", "--drain"], {"VIDEOSCAN_VISIBILITY_TIMEOUT": "0"}, "VIDEOSCAN_VISIBILITY_TIMEOUT must be within 2..43200"),
    (["run", "--drain"], {"VIDEOSCAN_VISIBILITY_TIMEOUT": "1"}, "VIDEOSCAN_VISIBILITY_TIMEOUT must be within 2..43200"),
    (["analyze", "/no/such/file.mp4"], {}, "no such file"),
    (["status"], {}, "job_id"),
    (["frobnicate"], {}, "invalid choice"),
])
def test_bad_usage_exits_2_with_a_reason(resources, args, env, reason):
    result = videoscan(*args, env=env)
    assert result.returncode == 2
    assert reason in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args, named", [
    (["--sample-every", "1e38"], "--sample-every"),
    (["--sample-every", "1" + "0" * 40], "sample_every"),
    (["--detect-every", "99999999999999999999999"], "detect_every"),
    (["--min-confidence", "1e-200"], "min_confidence"),
])
def test_submit_with_huge_or_tiny_numbers_exits_2_with_one_line_naming_the_option(resources, args, named):
    result = videoscan("submit", f"s3://{resources.results_bucket}/in/a.mp4", *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and named in result.stderr, result.stderr
    assert "Error" not in result.stderr and "Rounded" not in result.stderr


def test_results_of_an_unknown_or_failed_job_exit_1(clients, resources):
    assert videoscan("results", "no-such-job").returncode == 1
    JobStore(clients.dynamodb, resources.jobs_table).fail_unclaimed("bad-1", "a-1", "refused:x", "INVALID_MESSAGE", "video is required")
    failed = videoscan("results", "bad-1")
    assert failed.returncode == 1 and "INVALID_MESSAGE" in failed.stderr


TERMINAL_CONTROLS = ("\x1b", "\x07", "\x9b", "\x90")


def test_results_and_status_never_print_terminal_controls_from_stored_text(clients, resources):
    # given records and a result written by some other tool, with escape sequences in their text
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    jobs.fail_unclaimed("painted", "a-1", "refused:x", "INVALID_MESSAGE", "bad \x1b]0;pwned\x07 \x1b[2J\nforged line")
    document = {"job_id": "forged", "tag": "\x9b31m\x90red", "frames": []}
    clients.s3.put_object(Bucket=resources.results_bucket, Key="results/forged/detections.json",
                          Body=json.dumps(document, ensure_ascii=False).encode(), ContentType="application/json")
    jobs.create(parse_request({"video": "s3://videos/a.mp4"}, "forged"))
    lease = jobs.claim("forged", "w", 60)
    jobs.succeed(lease, f"s3://{resources.results_bucket}/results/forged/detections.json", 0)

    # when they are shown
    failed, fetched = videoscan("results", "painted"), videoscan("results", "forged")
    shown = [failed.stderr, fetched.stdout, videoscan("status", "painted").stdout, videoscan("status", "forged").stdout]

    # then no control character reaches the terminal, the reason stays one line, the document the same JSON
    assert not [c for text in shown for c in TERMINAL_CONTROLS if c in text]
    assert len(failed.stderr.splitlines()) == 1 and "pwned" in failed.stderr
    assert json.loads(fetched.stdout) == document


@pytest.mark.slow
def test_a_job_sent_with_the_plain_aws_cli_is_processed(clients, resources, data_dir, tmp_path):
    # given a real video copied and a contract message sent with the AWS CLI alone
    cli = shutil.which("aws", path=os.path.dirname(sys.executable)) or shutil.which("aws")
    assert cli, "the AWS CLI is a test dependency"
    # AWS CLI v1 ignores AWS_ENDPOINT_URL for SQS; a local stack is named on the command line.
    aws = [cli, "--endpoint-url", os.environ["AWS_ENDPOINT_URL"]]
    video = f"s3://{resources.results_bucket}/uploads/vtest.avi"
    copy = subprocess.run([*aws, "s3", "cp", str(data_dir / "vtest.avi"), video], capture_output=True, text=True)
    assert copy.returncode == 0, copy.stderr
    body = json.dumps({"video": video, "detectors": ["human"], "sample_every": 10, "job_id": "from-aws-cli"})
    sent = subprocess.run([*aws, "sqs", "send-message", "--queue-url", resources.queue_url, "--message-body", body],
                          capture_output=True, text=True)
    assert sent.returncode == 0, sent.stderr

    # when a worker process drains the queue
    run = videoscan("run", "--drain", timeout=300)
    assert run.returncode == 0, run.stderr

    # then the job succeeded with a contract-valid result in which people were found
    record = JobStore(clients.dynamodb, resources.jobs_table).get("from-aws-cli")
    assert record.status == "SUCCEEDED"
    result = read_result(clients, record.result_uri)
    assert_contract_result(result, sample_every=10)
    assert len(result["frames"]) == 35 and result["video"]["frame_count"] == 341
    assert result["summary"]["max_in_frame"]["person"] >= 3
    assert queue_depth(clients, resources.queue_url) == 0
    assert queue_depth(clients, resources.dead_letter_queue_url) == 0


def test_status_watch_follows_a_running_job_until_it_ends(clients, resources, settings, embedded_aws, small_video):
    # given a job a worker holds RUNNING, and `status --watch` following it (through a counting proxy)
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    job_id = videoscan("submit", video, "--detectors", "stub").stdout.strip()
    gated = GatedDetector()
    worker = Worker(settings, clients, pool=DetectorPool(build=lambda name, **options: gated))
    running = threading.Thread(target=worker.run, kwargs={"drain": True})
    running.start()
    assert gated.started.wait(timeout=30)
    with FaultProxy(embedded_aws.endpoint_url, FaultPlan(0.0)) as proxy:
        watch = subprocess.Popen([sys.executable, "-m", "worker", "status", job_id, "--watch", "--interval", "0.2"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "AWS_ENDPOINT_URL": proxy.url})

        # when the watcher has read the RUNNING record at least twice, and then the job ends
        wait_for(lambda: proxy.requests["dynamodb"] >= 2 or watch.poll() is not None, 60, "the watcher to poll")
        assert watch.poll() is None, "the watcher stopped while the job was running"
        gated.proceed.set()
        running.join()

        # then the watcher returns once the job has ended, with its final record
        out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert json.loads(out)["status"] == "SUCCEEDED"


def test_analyze_output_never_follows_a_symlink_planted_at_its_temporary_name(small_video, tmp_path):
    # given another user's file, and a symlink to it where a naive writer puts its temporary file
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.json"
    (tmp_path / "out.json.part").symlink_to(victim)

    run = videoscan("analyze", small_video, "-o", str(out), "--detectors", "stub")

    # then the result is a new regular file, the victim is untouched, and no temporary file is left
    assert run.returncode == 0, run.stderr
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and json.loads(out.read_text())["summary"]["frames_analyzed"] == 24
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.json.part", "small.mp4", "victim.txt"]


def test_submit_sends_models_and_tiles_as_detector_entries(clients, resources):
    # when a job is submitted naming a model per detector and the human views
    result = videoscan("submit", f"s3://{resources.results_bucket}/in/a.mp4",
                       "--detectors", f"human:s3://{resources.results_bucket}/models/people/,face:mtcnn", "--tiles", "2x2")

    # then the stored request and the queued message carry them as the contract's objects
    assert result.returncode == 0, result.stderr
    entries = [{"name": "human", "model": f"s3://{resources.results_bucket}/models/people/", "tiles": "2x2"},
               {"name": "face", "model": "mtcnn"}]
    assert JobStore(clients.dynamodb, resources.jobs_table).get(result.stdout.strip()).request["detectors"] == entries
    [message] = clients.sqs.receive_message(QueueUrl=resources.queue_url)["Messages"]
    assert json.loads(message["Body"])["detectors"] == entries
