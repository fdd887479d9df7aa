"""The pipeline with several batches in inference at once: results in order, errors raised, no thread left."""

from __future__ import annotations

import json
import threading

import pytest

from detectors import Findings
from detectors.stub import StubDetector
from worker.logs import current_job_id
from worker.analysis.pipeline import analyze
from worker.analysis.results import ResultWriter
from worker.analysis.video import VideoReader


class SlowStub(StubDetector):
    """The stub, on three batches at once; the first batch waits until the third has finished, so
    batches finish out of order. `finished` lists the batches in the order they finished."""

    streams = 3

    def __init__(self, fail_on_batch: int | None = None):
        super().__init__(batch_size=2)
        self.calls = 0
        self.finished: list[int] = []
        self.job_ids: set[str | None] = set()
        self.fail_on_batch = fail_on_batch
        self._lock = threading.Lock()
        self._third_finished = threading.Event()

    def detect(self, frames):
        with self._lock:
            call = self.calls
            self.calls += 1
        self.job_ids.add(current_job_id.get())
        if call == self.fail_on_batch:
            raise RuntimeError(f"detect failed on batch {call}")
        if call == 0:
            self._third_finished.wait(timeout=30)
        found = super().detect(frames)
        with self._lock:
            self.finished.append(call)
        if call == 2:
            self._third_finished.set()
        return found


class WeakAfterFirstFrame(StubDetector):
    """The stub's box, reported on the first two detector frames (the tracker confirms it) and only weak
    on the later ones."""

    def __init__(self):
        super().__init__(batch_size=2)
        self.frames_seen = 0

    def detect_batch(self, frames):
        results = []
        for found in super().detect_batch(frames):
            self.frames_seen += 1
            results.append(found if self.frames_seen <= 2 else Findings([], found.detections))
        return results


def frames_of(path, detector, tmp_path, **options) -> list[dict]:
    with ResultWriter([detector.label], str(tmp_path)) as writer:
        analyze(VideoReader(path), [detector], writer, **options)
        writer.write(str(tmp_path / "result.json"), {}, {})
    return json.loads((tmp_path / "result.json").read_text())["frames"]


def detect_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("detect")]


@pytest.mark.parametrize("detect_every", [1, 3])
def test_batches_in_flight_give_the_frames_of_one_batch_at_a_time(small_video, tmp_path, detect_every):
    one_at_a_time = frames_of(small_video, StubDetector(batch_size=2), tmp_path, detect_every=detect_every)

    reordering = SlowStub()
    at_once = frames_of(small_video, reordering, tmp_path, detect_every=detect_every)

    assert reordering.finished.index(2) < reordering.finished.index(0)  # the batches did finish out of order
    assert at_once == one_at_a_time
    assert [frame["index"] for frame in at_once] == list(range(24))


def test_progress_is_reported_per_batch_in_order_and_detect_keeps_the_job_id(small_video, tmp_path):
    detector, progress = SlowStub(), []
    token = current_job_id.set("job-42")
    try:
        frames_of(small_video, detector, tmp_path, on_progress=lambda done, total: progress.append(done))
    finally:
        current_job_id.reset(token)

    assert progress == [*range(2, 25, 2), 24]
    assert detector.job_ids == {"job-42"}


def test_an_error_in_detect_is_raised_and_no_detect_thread_outlives_the_run(small_video, tmp_path):
    detector = SlowStub(fail_on_batch=4)

    with pytest.raises(RuntimeError, match="detect failed on batch 4"):
        frames_of(small_video, detector, tmp_path)

    assert detect_threads() == []
    assert detector.calls <= 4 + SlowStub.streams  # batches after the failure were not all run


def test_a_stop_request_ends_the_run_with_no_detect_thread_left(small_video, tmp_path):
    class Cancelled(Exception):
        pass

    detector, checks = SlowStub(), []

    def check_continue():
        checks.append(len(checks))
        if len(checks) == 4:
            raise Cancelled

    with pytest.raises(Cancelled):
        frames_of(small_video, detector, tmp_path, check_continue=check_continue)

    assert detector.calls <= 3  # the fourth batch was never started
    assert detect_threads() == []


def test_weak_detections_keep_the_track_reported_on_the_frames_between(small_video, tmp_path):
    frames = frames_of(small_video, WeakAfterFirstFrame(), tmp_path, detect_every=3)

    reported = [[(d["track_id"], d["source"]) for d in frame["detections"]] for frame in frames[:9]]
    carried = [(1, "tracker")]
    detected = [(1, "detector")]
    assert reported == [detected, carried, carried, detected, carried, carried, [], carried, carried]
