"""Outputs asked for by a job, through the queue path against moto over HTTP: the videos, tracks and
thumbnails under the job's prefix, the event's `outputs`, and a failed upload retried cleanly."""

from __future__ import annotations

import collections

import av
import cv2
import numpy as np
import pytest

from support.fault_proxy import INTERNAL_ERROR, FaultPlan, FaultProxy
from support.helpers import read_result, receive_events, send, subscribe_queue, upload
from worker.aws.clients import AwsClients
from worker.aws.jobs import JobStore
from worker.config import Settings
from worker.errors import InvalidMessage
from worker.message import parse_request
from worker.worker import Worker


def _objects(clients, bucket: str, prefix: str) -> list[str]:
    listed = clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _download(clients, uri: str, path) -> str:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    clients.s3.download_file(bucket, key, str(path))
    return str(path)


def _video_facts(path: str) -> dict:
    with av.open(path) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {"codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "size": (stream.width, stream.height), "rate": float(stream.average_rate), "frames": frames,
                "audio": [a.codec_context.name for a in container.streams.audio]}


@pytest.mark.slow
def test_a_job_with_outputs_publishes_videos_tracks_and_thumbnails(clients, resources, make_worker, data_dir, tmp_path):
    # given the hamilton clip, faces on every 5th frame, with every output asked for
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    video = upload(clients, resources.results_bucket, "in/hamilton.mp4", str(data_dir / "short_hamilton_clip.mp4"))
    send(clients, resources, {"video": video, "detectors": ["face"], "sample_every": 5, "job_id": "shown",
                              "outputs": ["annotated", "redacted", "thumbnails"]})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("shown")
    assert record.status == "SUCCEEDED", record
    result = read_result(clients, record.result_uri)
    prefix = record.result_uri.removesuffix("detections.json")
    assert result["outputs"] == {"annotated": prefix + "annotated.mp4", "redacted": prefix + "redacted.mp4",
                                 "thumbnails": prefix + "thumbnails/"}
    # then both videos are browser-playable H.264 with every source frame, its size, rate and audio
    source = _video_facts(str(data_dir / "short_hamilton_clip.mp4"))
    for kind in ("annotated", "redacted"):
        made = _video_facts(_download(clients, result["outputs"][kind], tmp_path / f"{kind}.mp4"))
        assert made == {**source, "codec": "h264", "pix_fmt": "yuv420p"}, kind
        assert made["frames"] == result["video"]["frame_count"] == 275
    # and the tracks agree with the per-frame detections, each with its thumbnail
    seen = collections.defaultdict(list)
    for frame in result["frames"]:
        for detection in frame["detections"]:
            seen[detection["label"], detection["track_id"]].append((frame, detection))
    assert result["tracks"], "the singer and the pianist are tracked"
    for track in result["tracks"]:
        frames = seen[track["label"], track["track_id"]]
        assert (track["first_index"], track["last_index"], track["frames"]) == \
            (frames[0][0]["index"], frames[-1][0]["index"], len(frames))
        assert (track["first_ms"], track["last_ms"]) == (frames[0][0]["timestamp_ms"], frames[-1][0]["timestamp_ms"])
        assert track["max_confidence"] == max(d["confidence"] for _, d in frames if d["source"] == "detector")
        best = next(d for f, d in frames if f["index"] == track["best"]["index"])
        assert best["box"] == track["best"]["box"]
        assert track["thumbnail"] == f"{prefix}thumbnails/face-{track['track_id']}.jpg"
        image = cv2.imread(_download(clients, track["thumbnail"], tmp_path / "thumb.jpg"))
        box = track["best"]["box"]
        assert image is not None and image.shape[1] >= box["width"] * 640 and image.shape[0] >= box["height"] * 360
    bucket = resources.results_bucket
    assert len(_objects(clients, bucket, prefix.split("/", 3)[3] + "thumbnails/")) == len(result["tracks"])
    # and the completion event carries the outputs
    events = [e for e in receive_events(clients, events_url) if e["job_id"] == "shown"]
    assert [e["outputs"] for e in events] == [result["outputs"]]


def test_a_job_without_outputs_still_lists_its_tracks(clients, resources, make_worker, small_video):
    video = upload(clients, resources.results_bucket, "in/plain.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "plain"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("plain")
    result = read_result(clients, record.result_uri)
    assert "outputs" not in result
    ids = {d["track_id"] for f in result["frames"] for d in f["detections"]}
    assert ids and {t["track_id"] for t in result["tracks"]} <= ids and result["tracks"]
    assert all("thumbnail" not in t for t in result["tracks"])


class _FailAfterFirstUpload(FaultPlan):
    """Lets the first PutObject (the annotated video) through, then fails every one until `healed`."""

    def __init__(self):
        super().__init__(0.0)
        self.puts = 0
        self.healed = False

    def choose(self, call):
        if (call.service, call.operation) != ("s3", "PutObject") or self.healed:
            return None
        self.puts += 1
        return INTERNAL_ERROR if self.puts >= 2 else None


def test_a_failed_output_upload_is_retried_with_nothing_half_published(
        clients, resources, embedded_aws, detector_pool, small_video):
    # given a job asking for both videos, whose second upload fails on every attempt
    video = upload(clients, resources.results_bucket, "in/retried.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "retried",
                              "outputs": ["annotated", "redacted"], "redact": ["object"]})
    prefix = "results/retried/"
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    plan = _FailAfterFirstUpload()
    with FaultProxy(embedded_aws.endpoint_url, plan) as proxy:
        flaky = AwsClients.create(embedded_aws.region, embedded_aws.session(), endpoint_url=proxy.url)
        worker = Worker(Settings.load(visibility_timeout=2), flaky, pool=detector_pool)

        # when the first attempt fails, then it is handed back and nothing is visible under the prefix
        worker.run(max_jobs=1)
        assert proxy.faults_of("s3", "PutObject", INTERNAL_ERROR)
        assert jobs.get("retried").status == "QUEUED"
        assert _objects(clients, resources.results_bucket, prefix) == []

        # and the retry, with S3 healthy again, publishes every output, the result last
        plan.healed = True
        worker.run(max_jobs=1)  # the message comes back once its visibility timeout passes
        assert jobs.get("retried").status == "SUCCEEDED"
    result = read_result(clients, jobs.get("retried").result_uri)
    assert _objects(clients, resources.results_bucket, prefix) == \
        [prefix + name for name in ("annotated.mp4", "detections.json", "redacted.mp4")]
    assert set(result["outputs"]) == {"annotated", "redacted"}
    assert np.all([t["frames"] >= 1 for t in result["tracks"]])


@pytest.mark.parametrize("field, value, error", [
    ("outputs", "annotated", "outputs must be a list"),
    ("outputs", ["gif"], "outputs: unknown output 'gif'"),
    ("outputs", ["redacted", "redacted"], "outputs must not repeat"),
    ("redact", [], "redact must name at least one label"),
    ("redact", [3], "redact must be a list"),
])
def test_bad_outputs_and_redact_are_refused_naming_the_field(field, value, error):
    with pytest.raises(InvalidMessage, match=error):
        parse_request({"video": "s3://bucket/v.mp4", field: value}, "j")


def test_outputs_and_redact_are_kept_in_the_request():
    request = parse_request({"video": "s3://bucket/v.mp4", "outputs": ["redacted"], "redact": ["face", "person"]}, "j")
    assert (request.options.outputs, request.options.redact) == (("redacted",), ("face", "person"))
    assert parse_request(request.to_message(), "j") == request
    plain = parse_request({"video": "s3://bucket/v.mp4"}, "j")
    assert (plain.options.outputs, plain.options.redact) == ((), ("face",))
    assert "outputs" not in plain.to_message() and "redact" not in plain.to_message()
