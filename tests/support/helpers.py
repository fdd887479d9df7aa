"""Helpers for tests that drive moto's server, and the `videoscan` command, the way a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np


def videoscan(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """Runs the real command line in a new process (JSON logs unless `env` says otherwise)."""
    return subprocess.run([sys.executable, "-m", "worker", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "VIDEOSCAN_LOG_FORMAT": "json", **(env or {})})


def send(clients, resources, message: dict) -> str:
    """Sends a contract message with plain boto3, as any SQS client would."""
    return clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(message))["MessageId"]


def upload(clients, bucket: str, key: str, path: str) -> str:
    clients.s3.upload_file(path, bucket, key)
    return f"s3://{bucket}/{key}"


def read_result(clients, uri: str) -> dict:
    bucket, key = uri[5:].split("/", 1)
    obj = clients.s3.get_object(Bucket=bucket, Key=key)
    assert obj["ContentType"] == "application/json"
    return json.loads(obj["Body"].read())


def queue_depth(clients, url: str) -> int:
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def subscribe_queue(clients, topic_arn: str, name: str) -> str:
    """An SQS queue subscribed to the topic (raw delivery), to read completion events."""
    url = clients.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    clients.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return url


def receive_events(clients, url: str) -> list[dict]:
    events = []
    while True:
        messages = clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def read_frames(path, indices) -> list[np.ndarray]:
    """The BGR frames at `indices` of a real video, decoded with OpenCV."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    for index in range(max(indices) + 1):
        ok, frame = capture.read()
        assert ok, f"{path} ended before frame {index}"
        if index in indices:
            frames.append(frame)
    capture.release()
    return frames


# Model outputs agree bit for bit only on the same kernels with the same inputs: oneDNN picks its kernels
# by CPU and by shape, so a batch of another size, or another machine, moves scores in the 7th digit.
MODEL_TOLERANCE = 1e-4


def assert_same_detections(found, expected, tolerance: float = MODEL_TOLERANCE) -> None:
    """Frame by frame, the same number of detections with the same labels, and each matched to the nearest
    one of its label with box, confidence and landmarks within `tolerance` (two close scores may swap
    places, hence the matching). Takes `Detection`s or their JSON; JSON is rounded to 4 decimals, which
    the caller's tolerance must allow for. A frame may also be given as its `Findings` (its reported detections)."""
    found, expected = _reported(found), _reported(expected)
    assert len(found) == len(expected), f"{len(found)} frames, expected {len(expected)}"
    for index, (frame_found, frame_expected) in enumerate(zip(found, expected)):
        labels = sorted(_label(detection) for detection in frame_found)
        assert labels == sorted(_label(detection) for detection in frame_expected), f"frame {index}: other labels"
        unmatched = list(frame_expected)
        for detection in frame_found:
            values = _values(detection)
            distance, nearest = min(
                ((np.abs(values - _values(other)).max(), position) for position, other in enumerate(unmatched)
                 if _label(other) == _label(detection)),
            )
            assert distance <= tolerance, f"frame {index}: {detection} is {distance:.2e} from {unmatched[nearest]}"
            del unmatched[nearest]


def _reported(frames) -> list:
    return [getattr(frame, "detections", frame) for frame in frames]


def _label(detection) -> str:
    return detection["label"] if isinstance(detection, dict) else detection.label


def _values(detection) -> np.ndarray:
    """Box, confidence and landmarks as one vector."""
    if isinstance(detection, dict):
        box, confidence = detection["box"], detection["confidence"]
        corners = [box[name] for name in ("left", "top", "width", "height")]
        landmarks = detection.get("landmarks") or {}
    else:
        box, confidence = detection.box, detection.confidence
        corners = [box.left, box.top, box.width, box.height]
        landmarks = detection.landmarks or {}
    return np.array([*corners, confidence, *(value for name in sorted(landmarks) for value in landmarks[name])])


def wait_for(predicate, timeout_s: float, what: str):
    """Polls remote state (a record, a queue) until `predicate()` is truthy; fails after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def drain_until(worker, done, timeout_s: float) -> None:
    """Runs `worker.run(drain=True)` until `done()`: messages put back with a delay come back between passes."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "jobs did not end in time"
        worker.run(drain=True)


def write_test_video(path, frames: int = 24, size: tuple[int, int] = (160, 120), fps: float = 12.0) -> str:
    """A real MPEG-4 file: a bright square sliding over a dark, slowly brightening background."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        frame = np.full((height, width, 3), 20 + (4 * i) % 200, np.uint8)
        x = int(i * (width - 30) / max(frames - 1, 1))
        frame[height // 3: height // 3 + 30, x: x + 30] = 230
        writer.write(frame)
    writer.release()
    return str(path)
