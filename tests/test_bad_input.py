"""Bad input: each ends in a recorded state with the contract's error code, and the worker goes on."""

from __future__ import annotations

from support.helpers import queue_depth, send, upload
from worker.config import MIN_VISIBILITY_TIMEOUT_S
from worker.aws.embedded import create_resources
from worker.aws.jobs import JobStore


def test_each_bad_job_fails_with_its_code_and_a_good_job_after_them_succeeds(
        clients, resources, make_worker, small_video, tmp_path, data_dir):
    # given a bucket holding broken files next to a good video
    bucket = resources.results_bucket
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is a text file, not a video\n" * 50)
    (tmp_path / "head.mp4").write_bytes((data_dir / "short_hamilton_clip.mp4").read_bytes()[:4096])
    empty = upload(clients, bucket, "bad/empty.mp4", str(tmp_path / "empty.mp4"))
    text = upload(clients, bucket, "bad/text.mp4", str(tmp_path / "text.mp4"))
    head = upload(clients, bucket, "bad/head.mp4", str(tmp_path / "head.mp4"))
    good = upload(clients, bucket, "good/small.mp4", small_video)
    bad_jobs = {
        "zero-bytes": ({"video": empty}, "VIDEO_UNREADABLE"),
        "text-as-mp4": ({"video": text}, "VIDEO_UNREADABLE"),
        "first-4k": ({"video": head}, "VIDEO_UNREADABLE"),
        "missing-key": ({"video": f"s3://{bucket}/no/such/key.mp4"}, "VIDEO_NOT_FOUND"),
        "missing-bucket": ({"video": "s3://no-such-bucket-videoscan/a.mp4"}, "VIDEO_NOT_FOUND"),
        "unknown-detector": ({"video": good, "detectors": ["cat"]}, "UNKNOWN_DETECTOR"),
        "sample-zero": ({"video": good, "sample_every": 0}, "INVALID_MESSAGE"),
        "unknown-field": ({"video": good, "colour": "red"}, "INVALID_MESSAGE"),
        "no-video": ({"detectors": ["stub"]}, "INVALID_MESSAGE"),
        "not-s3": ({"video": "https://example.com/a.mp4"}, "INVALID_MESSAGE"),
    }
    for job_id, (message, _) in bad_jobs.items():
        send(clients, resources, {"detectors": ["stub"], **message, "job_id": job_id})
    not_json_id = clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody="{not json")["MessageId"]
    send(clients, resources, {"video": good, "detectors": ["stub"], "job_id": "good-after"})

    # when one worker drains the queue
    handled = make_worker().run(drain=True)

    # then every bad job is FAILED with its code and a message naming the problem
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    assert handled == len(bad_jobs) + 2
    for job_id, (_, code) in bad_jobs.items():
        record = jobs.get(job_id)
        assert (job_id, record.status, record.error["code"]) == (job_id, "FAILED", code)
        assert record.error["message"]
        assert record.result_uri is None
    assert "video is required" in jobs.get("no-video").error["message"]
    assert "colour" in jobs.get("unknown-field").error["message"]
    assert "sample_every" in jobs.get("sample-zero").error["message"]
    assert "'cat'" in jobs.get("unknown-detector").error["message"]
    # and the good job after them succeeded in the same run
    assert jobs.get("good-after").status == "SUCCEEDED"
    # and the body that is not JSON has no record and was not deleted (it is in flight, for the DLQ)
    assert jobs.get(not_json_id) is None
    assert queue_depth(clients, resources.queue_url) == 1
    # and no result object was written for any failed job
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert [k for k in keys if k.endswith("detections.json")] == ["results/good-after/detections.json"]


def test_a_body_that_is_not_a_job_ends_in_the_dead_letter_queue(clients, make_worker, monkeypatch):
    # given a queue that moves a message to its DLQ after one receive, and the shortest visibility allowed
    resources = create_resources(clients, "notjob", visibility_timeout=MIN_VISIBILITY_TIMEOUT_S, max_receive_count=1)
    clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody="[1, 2, 3]")

    # when a worker drains the queue
    make_worker(queue_url=resources.queue_url, jobs_table=resources.jobs_table,
                visibility_timeout=MIN_VISIBILITY_TIMEOUT_S).run(drain=True)

    # then the message was left alone: once visible again, SQS moves it to the dead-letter queue
    wait_s = MIN_VISIBILITY_TIMEOUT_S + 2
    assert clients.sqs.receive_message(QueueUrl=resources.queue_url, WaitTimeSeconds=wait_s).get("Messages") is None
    moved = clients.sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=3)["Messages"]
    assert [m["Body"] for m in moved] == ["[1, 2, 3]"]


def test_limits_and_allowed_buckets_fail_before_any_download(clients, resources, make_worker, small_video):
    other = "videoscan-not-allowed"
    clients.s3.create_bucket(Bucket=other)
    good = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    outside = upload(clients, other, "in/small.mp4", small_video)
    send(clients, resources, {"video": good, "detectors": ["stub"], "job_id": "too-big"})
    send(clients, resources, {"video": outside, "detectors": ["stub"], "job_id": "read-outside"})
    send(clients, resources, {"video": good, "detectors": ["stub"], "job_id": "write-outside",
                              "output": f"s3://{other}/out/"})

    make_worker(allowed_buckets=frozenset({"some-input-bucket"}), max_video_bytes=1000).run(drain=True)

    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    assert jobs.get("too-big").error["code"] == "VIDEO_TOO_LARGE"
    assert jobs.get("read-outside").error["code"] == "ACCESS_DENIED"
    assert jobs.get("write-outside").error["code"] == "ACCESS_DENIED"
    assert "Contents" not in clients.s3.list_objects_v2(Bucket=other, Prefix="out/")


def test_frames_over_the_pixel_limit_fail_as_too_large(clients, resources, make_worker, small_video):
    good = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": good, "detectors": ["stub"], "job_id": "too-many-pixels"})

    make_worker(max_frame_pixels=160 * 120 - 1).run(drain=True)

    error = JobStore(clients.dynamodb, resources.jobs_table).get("too-many-pixels").error
    assert error["code"] == "VIDEO_TOO_LARGE" and "160x120" in error["message"]
