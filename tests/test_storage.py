"""Fetching videos from S3: the download is the object that was checked, and never more than the limit."""

from __future__ import annotations

import logging
import os

import pytest

from support.helpers import write_test_video
from support.helpers import drain_until, read_result, send, upload
from worker.errors import VideoTooLarge
from worker.aws.jobs import FINAL_STATES, JobStore
from worker.aws.storage import Storage


@pytest.fixture
def replaced_after_check(clients, monkeypatch, tmp_path):
    """Replaces the video with a longer one right after the worker's HeadObject, once."""
    longer = write_test_video(tmp_path / "longer.mp4", frames=96)
    check = Storage._head

    def check_then_replace(self, bucket, key, uri):
        head = check(self, bucket, key, uri)
        if not replaced:
            replaced.append(key)
            clients.s3.upload_file(longer, bucket, key)
        return head

    replaced: list[str] = []
    monkeypatch.setattr(Storage, "_head", check_then_replace)
    return replaced


def test_a_versioned_video_replaced_after_its_check_is_read_as_checked(
        clients, resources, make_worker, small_video, replaced_after_check):
    # given a versioned bucket and a limit that the video meets and its replacement does not
    clients.s3.put_bucket_versioning(Bucket=resources.results_bucket, VersioningConfiguration={"Status": "Enabled"})
    video = upload(clients, resources.results_bucket, "in/v.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "pinned"})

    # when the object is replaced between the worker's check and its download
    make_worker(max_video_bytes=os.path.getsize(small_video)).run(drain=True)

    # then the version that was checked is the one analysed
    assert replaced_after_check == ["in/v.mp4"]
    record = JobStore(clients.dynamodb, resources.jobs_table).get("pinned")
    assert record.status == "SUCCEEDED", record.error
    assert read_result(clients, record.result_uri)["video"]["frame_count"] == 24


def test_an_unversioned_video_replaced_after_its_check_is_checked_again(
        clients, resources, make_worker, small_video, replaced_after_check, caplog):
    # given an unversioned bucket and a limit that the video meets and its replacement does not
    video = upload(clients, resources.results_bucket, "in/u.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "replaced"})
    jobs = JobStore(clients.dynamodb, resources.jobs_table)

    # when the object is replaced between the worker's check and its download
    worker = make_worker(max_video_bytes=os.path.getsize(small_video), visibility_timeout=2)
    with caplog.at_level(logging.INFO):
        drain_until(worker, lambda: getattr(jobs.get("replaced"), "status", None) in FINAL_STATES, timeout_s=30)

    # then the first attempt refuses the changed object, and the next checks it again and refuses its size
    assert replaced_after_check == ["in/u.mp4"]
    assert any("changed between its check and its download" in r.getMessage() + str(getattr(r, "reason", ""))
               for r in caplog.records)
    record = jobs.get("replaced")
    assert (record.status, record.error["code"], record.attempts) == ("FAILED", "VIDEO_TOO_LARGE", 2)
    assert record.result_uri is None


def test_a_download_larger_than_the_limit_is_cut_off(clients, resources, monkeypatch, tmp_path):
    # given a 3 MiB object whose HeadObject answer understates its size
    limit = 1024 * 1024
    clients.s3.put_object(Bucket=resources.results_bucket, Key="in/big.mp4", Body=os.urandom(3 * limit))
    check = Storage._head
    monkeypatch.setattr(Storage, "_head", lambda self, *args: {**check(self, *args), "ContentLength": 1000})

    # when it is fetched under a 1 MiB limit
    with pytest.raises(VideoTooLarge, match="limit"):
        Storage(clients.s3, max_video_bytes=limit).fetch_video(f"s3://{resources.results_bucket}/in/big.mp4",
                                                               str(tmp_path))

    # then the download stopped at the limit
    assert (tmp_path / "video.mp4").stat().st_size <= limit
