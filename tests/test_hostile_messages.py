"""Crafted job messages: each gets a record under the job it names, with a reason that names the field."""

from __future__ import annotations

import json

import pytest

from support.helpers import receive_events, send, subscribe_queue
from worker.aws.jobs import JobStore

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
    assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert named in record.error["message"]


def test_an_unencodable_client_token_is_refused_before_any_id_is_derived_from_it(clients, resources, make_worker):
    message_id = send(clients, resources, {"video": VIDEO, "client_token": "token-\udbff"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get(message_id)  # no id could be derived
    assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert "client_token" in record.error["message"]


@pytest.mark.parametrize("body, job_id, named", [
    ('{"video": "%s", "job_id": "big", "sample_every": 1%s}' % (VIDEO, "0" * 4400), "big", "sample_every"),
    ('{"video": "%s", "job_id": "dup", "tag": "a", "tag": "b"}' % VIDEO, "dup", "'tag'"),
    ('{"video": "%s", "job_id": "oversized", "pad": "%s"}' % (VIDEO, "p" * 17_000), "oversized", "larger than"),
])
def test_bodies_refused_whole_are_recorded_under_the_job_they_name(clients, resources, make_worker, body, job_id, named):
    clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get(job_id)
    assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert named in record.error["message"]


def test_a_body_with_a_byte_order_mark_is_a_job(clients, resources, make_worker):
    body = "\ufeff" + json.dumps({"video": f"s3://{resources.results_bucket}/no/such.mp4",
                                   "detectors": ["stub"], "job_id": "bom"})
    clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body)

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("bom")
    assert (record.status, record.error["code"]) == ("FAILED", "VIDEO_NOT_FOUND")  # read, then run


@pytest.mark.parametrize("fields", [
    {"tag": "\x1b[31mred", "video": "s3://videos/k\x1b[2J.mp4"},
    {"tag": "surrogate \udc80", "video": "s3://videos/\ud800.mp4"},
    {"tag": ["not", "text"], "video": 7},
])
def test_a_refused_tag_or_video_is_neither_stored_nor_published(clients, resources, make_worker, fields):
    events = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    send(clients, resources, {"job_id": "refused", **fields})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("refused")
    assert (record.status, record.error["code"]) == ("FAILED", "INVALID_MESSAGE")
    assert record.tag is None
    [event] = receive_events(clients, events)
    assert (event["job_id"], event["tag"], event["video"]) == ("refused", None, None)


def test_a_valid_tag_of_a_refused_message_is_kept(clients, resources, make_worker):
    send(clients, resources, {"job_id": "kept", "video": VIDEO, "tag": "camera-7", "sample_every": 0})

    make_worker().run(drain=True)

    assert JobStore(clients.dynamodb, resources.jobs_table).get("kept").tag == "camera-7"


def test_unknown_field_names_reach_the_record_escaped_and_short(clients, resources, make_worker):
    names = ["\x1b]0;pwned\x07", "line\n2026-11-30 ERROR forged", "x" * 5000, *map(str, range(20))]
    send(clients, resources, {"job_id": "names", "video": VIDEO, **dict.fromkeys(names, 1)})

    make_worker().run(drain=True)

    reason = JobStore(clients.dynamodb, resources.jobs_table).get("names").error["message"]
    assert reason.startswith("unknown field(s): ") and "pwned" in reason
    assert reason.isascii() and reason.isprintable() and len(reason) < 400
