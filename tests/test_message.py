"""Job messages: what is accepted, and errors that name the field at fault."""

from __future__ import annotations

import json

import pytest

from worker.errors import InvalidMessage, MessageRefused, NotAJob, UnknownDetector
from worker.message import job_id_for_token, job_id_of, parse_request
from worker.message_body import read_job
from worker.options import DetectorSpec, JobOptions

VIDEO = "s3://videos/cam/7.mp4"


def test_defaults():
    request = parse_request({"video": VIDEO}, "j")
    assert request.options == JobOptions(detectors=(DetectorSpec("human"),), sample_every=1, detect_every=1)
    assert request.output is None
    assert request.to_message() == {"job_id": "j", "video": VIDEO, "detectors": ["human"], "sample_every": 1,
                                    "detect_every": 1, "version": 1}


def test_the_contract_example_is_valid():
    message = {"version": 1, "video": VIDEO, "detectors": ["human", "face"], "sample_every": 1,
               "min_confidence": 0.5, "output": "s3://bucket/prefix/", "tag": "camera-7",
               "client_token": "upload-1234", "job_id": "optional-explicit-id"}
    request = parse_request(message, job_id_of(message, "fallback"))
    assert request.job_id == "optional-explicit-id"
    assert request.options.detectors == (DetectorSpec("human", min_confidence=0.5), DetectorSpec("face", min_confidence=0.5))
    assert request.to_message() == {**message, "detect_every": 1}


@pytest.mark.parametrize("fields, named", [
    ({"video": None}, "video"),
    ({"video": "https://x/y.mp4"}, "video"),
    ({"video": "s3://bucket"}, "video"),
    ({"video": "s3://b/k\n.mp4"}, "video"),
    ({"sample_every": 0}, "sample_every"),
    ({"sample_every": 1.5}, "sample_every"),
    ({"sample_every": True}, "sample_every"),
    ({"detect_every": "2"}, "detect_every"),
    ({"min_confidence": 0}, "min_confidence"),
    ({"min_confidence": 1.01}, "min_confidence"),
    ({"detectors": []}, "detectors"),
    ({"detectors": "human"}, "detectors"),
    ({"detectors": ["human", "human"]}, "detectors"),
    ({"output": "s3://bucket/../other/"}, "output"),
    ({"output": "/tmp/out"}, "output"),
    ({"tag": "x" * 257}, "tag"),
    ({"tag": 7}, "tag"),
    ({"client_token": "t" * 65}, "client_token"),
    ({"version": 2}, "version"),
    ({"priority": 1}, "priority"),
])
def test_invalid_fields_are_named(fields, named):
    message = {"video": VIDEO, **fields}
    message = {k: v for k, v in message.items() if v is not None}
    with pytest.raises(InvalidMessage, match=named):
        parse_request(message, "j")


def test_unknown_detector_has_its_own_code():
    with pytest.raises(UnknownDetector) as error:
        parse_request({"video": VIDEO, "detectors": ["human", "dog"]}, "j")
    assert error.value.code == "UNKNOWN_DETECTOR" and "'dog'" in str(error.value)


def test_output_is_normalised_to_a_prefix():
    assert parse_request({"video": VIDEO, "output": "s3://out"}, "j").output == "s3://out/"
    assert parse_request({"video": VIDEO, "output": "s3://out/a/b"}, "j").output == "s3://out/a/b/"


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", '"text"', "null", "{" * 10])
def test_bodies_that_cannot_name_a_job(body):
    with pytest.raises(NotAJob):
        read_job(body, "m")


@pytest.mark.parametrize("body, reason", [
    (json.dumps({"video": VIDEO, "tag": "t"})[:-1] + ', "extra": ' + "[" * 5000 + "]" * 5000 + "}", "nested"),
    (json.dumps({"video": VIDEO, "tag": "x" * 20_000}), "larger than"),
])
def test_hostile_json_is_an_invalid_message_not_a_crash(body, reason):
    with pytest.raises(MessageRefused, match=reason) as refused:
        read_job(body, "m")
    assert (refused.value.code, refused.value.job_id) == ("INVALID_MESSAGE", "m")


def test_job_ids_come_from_the_message_the_token_or_the_message_id():
    assert job_id_of({"job_id": "abc-1"}, "m") == "abc-1"
    assert job_id_of({"client_token": "upload-1"}, "m") == job_id_for_token("upload-1")
    assert job_id_for_token("upload-1") == job_id_for_token("upload-1") != job_id_for_token("upload-2")
    assert job_id_of({}, "message-id") == "message-id"
    for bad in ("../etc", "a/b", "-lead", "x" * 65, "tab\there", 7, "nl\n"):
        with pytest.raises(InvalidMessage, match="job_id"):
            job_id_of({"job_id": bad}, "m")


@pytest.mark.parametrize("key", ["cam 7/2026 11 22.mp4", " leading and trailing .mp4 ", "caméra/été (1).mp4",
                                 "a+b=c&d/e'f\"g.mp4"])
def test_any_valid_s3_key_is_an_s3_uri(key):
    request = parse_request({"video": f"s3://videos/{key}", "output": f"s3://out/{key}/"}, "j")
    assert (request.video, request.output) == (f"s3://videos/{key}", f"s3://out/{key}/")


def test_a_key_longer_than_s3_allows_is_invalid():
    parse_request({"video": "s3://videos/" + "é" * 512}, "j")  # 1024 bytes of UTF-8: S3's limit
    with pytest.raises(InvalidMessage, match="video"):
        parse_request({"video": "s3://videos/" + "é" * 512 + "x"}, "j")


@pytest.mark.parametrize("fields, named", [
    ({"sample_every": 10**40}, "sample_every"),
    ({"detect_every": 10_000_001}, "detect_every"),
    ({"min_confidence": 5e-324}, "min_confidence"),
    ({"min_confidence": float("nan")}, "min_confidence"),
    ({"tag": "\ud800"}, "tag"),
    ({"tag": "csi \x9b31m"}, "tag"),
    ({"client_token": "\udfff"}, "client_token"),
    ({"detectors": ["\ud83d"]}, "detectors"),
])
def test_numbers_are_bounded_and_text_must_be_encodable(fields, named):
    with pytest.raises(InvalidMessage, match=named) as error:
        parse_request({"video": VIDEO, **fields}, "j")
    str(error.value).encode("utf-8")  # the reason itself can be stored and logged


def test_no_id_is_derived_from_an_unencodable_client_token():
    with pytest.raises(InvalidMessage, match="client_token"):
        job_id_of({"client_token": "t\ud800"}, "m")


def test_a_body_with_a_byte_order_mark_is_read_as_json():
    request = read_job("\ufeff" + json.dumps({"video": VIDEO, "job_id": "bom"}), "m")
    assert (request.job_id, request.video) == ("bom", VIDEO)


@pytest.mark.parametrize("body, job_id, named", [
    ('{"video": "%s", "job_id": "big", "sample_every": 1%s}' % (VIDEO, "0" * 5000), "big", "sample_every"),
    ('{"video": "%s", "job_id": "big", "version": -%s}' % (VIDEO, "9" * 4301), "big", "version"),
    ('{"video": "%s", "job_id": "dup", "tag": "a", "tag": "b"}' % VIDEO, "dup", "'tag'"),
    ('{"video": "%s", "job_id": "one", "job_id": "two"}' % VIDEO, "m", "'job_id'"),
    (json.dumps({"video": VIDEO, "job_id": "oversized", "pad": "p" * 17_000}), "oversized", "larger than"),
])
def test_refused_bodies_name_their_job_and_the_field(body, job_id, named):
    with pytest.raises(MessageRefused, match=named) as refused:
        read_job(body, "m")
    assert (refused.value.code, refused.value.job_id) == ("INVALID_MESSAGE", job_id)


def test_detector_objects_choose_a_model_and_options_per_detector():
    message = {"video": VIDEO, "min_confidence": 0.6,
               "detectors": [{"name": "human", "model": "s3://models/people/", "tiles": "2x2"},
                             {"name": "face", "model": "mtcnn", "min_confidence": 0.8}, "stub"]}
    request = parse_request(message, "j")
    assert request.options.detectors == (DetectorSpec("human", "s3://models/people/", 0.6, "2x2"),
                                         DetectorSpec("face", "mtcnn", 0.8), DetectorSpec("stub", min_confidence=0.6))
    # the stored request keeps each entry's own choices, and reads back as the same request
    assert request.to_message()["detectors"] == message["detectors"]
    assert parse_request(request.to_message(), "j") == request


@pytest.mark.parametrize("entry, error, named", [
    ({"name": "human", "colour": "red"}, InvalidMessage, "detectors[0] ('human'): unknown option(s): 'colour'"),
    ({"name": "face", "tiles": "auto"}, InvalidMessage, "detectors[0] ('face'): unknown option(s): 'tiles'"),
    ({"name": "human", "tiles": "3x3"}, InvalidMessage, "detectors[0] ('human').tiles must be one of"),
    ({"name": "human", "model": 7}, InvalidMessage, "detectors[0] ('human').model must be a non-empty string"),
    ({"name": "human", "min_confidence": 2}, InvalidMessage, "detectors[0] ('human').min_confidence must be"),
    ({"name": "face", "model": "yolo"}, UnknownDetector, "detectors[0] ('face'): unknown face model 'yolo'"),
    ({"name": "human", "model": "s3://bucket-only"}, UnknownDetector, "detectors[0] ('human'): unknown human model"),
    ({"model": "mtcnn"}, InvalidMessage, "detectors[0].name must be a non-empty string"),
    ({"name": "cat"}, UnknownDetector, "unknown detector 'cat'"),
    (["face"], InvalidMessage, "detectors[0] must be a detector name or an object"),
])
def test_a_bad_detector_entry_is_refused_naming_it(entry, error, named):
    with pytest.raises(error) as raised:
        parse_request({"video": VIDEO, "detectors": [entry]}, "j")
    assert named in str(raised.value)
