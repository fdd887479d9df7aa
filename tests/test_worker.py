"""The worker against moto's server over HTTP: a job's whole path, its record, result and event."""

from __future__ import annotations

from detectors.stub import StubDetector
from support.helpers import queue_depth, read_result, receive_events, send, subscribe_queue, upload
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.aws.jobs import JobStore
from worker.outcome import Outcome, Reason
from worker.worker import Worker


def test_a_message_from_any_sqs_client_becomes_a_succeeded_job(clients, resources, make_worker, small_video):
    # given a video in S3 and a bare contract message sent with plain boto3 (no record yet)
    events_url = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    message_id = send(clients, resources, {"video": video, "detectors": ["stub"], "tag": "cam-1"})

    # when a worker drains the queue
    handled = make_worker().run(drain=True)

    # then the job, named after the message, succeeded with a complete result
    assert handled == 1
    record = JobStore(clients.dynamodb, resources.jobs_table).get(message_id)
    assert record.status == "SUCCEEDED"
    assert record.attempts == 1
    assert record.tag == "cam-1"
    assert record.progress == {"frames_done": 24, "frames_total": 24}
    assert record.result_uri == f"s3://{resources.results_bucket}/results/{message_id}/detections.json"
    result = read_result(clients, record.result_uri)
    assert result["schema"] == "videoscan/detections@1"
    assert result["job_id"] == message_id and result["tag"] == "cam-1"
    assert result["video"]["frame_count"] == 24 and result["video"]["width"] == 160
    assert [f["index"] for f in result["frames"]] == list(range(24))
    timestamps = [f["timestamp_ms"] for f in result["frames"]]
    assert timestamps == sorted(set(timestamps))
    assert result["summary"]["frames_analyzed"] == 24
    # the stub's confidence is the frame's brightness, which rises through the video
    confidences = [f["detections"][0]["confidence"] for f in result["frames"]]
    assert confidences[-1] > confidences[0]
    # and the queue and its dead-letter queue are empty, and one event was published
    assert queue_depth(clients, resources.queue_url) == 0
    assert queue_depth(clients, resources.dead_letter_queue_url) == 0
    assert receive_events(clients, events_url) == [{
        "job_id": message_id, "status": "SUCCEEDED", "tag": "cam-1", "video": video,
        "result_uri": record.result_uri, "error": None,
    }]


def test_sample_every_and_output_prefix_are_honoured(clients, resources, make_worker, small_video):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "sample_every": 5, "job_id": "sampled-1",
                              "output": f"s3://{resources.results_bucket}/custom/place"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("sampled-1")
    assert record.result_uri == f"s3://{resources.results_bucket}/custom/place/detections.json"
    result = read_result(clients, record.result_uri)
    assert [f["index"] for f in result["frames"]] == [0, 5, 10, 15, 20]
    assert result["sample_every"] == 5
    assert result["video"]["frame_count"] == 24  # every frame is decoded, only sampled ones analysed


class ExplodingDetector(StubDetector):
    """Fails like a bug would, but only for jobs that keep the default threshold."""

    def detect(self, frames):
        if self.min_confidence == 0.0:
            raise RuntimeError("kaboom")
        return super().detect(frames)


def test_an_unexpected_error_is_recorded_and_left_for_redelivery(clients, resources, settings, small_video):
    # given a job that hits a bug, followed by a good job
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "buggy"})
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "fine", "min_confidence": 0.01})
    worker = Worker(settings, clients, pool=DetectorPool(build=lambda name, **options: ExplodingDetector(**options)))

    # when a worker handles both messages
    outcomes = [worker.handle(worker.queue.receive(1, settings.visibility_timeout)) for _ in range(2)]

    # then the buggy job is back to QUEUED with its error noted, and its message not deleted
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    assert sorted(outcomes, key=lambda outcome: outcome.reason.value) == [
        Outcome.leave(Reason.RETRY),  # redelivered after its visibility timeout
        Outcome.delete(Reason.SUCCEEDED),
    ]
    buggy = jobs.get("buggy")
    assert buggy.status == "QUEUED" and buggy.attempts == 1
    assert buggy.last_error == "RuntimeError: kaboom"
    assert jobs.get("fine").status == "SUCCEEDED"
    assert queue_depth(clients, resources.queue_url) == 1  # in flight until its visibility timeout


class CountingDetector(StubDetector):
    """The stub, counting the frames it is asked to prepare and to detect in."""

    def __init__(self, **options):
        super().__init__(**options)
        self.prepared = self.detected = 0

    def prepare(self, frame_bgr):
        self.prepared += 1
        return super().prepare(frame_bgr)

    def detect(self, frames):
        self.detected += len(frames)
        return super().detect(frames)


def test_detect_every_runs_the_detector_on_every_nth_frame_and_tracks_between(clients, resources, settings, small_video):
    # given a job that asks for detection on every 4th of the 24 frames
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "detect_every": 4, "job_id": "interval"})
    counting = CountingDetector()

    Worker(settings, clients, pool=DetectorPool(build=lambda name, **options: counting)).run(drain=True)

    # then the detector saw 6 frames; the tracker carried the box, under one id, onto the 18 others
    result = read_result(clients, JobStore(clients.dynamodb, resources.jobs_table).get("interval").result_uri)
    assert (counting.prepared, counting.detected) == (6, 6)
    assert result["detect_every"] == 4
    sources = [f["detections"][0]["source"] for f in result["frames"]]
    assert sources == ["detector" if i % 4 == 0 else "tracker" for i in range(24)]
    assert {d["track_id"] for f in result["frames"] for d in f["detections"]} == {1}
    assert result["summary"]["tracks"] == {"object": 1}
    assert result["summary"]["counts"] == {"object": 24}


def test_an_aws_failure_while_handling_a_message_leaves_it_and_the_worker_goes_on(clients, resources, small_video):
    # given a worker whose jobs table does not exist (DynamoDB answers every write with an error)
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    for job_id in ("first", "second"):
        send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": job_id})
    worker = Worker(Settings.load(jobs_table="videoscan-no-such-table"), clients, pool=DetectorPool())

    # when it drains the queue, it handles both messages without dying
    assert worker.run(drain=True) == 2

    # and leaves both for redelivery
    assert queue_depth(clients, resources.queue_url) == 2


def test_a_video_whose_key_has_spaces_is_analysed(clients, resources, make_worker, small_video):
    video = upload(clients, resources.results_bucket, "in/camera 7/clip 1.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "spaced"})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("spaced")
    assert record.status == "SUCCEEDED", record.error
    assert read_result(clients, record.result_uri)["video"]["uri"] == video
