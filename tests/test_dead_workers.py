"""A job whose worker died on every attempt: a live worker ends it FAILED, and its message stays dead-lettered."""

from __future__ import annotations

import json
import time

from support.helpers import queue_depth, receive_events, subscribe_queue
from worker.aws.jobs import JobStore
from worker.message import parse_request

STOPPED = {"code": "INTERNAL", "message": "the worker stopped on every attempt"}


def dead_lettered(clients, resources, job_id: str, lease_ended_ago_s: float) -> None:
    """A job as SQS and the record leave it when its worker was killed on its last attempt:
    the record RUNNING under a lease that ended `lease_ended_ago_s` ago, its message in the dead-letter queue."""
    body = {"video": f"s3://{resources.results_bucket}/in/a.mp4", "job_id": job_id, "detectors": ["stub"]}
    then = time.time() - lease_ended_ago_s - 60
    jobs = JobStore(clients.dynamodb, resources.jobs_table, clock=lambda: then)
    jobs.create(parse_request(body, job_id))
    jobs.claim(job_id, "killed-worker", lease_s=60)
    clients.sqs.send_message(QueueUrl=resources.dead_letter_queue_url, MessageBody=json.dumps(body))


def test_a_live_worker_fails_a_job_whose_worker_died_on_every_attempt(clients, resources, settings, make_worker):
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    # ended long enough ago for any duplicate message to have taken the job over
    dead_lettered(clients, resources, "doomed", lease_ended_ago_s=settings.visibility_timeout + settings.clock_skew_s + 5)
    # ended too recently: a duplicate of its message may still take it over
    dead_lettered(clients, resources, "just-lapsed", lease_ended_ago_s=settings.clock_skew_s + 5)
    dead_lettered(clients, resources, "still-held", lease_ended_ago_s=-600)  # its lease runs on: not dead
    jobs = JobStore(clients.dynamodb, resources.jobs_table)

    for _ in range(2):  # several workers sweep; one of them records the end
        make_worker().run(drain=True)

    record = jobs.get("doomed")
    assert (record.status, record.error) == ("FAILED", STOPPED)
    assert jobs.get("still-held").status == jobs.get("just-lapsed").status == "RUNNING"
    assert [(e["job_id"], e["status"], e["error"]) for e in receive_events(clients, events_url)] == \
        [("doomed", "FAILED", STOPPED)]
    assert queue_depth(clients, resources.dead_letter_queue_url) == 3  # kept for inspection
