"""`videoscan demo`: the whole system on loopback, with no AWS account.

Starts moto's server on 127.0.0.1, creates the queue (with a dead-letter queue), table,
bucket and topic, uploads a sample video, submits a human+face job, runs a worker
until the queue is empty, and leaves the video, its result, the job's annotated and redacted
videos and a contact sheet of its tracks' thumbnails in a local directory.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import cv2
import numpy as np

from worker.config import Settings
from worker.aws.embedded import EmbeddedAws, create_resources
from worker.aws.queue import JobQueue
from worker.aws.jobs import JobRecord, JobStore
from worker.message import parse_request
from worker.outputs.tracks import Track
from worker.sample_video import write_sample_video
from worker.aws.storage import split_s3_uri
from worker.aws.submit import submit
from worker.worker import Worker

VIDEO_NAME = "sample.mp4"
OUTPUTS = ("annotated", "redacted", "thumbnails")


def run_demo(directory: str) -> int:
    started = time.monotonic()
    os.makedirs(directory, exist_ok=True)
    video_path = os.path.join(directory, VIDEO_NAME)
    frames = write_sample_video(video_path)
    _say(f"made {video_path} ({frames} frames from scikit-image's public-domain photographs)")

    with EmbeddedAws() as stack:
        _say(f"embedded AWS stack (moto) on {stack.endpoint_url}")
        clients = stack.clients()
        resources = create_resources(clients, f"videoscan-demo-{uuid.uuid4().hex[:6]}")
        _say(f"created queue {resources.queue_url} (+ dead-letter queue), table {resources.jobs_table}, "
             f"bucket {resources.results_bucket}, topic {resources.topic_arn.split(':')[-1]}")
        video_uri = f"s3://{resources.results_bucket}/videos/{VIDEO_NAME}"
        clients.s3.upload_file(video_path, resources.results_bucket, f"videos/{VIDEO_NAME}")

        settings = Settings.load({**os.environ, **resources.environment()})
        jobs = JobStore(clients.dynamodb, settings.jobs_table)
        request = parse_request({"video": video_uri, "detectors": ["human", "face"], "tag": "demo",
                                 "outputs": list(OUTPUTS)}, uuid.uuid4().hex)
        submit(request, jobs, JobQueue(clients.sqs, settings.queue_url))
        _say(f"submitted job {request.job_id}: {video_uri}, detectors human+face, outputs {'+'.join(OUTPUTS)}")

        _say("running a worker until the queue is empty (loading the models takes a few seconds)")
        Worker(settings, clients).run(drain=True)

        record = jobs.get(request.job_id)
        if record.status != "SUCCEEDED":
            _say(f"job ended {record.status}: {record.error or record.last_error}")
            return 1
        result_path = os.path.join(directory, "detections.json")
        clients.s3.download_file(*split_s3_uri(record.result_uri), result_path)
        _print_summary(record, result_path, time.monotonic() - started)
        _fetch_outputs(clients.s3, directory, result_path)
    return 0


def _fetch_outputs(s3, directory: str, result_path: str) -> None:
    """The job's videos, downloaded, and a contact sheet made from its tracks' thumbnails."""
    from worker.outputs.sheet import write_sheet

    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)
    for kind, shown in (("annotated", "annotated video"), ("redacted", "redacted video (faces blurred)")):
        path = os.path.join(directory, f"{kind}.mp4")
        s3.download_file(*split_s3_uri(result["outputs"][kind]), path)
        _say(f"{shown}: {path}")
    tracks = [_track_with_thumbnail(s3, entry) for entry in result["tracks"]]
    sheet = os.path.join(directory, "tracks.png")
    write_sheet(sheet, tracks)
    _say(f"contact sheet of {len(tracks)} tracks: {sheet}")


def _track_with_thumbnail(s3, entry: dict) -> Track:
    track = Track(entry["track_id"], entry["label"], entry["first_index"], entry["first_ms"],
                  entry["last_index"], entry["last_ms"], frames=entry["frames"])
    if "thumbnail" in entry:
        bucket, key = split_s3_uri(entry["thumbnail"])
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        track.best_crop = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return track


def _print_summary(record: JobRecord, result_path: str, wall_s: float) -> None:
    with open(result_path, encoding="utf-8") as f:
        result = json.load(f)
    summary, video = result["summary"], result["video"]
    _say("")
    _say(f"job {record.job_id}: {record.status} after {record.attempts} attempt(s)")
    _say(f"video: {video['width']}x{video['height']}, {video['frame_count']} frames, {video['fps']} fps, "
         f"{video['codec']}")
    for detector in result["detectors"]:
        label = detector["label"]
        _say(f"  {detector['name']:>6} ({detector['model']}): {summary['counts'][label]} {label} detections, "
             f"up to {summary['max_in_frame'][label]} in one frame")
    _say(f"result: {record.result_uri} -> {result_path}")
    _say(f"wall time {wall_s:.1f} s")


def _say(text: str) -> None:
    print(text, flush=True)


