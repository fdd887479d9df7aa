"""Hostile and broken input: damaged videos, stalled decoders, crafted messages, leaks of secrets or files."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys
import threading

import numpy as np
import pytest

from detectors.stub import StubDetector
from support.helpers import read_result, send, upload
from worker.errors import VideoUnreadable
from worker.aws.jobs import JobStore
from worker.logs import configure_logging, redact
from worker.options import PipelineConfig
from worker.analysis.pipeline import analyze
from worker.analysis.results import ResultWriter
from worker.workdir import TEMP_PREFIX, private_workdir, remove_stale_workdirs
from worker.analysis.video import VideoInfo


def damaged_copy(source, target, start: float, end: float, seed: int = 0) -> str:
    """The file with random bytes written over the share [start, end) of it."""
    data = bytearray(source.read_bytes())
    a, b = int(len(data) * start), int(len(data) * end)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return str(target)


def test_a_video_with_a_damaged_middle_succeeds_with_the_frames_that_decode(
        clients, resources, make_worker, data_dir, tmp_path):
    # given the hamilton clip (275 frames) with random bytes over 40-45% of the file
    damaged = damaged_copy(data_dir / "short_hamilton_clip.mp4", tmp_path / "damaged.mp4", 0.40, 0.45)
    video = upload(clients, resources.results_bucket, "in/damaged.mp4", damaged)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "damaged"})
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "after-damaged"})

    make_worker().run(drain=True)

    # then the job succeeded with the frames that decode, counting the ones lost in the middle
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    record = jobs.get("damaged")
    assert record.status == "SUCCEEDED"
    facts = read_result(clients, record.result_uri)["video"]
    assert 200 < facts["frame_count"] < 275
    assert facts["frame_count"] + facts["frames_skipped"] == pytest.approx(275, abs=3)
    assert facts["fps"] == pytest.approx(29.97, abs=0.5)
    # and the worker went on to the next job
    assert jobs.get("after-damaged").status == "SUCCEEDED"


class StalledReader:
    """A reader whose decoder never returns, as FFmpeg can on a crafted file."""

    info = VideoInfo(width=64, height=48, fps=25.0, frame_count=10, codec="h264")

    def __init__(self):
        self.released = False

    def frames(self, sample_every):
        threading.Event().wait()  # blocks forever, like a stuck C call
        yield  # pragma: no cover

    def abandon(self):
        self.released = True


def test_a_stalled_decoder_fails_the_job_instead_of_hanging_it(tmp_path):
    reader = StalledReader()
    with ResultWriter(["object"], str(tmp_path)) as writer, pytest.raises(VideoUnreadable, match="stalled"):
        analyze(reader, [StubDetector()], writer, config=PipelineConfig(decode_stall_s=0.5, decoder_exit_s=0.2))
    assert reader.released  # the capture is left to the stuck thread, not freed under it


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "a/b", "tab\there", "x" * 65, "nul\x00"])
def test_job_ids_that_could_escape_a_prefix_are_invalid(clients, resources, make_worker, small_video, job_id):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    message_id = send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": job_id})

    make_worker().run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get(message_id)  # recorded under the message id
    assert record.status == "FAILED" and record.error["code"] == "INVALID_MESSAGE"
    assert "job_id" in record.error["message"]
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=resources.results_bucket)["Contents"]]
    assert keys == ["in/small.mp4"]


@pytest.mark.parametrize("body, reason", [
    (lambda video: json.dumps({"video": video, "tag": "x" * 200, "detectors": ["stub"] * 200})[:-1]
     + ', "pad": "' + "p" * 17_000 + '"}', "larger than"),
    (lambda video: json.dumps({"video": video})[:-1] + ', "deep": ' + "[" * 3000 + "]" * 3000 + "}", "nested"),
])
def test_oversized_and_deeply_nested_messages_are_invalid(clients, resources, make_worker, small_video, body, reason):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    message_id = clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=body(video))["MessageId"]

    make_worker().run(drain=True)

    error = JobStore(clients.dynamodb, resources.jobs_table).get(message_id).error
    assert error["code"] == "INVALID_MESSAGE" and reason in error["message"]


def test_work_directories_are_private_and_those_of_dead_workers_are_removed(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with private_workdir() as workdir:
        assert stat.S_IMODE(os.stat(workdir).st_mode) == 0o700
        assert os.path.basename(workdir).startswith(f"{TEMP_PREFIX}{os.getpid()}-")
        # a dead worker's directory (its process is gone) and a live one's (our parent's)
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        stale = tmp_path / f"{TEMP_PREFIX}{dead.stdout.strip()}-abc123"
        live = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-def456"
        stale.mkdir()
        live.mkdir()
        (stale / "video.mp4").write_bytes(b"left behind by a SIGKILL")
        # the work directory of the process that is starting is its own leftover (a restarted container)
        assert sorted(remove_stale_workdirs()) == sorted([stale.name, os.path.basename(workdir)])
    assert not stale.exists() and live.exists()


def test_logs_never_carry_credentials_or_presigned_urls():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    try:
        presigned = ("https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                     "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261122%2Fus-east-1%2Fs3"
                     "&X-Amz-Signature=0123456789abcdef&X-Amz-Security-Token=IQoJb3JpZ2luX2Vj")
        logging.getLogger("test").error("fetch failed for %s", presigned,
                                        extra={"config": {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfi"}})
    finally:
        root.handlers[:], root.level = saved
    line = stream.getvalue()
    json.loads(line)
    for secret in ("AKIAIOSFODNN7EXAMPLE", "0123456789abcdef", "IQoJb3JpZ2luX2Vj", "wJalrXUtnFEMI"):
        assert secret not in line
    assert "X-Amz-Signature=[redacted]" in line


@pytest.mark.parametrize("text, secret", [
    # a presigned URL carried, percent-encoded, inside another URL's query
    ("next=https%3A%2F%2Fb.s3.amazonaws.com%2Fv.mp4%3FX-Amz-Signature%3Dfeedc0ffee1234%26X-Amz-Date%3D2026",
     "feedc0ffee1234"),
    ("X-Amz-Security-Token%3dIQoJb3JpZ2luX2Vj%26x=1", "IQoJb3JpZ2luX2Vj"),
    # credentials files and SDK configs without the aws_ prefix
    ("secret_access_key: wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI"),
    ("session_token = FwoGZXIvYXdzEBYaDH", "FwoGZXIvYXdzEBYaDH"),
])
def test_log_redaction_catches_encoded_signatures_and_unprefixed_keys(text, secret):
    line = redact(text)
    assert secret not in line and "[redacted]" in line


# A worker whose detector never returns, so that it can be killed mid-job, deterministically.
STUCK_WORKER = """
import threading
from detectors.stub import StubDetector
from worker.aws.clients import AwsClients
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.worker import Worker

class Stuck(StubDetector):
    def detect(self, frames):
        print("detecting", flush=True)
        threading.Event().wait()

settings = Settings.load()
Worker(settings, AwsClients.create(settings.region), pool=DetectorPool(build=lambda name, **o: Stuck())).run(drain=True)
"""


def test_a_worker_killed_mid_job_leaves_no_file_outside_its_work_directory(clients, resources, small_video, tmp_path):
    # given a worker, with its own temporary root, killed while a job is being analysed
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "killed-mid-job"})
    victim = subprocess.Popen([sys.executable, "-c", STUCK_WORKER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TMPDIR": str(temp_root)})
    try:
        assert victim.stdout.readline().strip() == "detecting"
    finally:
        victim.kill()
        victim.wait()

    # when the next worker starts and removes what dead workers left
    remove_stale_workdirs(str(temp_root))

    # then nothing the job wrote is left
    assert list(temp_root.iterdir()) == []


def test_an_hls_playlist_naming_a_local_file_is_unreadable(clients, resources, make_worker, small_video):
    # given a playlist in an allowed bucket whose one segment is a file on the worker's disk
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\nfile://{small_video}\n#EXT-X-ENDLIST\n"
    clients.s3.put_object(Bucket=resources.results_bucket, Key="in/list.m3u8", Body=playlist.encode())
    send(clients, resources, {"video": f"s3://{resources.results_bucket}/in/list.m3u8", "detectors": ["stub"],
                              "job_id": "playlist"})

    make_worker(allowed_buckets=frozenset([resources.results_bucket])).run(drain=True)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("playlist")
    assert (record.status, record.error["code"]) == ("FAILED", "VIDEO_UNREADABLE")
