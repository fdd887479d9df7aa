"""The real models through the whole system: the demo, and analyze agreeing with the queue path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support.contract_checks import assert_contract_result
from support.helpers import MODEL_TOLERANCE, assert_same_detections, read_result, send, upload
from worker.analysis.file import AnalysisJob, analyze_file
from worker.cli import main
from worker.aws.jobs import JobStore
from worker.options import DetectorSpec, JobOptions
from worker.analysis.results import detection_json
from worker.analysis.video import VideoReader

pytestmark = pytest.mark.slow


def test_analyze_and_the_queue_path_give_identical_detections(clients, resources, make_worker, data_dir, tmp_path):
    # given the hamilton clip (faces and people), analysed both ways with the same options
    clip = data_dir / "short_hamilton_clip.mp4"
    local = tmp_path / "local.json"
    assert main(["analyze", str(clip), "-o", str(local), "--detectors", "human,face", "--sample-every", "25"]) == 0
    video = upload(clients, resources.results_bucket, "in/hamilton.mp4", str(clip))
    send(clients, resources, {"video": video, "detectors": ["human", "face"], "sample_every": 25, "job_id": "same"})

    make_worker().run(drain=True)

    # then both documents are contract-valid and their frames are identical, detections and all
    queued = read_result(clients, JobStore(clients.dynamodb, resources.jobs_table).get("same").result_uri)
    analyzed = json.loads(local.read_text())
    for result in (queued, analyzed):
        assert_contract_result(result, sample_every=25)
    # Equal by construction: the same detectors on the same batches, in one process.
    assert queued["frames"] == analyzed["frames"]
    assert queued["summary"] == analyzed["summary"]
    assert queued["summary"]["counts"]["face"] > 0 and queued["summary"]["counts"]["person"] > 0
    assert {k: v for k, v in queued["video"].items() if k != "uri"} == \
        {k: v for k, v in analyzed["video"].items() if k != "uri"}


def test_the_demo_finds_people_and_faces_with_no_aws_account(tmp_path):
    directory = tmp_path / "demo"
    # The demo must not depend on anything the test process set up: a clean environment.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VIDEOSCAN_LOG_FORMAT": "text"}
    demo = subprocess.run([sys.executable, "-m", "worker", "demo", "--directory", str(directory)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "SUCCEEDED" in demo.stdout
    assert (directory / "sample.mp4").stat().st_size > 10_000
    result = json.loads((directory / "detections.json").read_text())
    assert_contract_result(result)
    assert result["video"]["frame_count"] == 48
    assert result["summary"]["max_in_frame"]["person"] >= 2  # the astronaut and the cameraman
    assert result["summary"]["counts"]["face"] >= 24  # the astronaut's face, in most frames
    for name in ("annotated.mp4", "redacted.mp4", "tracks.png"):  # issue: outputs
        assert (directory / name).stat().st_size > 1_000 and str(directory / name) in demo.stdout


def test_with_detect_every_1_the_result_is_the_detector_output_plus_track_fields(human_detector, data_dir, tmp_path):
    # given vtest.avi analysed through the whole pipeline, every 20th frame, detector on each
    human = human_detector
    out = tmp_path / "result.json"
    options = JobOptions((DetectorSpec("human"),), sample_every=20, detect_every=1)
    analyze_file(str(data_dir / "vtest.avi"), str(out), AnalysisJob("j", "vtest.avi", options, "w"), [human])
    frames = json.loads(out.read_text())["frames"]

    # then each frame's detections are the detector's own on that RGB frame, plus track_id and source
    with VideoReader(str(data_dir / "vtest.avi")) as reader:
        images = [frame.image for frame in reader.frames(sample_every=20)]
    expected = [[detection_json(d) for d in found.detections] for found in human.detect([human.prepare(i) for i in images])]
    actual = [[{k: v for k, v in d.items() if k not in ("track_id", "source")} for d in f["detections"]]
              for f in frames]
    # Rounded to 4 decimals in the document: one step more than the models' tolerance.
    assert_same_detections(actual, expected, tolerance=MODEL_TOLERANCE + 1e-4 + 1e-9)
    assert sum(len(f) for f in expected) >= 40
    assert {d["source"] for f in frames for d in f["detections"]} == {"detector"}


def test_faces_tracked_between_detector_frames(make_worker, clients, resources, data_dir):
    # given the hamilton clip with the face detector on every 5th frame
    video = upload(clients, resources.results_bucket, "in/hamilton.mp4", str(data_dir / "short_hamilton_clip.mp4"))
    send(clients, resources, {"video": video, "detectors": ["face"], "detect_every": 5, "sample_every": 2,
                              "job_id": "tracked-faces"})

    make_worker().run(drain=True)

    result = read_result(clients, JobStore(clients.dynamodb, resources.jobs_table).get("tracked-faces").result_uri)
    assert_contract_result(result, sample_every=2)
    frames = result["frames"]
    carried = [d for i, f in enumerate(frames) if i % 5 for d in f["detections"]]
    detected = [d for i, f in enumerate(frames) if i % 5 == 0 for d in f["detections"]]
    assert detected and all(d["source"] == "detector" for d in detected)
    assert carried and all(d["source"] == "tracker" for d in carried)
    # the singer and the pianist keep their ids: far fewer tracks than face detections
    assert result["summary"]["tracks"]["face"] <= len(detected) // 3
