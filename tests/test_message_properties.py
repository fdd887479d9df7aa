"""The message parser, on any input: a valid request that can be stored, or a refusal with a contract code."""

from __future__ import annotations

import json

from hypothesis import event, example, given, settings, strategies as st

from worker.errors import MessageRefused, NotAJob
from worker.aws.job_record import to_item
from worker.message import JOB_ID_PATTERN
from worker.message_body import read_job

CONTRACT_CODES = {"INVALID_MESSAGE", "VIDEO_NOT_FOUND", "ACCESS_DENIED", "VIDEO_UNREADABLE", "VIDEO_TOO_LARGE",
                  "VIDEO_TOO_LONG", "UNKNOWN_DETECTOR", "IDEMPOTENCY_MISMATCH", "INTERNAL"}
FIELDS = ["version", "video", "detectors", "sample_every", "detect_every", "min_confidence", "output", "tag",
          "client_token", "job_id"]
CONTROLS = {chr(c) for c in [*range(32), *range(127, 160)]}

# Any character, lone surrogates and control characters included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=80)
scalars = (st.none() | st.booleans() | st.integers(-10**45, 10**45) | st.floats() | any_text
           | st.sampled_from([0, 1, 2, 10**7, 10**7 + 1, 0.5, 1e-7, 5e-324, "human", "face", "stub"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(any_text, inner, max_size=3), max_leaves=12)
field_values = {
    "video": st.builds("s3://{}/{}".format, st.sampled_from(["videos", "a.b-c", "B"]), any_text),
    "output": st.builds("s3://{}/{}".format, st.sampled_from(["out", "x"]), any_text),
    "detectors": st.lists(st.sampled_from(["human", "face", "stub", "dog", ""]) | any_text, max_size=3),
    "job_id": st.from_regex(JOB_ID_PATTERN, fullmatch=True) | any_text,
}
plausible = {
    "version": st.just(1), "sample_every": st.integers(0, 2 * 10**7), "detect_every": st.integers(0, 2 * 10**7),
    "min_confidence": st.floats(0, 1), "tag": any_text, "client_token": any_text,
    "detectors": st.lists(st.sampled_from(["human", "face", "stub", "dog"]), min_size=1, max_size=3, unique=True),
}
keys = st.sampled_from(FIELDS) | any_text
pairs = (
    st.lists(st.tuples(keys, json_values), max_size=8)  # anything
    | st.lists(st.sampled_from(FIELDS).flatmap(  # the contract's fields, repeated or not, with any values
        lambda f: st.tuples(st.just(f), field_values.get(f, json_values))), max_size=10)
    | st.fixed_dictionaries(  # a video and a few fields, mostly plausible: valid requests too
        {"video": st.just("s3://videos/cam/a.mp4") | field_values["video"]},
        optional={f: plausible.get(f, st.nothing()) | field_values.get(f, json_values) for f in FIELDS if f != "video"},
    ).map(lambda message: list(message.items()))
)


def raw_object(items: list[tuple[str, object]], ensure_ascii: bool) -> str:
    """A JSON object written pair by pair, so that a key may appear twice."""
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=ensure_ascii)}: {json.dumps(v, ensure_ascii=ensure_ascii)}"
                           for k, v in items) + "}"


def assert_parsed_or_refused(body: str) -> None:
    try:
        request = read_job(body, "msg-1")
    except NotAJob:
        event("not a job")
        try:
            decoded = json.loads(body.removeprefix("\ufeff"))
        except (ValueError, RecursionError):
            return  # not JSON
        assert not isinstance(decoded, dict), "a JSON object must name a job"
    except MessageRefused as refused:
        event(f"refused: {refused.code}")
        assert refused.code in CONTRACT_CODES
        assert refused.job_id == "msg-1" or JOB_ID_PATTERN.fullmatch(refused.job_id)
        reason = str(refused)
        assert reason and not CONTROLS & set(reason) and len(reason) < 600
        reason.encode("utf-8")
        assert refused.tag is None or (not CONTROLS & set(refused.tag) and refused.tag.encode("utf-8"))
        assert refused.video is None or refused.video.encode("utf-8")  # any valid S3 key, shown escaped
    else:
        event("a valid request")
        assert JOB_ID_PATTERN.fullmatch(request.job_id) or request.job_id == "msg-1"
        stored = request.to_message()
        to_item({"request": stored, "tag": request.tag})  # DynamoDB's own serializer takes it
        assert json.loads(json.dumps(stored, ensure_ascii=False).encode("utf-8")) == stored


@settings(max_examples=200, deadline=None)
@given(items=pairs, ensure_ascii=st.booleans(), bom=st.booleans())
@example(items=[("video", "s3://v/a.mp4"), ("sample_every", 10**40)], ensure_ascii=True, bom=False)
@example(items=[("video", "s3://v/a.mp4"), ("tag", "\ud800")], ensure_ascii=True, bom=True)
@example(items=[("video", "s3://v/a.mp4"), ("client_token", "\udfff")], ensure_ascii=False, bom=False)
@example(items=[("video", "s3://v/a.mp4"), ("tag", "a"), ("tag", "b")], ensure_ascii=True, bom=False)
def test_any_json_object_is_a_request_or_a_refusal_with_a_contract_code(items, ensure_ascii, bom):
    assert_parsed_or_refused(("\ufeff" if bom else "") + raw_object(items, ensure_ascii))


@settings(max_examples=150, deadline=None)
@given(value=json_values)
def test_any_json_value_is_a_request_a_refusal_or_not_a_job(value):
    assert_parsed_or_refused(json.dumps(value))


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200) | st.builds(
    lambda sign, digits: f'{{"video": "s3://v/a", "sample_every": {sign}{"9" * digits}}}'.encode(),
    st.sampled_from(["", "-"]), st.integers(4290, 4400)))
@example(data=b'\xef\xbb\xbf{"video": "s3://v/a.mp4"}')
@example(data=b'{"video": "s3://v/\xff.mp4", "job_id": "x\\n"}')
def test_any_byte_string_is_a_request_a_refusal_or_not_a_job(data):
    assert_parsed_or_refused(data.decode("utf-8", "surrogateescape"))
