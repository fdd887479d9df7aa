"""A reused job id or client token: the same request is one job, a different one is refused and touches nothing."""

from __future__ import annotations

import logging

from support.helpers import queue_depth, read_result, receive_events, send, subscribe_queue, upload, videoscan
from worker.aws.jobs import JobStore
from worker.aws.queue import JobQueue
from worker.aws.submit import submit
from worker.message import job_id_for_token, parse_request


def _two_videos(clients, resources, small_video) -> tuple[str, str]:
    return (upload(clients, resources.results_bucket, "in/a.mp4", small_video),
            upload(clients, resources.results_bucket, "in/b.mp4", small_video))


def _mismatches(caplog) -> int:
    return sum(getattr(r, "code", None) == "IDEMPOTENCY_MISMATCH" for r in caplog.records)


def test_a_message_reusing_an_ended_jobs_id_is_refused_and_left_for_the_dead_letter_queue(
        clients, resources, make_worker, small_video, caplog):
    a, b = _two_videos(clients, resources, small_video)
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    send(clients, resources, {"video": a, "job_id": "owned", "detectors": ["stub"]})
    make_worker().run(drain=True)
    ended = jobs.get("owned")
    assert ended.status == "SUCCEEDED"

    send(clients, resources, {"video": b, "job_id": "owned", "detectors": ["stub"]})
    with caplog.at_level(logging.INFO):
        make_worker().run(drain=True)

    assert jobs.get("owned") == ended
    assert _mismatches(caplog) == 1
    assert queue_depth(clients, resources.queue_url) == 1  # in flight, on its way to the dead-letter queue


def test_submit_with_a_token_already_used_for_another_video_exits_2_and_sends_nothing(
        clients, resources, small_video):
    a, b = _two_videos(clients, resources, small_video)
    first = videoscan("submit", a, "--detectors", "stub", "--client-token", "upload-1")
    assert first.returncode == 0, first.stderr

    again = videoscan("submit", b, "--detectors", "stub", "--client-token", "upload-1")

    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.startswith("videoscan: IDEMPOTENCY_MISMATCH: ") and len(again.stderr.splitlines()) == 1
    record = JobStore(clients.dynamodb, resources.jobs_table).get(first.stdout.strip())
    assert record.request["video"] == a
    assert queue_depth(clients, resources.queue_url) == 1


def test_a_different_request_under_a_queued_jobs_token_never_runs_in_its_place(
        clients, resources, make_worker, small_video, caplog):
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    a, b = _two_videos(clients, resources, small_video)
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    job_id = job_id_for_token("upload-2")
    submit(parse_request({"video": a, "detectors": ["stub"], "client_token": "upload-2"}, job_id), jobs,
           JobQueue(clients.sqs, resources.queue_url))

    send(clients, resources, {"video": b, "detectors": ["stub"], "client_token": "upload-2"})
    with caplog.at_level(logging.INFO):
        make_worker().run(drain=True)

    record = jobs.get(job_id)
    assert (record.status, record.request["video"], record.attempts) == ("SUCCEEDED", a, 1)
    assert read_result(clients, record.result_uri)["video"]["uri"] == a
    assert [(e["job_id"], e["video"]) for e in receive_events(clients, events_url)] == [(job_id, a)]
    assert _mismatches(caplog) == 1


def test_a_stray_invalid_message_carrying_a_queued_jobs_token_does_not_fail_it(
        clients, resources, make_worker, small_video, caplog):
    a, _ = _two_videos(clients, resources, small_video)
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    job_id = job_id_for_token("upload-3")
    submit(parse_request({"video": a, "detectors": ["stub"], "client_token": "upload-3"}, job_id), jobs,
           JobQueue(clients.sqs, resources.queue_url))

    send(clients, resources, {"video": a, "detectors": ["stub"], "client_token": "upload-3", "sample_every": 0})
    with caplog.at_level(logging.INFO):
        make_worker().run(drain=True)

    record = jobs.get(job_id)
    assert (record.status, record.error) == ("SUCCEEDED", None)
    assert _mismatches(caplog) == 1


def test_a_redelivered_invalid_message_is_the_same_refused_job(clients, resources, make_worker, caplog):
    body = {"video": "s3://videos/in/a.mp4", "job_id": "bad", "sample_every": 0}
    send(clients, resources, body)
    make_worker().run(drain=True)
    ended = JobStore(clients.dynamodb, resources.jobs_table).get("bad")

    send(clients, resources, body)  # as SQS redelivers a message whose delete was lost
    with caplog.at_level(logging.INFO):
        make_worker().run(drain=True)

    assert JobStore(clients.dynamodb, resources.jobs_table).get("bad") == ended
    assert _mismatches(caplog) == 0
    assert queue_depth(clients, resources.queue_url) == 0
