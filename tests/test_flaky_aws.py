"""Flaky AWS: with a tenth of the requests to S3, SQS, DynamoDB and SNS failing, every job still ends once."""

from __future__ import annotations

import collections
import json

import boto3
import pytest
from botocore.config import Config

from support.fault_proxy import (DROPPED_AFTER, DROPPED_BEFORE, FAULT_KINDS, INTERNAL_ERROR, THROTTLED, UNAVAILABLE, FaultPlan,
                         FaultProxy)
from support.helpers import drain_until, queue_depth, read_result, receive_events, send, subscribe_queue, upload
from worker.aws.clients import AwsClients
from worker.config import Settings
from worker.errors import InvalidMessage, JobFailure
from worker.aws.jobs import FINAL_STATES, JobStore
from worker.aws.storage import Storage
from worker.worker import Worker

JOBS = 8
FAULT_RATE = 0.10
VISIBILITY_S = 4
DEADLINE_S = 45
# Besides the random faults, each of these hits the first request that matches it, so that
# every kind of fault, and the lost responses that matter most, happen in every run.
SCHEDULED_FAULTS = (
    ("sqs", "ReceiveMessage", DROPPED_AFTER),  # a message now hidden that no worker holds
    ("dynamodb", "UpdateItem", DROPPED_AFTER),  # the claim landed; its retry must recognise it
    ("s3", "PutObject", DROPPED_AFTER),  # the result is written twice
    ("sns", "Publish", DROPPED_AFTER),  # the event is published twice
    ("dynamodb", "PutItem", THROTTLED),
    ("sqs", "DeleteMessage", THROTTLED),
    ("s3", "GetObject", INTERNAL_ERROR),
    ("s3", "HeadObject", UNAVAILABLE),
    ("sqs", "GetQueueAttributes", DROPPED_BEFORE),
)


@pytest.fixture
def proxy(embedded_aws):
    with FaultProxy(embedded_aws.endpoint_url, FaultPlan(FAULT_RATE, seed=4, scheduled=SCHEDULED_FAULTS)) as proxy:
        yield proxy


@pytest.fixture
def flaky_clients(embedded_aws, proxy) -> AwsClients:
    """Clients that send every request through the proxy."""
    return AwsClients.create(embedded_aws.region, embedded_aws.session(), endpoint_url=proxy.url)


def test_every_job_ends_once_when_a_tenth_of_aws_requests_fail(
        clients, resources, proxy, flaky_clients, detector_pool, small_video):
    # given jobs on real videos and one invalid message, and a subscriber to the completion events
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    job_ids = [f"flaky-{n}" for n in range(JOBS)]
    for job_id in job_ids:
        video = upload(clients, resources.results_bucket, f"in/{job_id}.mp4", small_video)
        send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": job_id})
    send(clients, resources, {"video": "https://example.com/video.mp4", "job_id": "invalid"})
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    worker = Worker(Settings.load(visibility_timeout=VISIBILITY_S), flaky_clients, pool=detector_pool)

    # when a worker talks to AWS through the proxy, draining the queue pass after pass (a message
    # whose receive was lost stays hidden until its visibility timeout, then comes back)
    def all_ended() -> bool:
        return all(getattr(jobs.get(job_id), "status", None) in FINAL_STATES for job_id in [*job_ids, "invalid"])
    drain_until(worker, all_ended, DEADLINE_S)

    # then every job succeeded on its first attempt (a retried claim is not a second one) ...
    records = {job_id: jobs.get(job_id) for job_id in job_ids}
    assert {job_id: (r.status, r.attempts) for job_id, r in records.items()} == \
        {job_id: ("SUCCEEDED", 1) for job_id in job_ids}
    invalid = jobs.get("invalid")
    assert invalid.status == "FAILED" and invalid.error["code"] == "INVALID_MESSAGE"
    # ... with exactly one result object each, complete and its own
    listed = clients.s3.list_objects_v2(Bucket=resources.results_bucket, Prefix="results/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"results/{job_id}/detections.json" for job_id in job_ids)
    for job_id, record in records.items():
        result = read_result(clients, record.result_uri)
        assert result["job_id"] == job_id and result["summary"]["frames_analyzed"] == 24
    # and the queue and its dead-letter queue are empty
    assert queue_depth(clients, resources.queue_url) == 0
    assert queue_depth(clients, resources.dead_letter_queue_url) == 0

    # the faults did happen: every kind, on every service
    counts = proxy.counts()
    assert {kind for _, kind in counts} == set(FAULT_KINDS), counts
    assert {service for service, _ in counts} == {"s3", "sqs", "dynamodb", "sns"}, counts
    assert proxy.faults_of("dynamodb", "UpdateItem", DROPPED_AFTER)

    # events are at least once: every job has one, and a job has a second only where the
    # response to its Publish was lost and botocore published again
    events = collections.Counter(event["job_id"] for event in receive_events(clients, events_url))
    republished = collections.Counter(json.loads(fault.call.params()["Message"])["job_id"]
                                      for fault in proxy.faults_of("sns", "Publish", DROPPED_AFTER))
    assert republished  # the scheduled lost response
    for job_id in [*job_ids, "invalid"]:
        assert 1 <= events[job_id] <= 1 + republished[job_id], (job_id, events, republished)


@pytest.mark.parametrize("prefix", ["AccessDenied", "NoSuchBucket"])
def test_s3_errors_are_told_apart_by_their_code_not_their_text(clients, resources, embedded_aws, tmp_path, prefix):
    # given a result to upload under a prefix that spells an error code, while S3 fails with 500s
    document = tmp_path / "detections.json"
    document.write_text("{}")
    uri = f"s3://{resources.results_bucket}/{prefix}/detections.json"
    with FaultProxy(embedded_aws.endpoint_url, FaultPlan(1.0, kinds=(INTERNAL_ERROR,))) as failing:
        s3 = boto3.session.Session().client("s3", region_name=clients.region, endpoint_url=failing.url,
                                            config=Config(retries={"mode": "standard", "max_attempts": 1}))
        # when the upload fails, then the outage is an error to retry, not the job's fault
        with pytest.raises(Exception) as raised:
            Storage(s3, max_video_bytes=1).publish_result(str(document), uri, "job-a")
    assert not isinstance(raised.value, JobFailure), raised.value
    # while a bucket that really is missing is still recognised by its code
    with pytest.raises(InvalidMessage, match="does not exist"):
        Storage(clients.s3, max_video_bytes=1).publish_result(str(document), f"s3://no-such-{prefix.lower()}/x.json",
                                                          "job-a")
