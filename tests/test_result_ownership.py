"""No job writes over another job's result, and an unwritable output fails the job before its analysis."""

from __future__ import annotations

import pytest

from support.helpers import send, upload
from worker.aws.jobs import JobStore
from worker.aws.storage import Storage
from worker.errors import AccessDenied


def _object(clients, uri: str) -> tuple[str, bytes]:
    bucket, key = uri[5:].split("/", 1)
    found = clients.s3.get_object(Bucket=bucket, Key=key)
    return found["ETag"], found["Body"].read()


def test_a_job_naming_another_jobs_results_prefix_is_refused_and_the_result_stays(
        clients, resources, make_worker, small_video):
    video = upload(clients, resources.results_bucket, "in/a.mp4", small_video)
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    send(clients, resources, {"video": video, "job_id": "victim", "detectors": ["stub"]})
    make_worker().run(drain=True)
    victim = jobs.get("victim")
    before = _object(clients, victim.result_uri)

    for job_id, output in [("attacker", "victim/"), ("sneaky", "victim"), ("nested", "victim/x/")]:
        send(clients, resources, {"video": video, "job_id": job_id, "detectors": ["stub"],
                                  "output": f"s3://{resources.results_bucket}/results/{output}"})
    make_worker().run(drain=True)

    for job_id in ("attacker", "sneaky", "nested"):
        record = jobs.get(job_id)
        assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE"), job_id
        assert "output" in record.error["message"]
    assert _object(clients, victim.result_uri) == before
    assert jobs.get("victim") == victim


def test_a_second_job_with_the_same_output_fails_before_its_analysis_and_writes_nothing(
        clients, resources, make_worker, small_video):
    video = upload(clients, resources.results_bucket, "in/a.mp4", small_video)
    output = f"s3://{resources.results_bucket}/shared/"
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    send(clients, resources, {"video": video, "job_id": "first", "detectors": ["stub"], "output": output})
    make_worker().run(drain=True)
    before = _object(clients, output + "detections.json")

    missing_video = f"s3://{resources.results_bucket}/in/missing.mp4"  # the output is checked first
    send(clients, resources, {"video": missing_video, "job_id": "second", "detectors": ["stub"], "output": output})
    make_worker().run(drain=True)

    record = jobs.get("second")
    assert (record.status, record.error["code"]) == ("FAILED", "ACCESS_DENIED")
    assert "another job" in record.error["message"]
    assert _object(clients, output + "detections.json") == before


def test_publishing_writes_once_per_job_and_a_retry_of_the_same_job_may_replace_its_own(clients, resources, tmp_path):
    storage = Storage(clients.s3, max_video_bytes=1 << 20)
    uri = f"s3://{resources.results_bucket}/results/job-a/detections.json"
    path = tmp_path / "detections.json"
    path.write_text('{"attempt": 1}')
    storage.publish_result(str(path), uri, "job-a")
    path.write_text('{"attempt": 2}')

    storage.publish_result(str(path), uri, "job-a")  # its rerun, after a crash before its record write

    assert _object(clients, uri)[1] == b'{"attempt": 2}'
    path.write_text('{"attempt": "other"}')
    with pytest.raises(AccessDenied, match="another job"):
        storage.publish_result(str(path), uri, "job-b")
    with pytest.raises(AccessDenied, match="another job"):
        storage.check_output(uri, "job-b")
    assert _object(clients, uri)[1] == b'{"attempt": 2}'


def test_a_missing_results_bucket_is_the_operators_fault_and_releases_the_job_before_its_analysis(
        clients, resources, make_worker, monkeypatch):
    monkeypatch.setenv("VIDEOSCAN_RESULTS_BUCKET", resources.results_bucket + "-missing")
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    missing_video = f"s3://{resources.results_bucket}/in/missing.mp4"  # never fetched: the output is checked first
    send(clients, resources, {"video": missing_video, "job_id": "misconfigured", "detectors": ["stub"]})

    make_worker().run(drain=True)

    record = jobs.get("misconfigured")
    assert (record.status, record.error, record.attempts) == ("QUEUED", None, 1)
    assert "VIDEOSCAN_RESULTS_BUCKET" in record.last_error and "does not exist" in record.last_error


def test_a_missing_output_bucket_named_by_the_message_is_its_fault_and_fails_before_its_analysis(
        clients, resources, make_worker):
    missing_video = f"s3://{resources.results_bucket}/in/missing.mp4"
    send(clients, resources, {"video": missing_video, "job_id": "bad-output", "detectors": ["stub"],
                              "output": "s3://no-such-bucket-videoscan/out/"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("bad-output")
    assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert "no-such-bucket-videoscan" in record.error["message"]
