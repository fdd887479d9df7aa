"""Crafted job messages: each gets a record under the job it names, with a reason that names the field."""

from __future__ import annotations

import json

import pytest

from helpers import send
from worker.jobs import JobStore

VIDEO = "s3://videos/in/a.mp4"


@pytest.mark.parametrize("fields, named", [
    ({"sample_every": 10**40}, "sample_every"),
    ({"detect_every": 10**40}, "detect_every"),
    ({"min_confidence": 1e-200}, "min_confidence"),
    ({"tag": "lone \ud800 surrogate"}, "tag"),
    ({"detectors": ["hu\udfffman"]}, "detectors"),
    ({"output": "s3://out/\udc00/"}, "output"),
])
def test_huge_numbers_and_unencodable_text_are_invalid_messages_of_the_job_they_name(
        clients, resources, make_worker, fields, named):
    send(clients, resources, {"video": VIDEO, "job_id": "crafted", **fields})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("crafted")
    assert (record["status"], record["error"]["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert named in record["error"]["message"]


def test_an_unencodable_client_token_is_refused_before_any_id_is_derived_from_it(clients, resources, make_worker):
    message_id = send(clients, resources, {"video": VIDEO, "client_token": "token-\udbff"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get(message_id)  # no id could be derived
    assert (record["status"], record["error"]["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert "client_token" in record["error"]["message"]


@pytest.mark.parametrize("body, job_id, named", [
    ('{"video": "%s", "job_id": "big", "sample_every": 1%s}' % (VIDEO, "0" * 4400), "big", "sample_every"),
    ('{"video": "%s", "job_id": "dup", "tag": "a", "tag": "b"}' % VIDEO, "dup", "'tag'"),
    ('{"video": "%s", "job_id": "oversized", "pad": "%s"}' % (VIDEO, "p" * 17_000), "oversized", "larger than"),
])
def test_bodies_refused_whole_are_recorded_under_the_job_they_name(clients, resources, make_worker, body, job_id, named):
    clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get(job_id)
    assert (record["status"], record["error"]["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert named in record["error"]["message"]


def test_a_body_with_a_byte_order_mark_is_a_job(clients, resources, make_worker):
    body = "\ufeff" + json.dumps({"video": f"s3://{resources.results_bucket}/no/such.mp4",
                                   "detectors": ["stub"], "job_id": "bom"})
    clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("bom")
    assert (record["status"], record["error"]["code"]) == ("FAILED", "VIDEO_NOT_FOUND")  # read, then run
