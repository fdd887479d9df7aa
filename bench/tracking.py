"""Tracking accuracy with py-motmetrics on MOT15 sequences, the project's tracker against SORT, and its cost.

Feeds the public detections (`det.txt`, MOTChallenge CSV) of each sequence in `mot15_dev` frame by
frame through `worker.analysis.tracking.MultiTracker`, writes its tracks in the same format, and scores them
against `gt.txt` (MOTA, IDF1, ID switches, false positives, misses with py-motmetrics as the
MOTChallenge benchmark counts them; HOTA from `hota.py`), next to SORT (`sort_baseline.py`) on the same
detections. Two settings: every frame a detector frame, and every fifth frame (the tracker carries
its boxes across the four between with its motion model alone, there are no images; scored on the
detector frames). Detections under --min-confidence are the detector's weak ones (down to half of it,
as the project's detectors give them). Cost: the tracker's own CPU time per detector frame, the carried
frames in between included (CPU time: the machine it runs on may be shared).

    .venv/bin/python bench/tracking.py [--out DIR] [--min-confidence X]
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import tempfile
import time

import motmetrics
import numpy as np
import pandas as pd

from common import DATA_DIR, machine
from hota import hota
from sort_baseline import Sort
from detectors import Box, Detection
from detectors.base import WEAK_SHARE
from worker.analysis.tracking import MultiTracker

SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
WIDTH, HEIGHT, FRAME_MS = 640, 480, 40.0  # both sequences: 640x480 at 25 fps
INTERVALS = (1, 5)
PUBLISHED_SORT = {"TUD-Campus": "MOTA 62.7, 6 switches", "TUD-Stadtmitte": "MOTA 71.7, 10 switches"}


@dataclasses.dataclass(frozen=True)
class Scores:
    mota: float
    idf1: float
    hota: float
    switches: int
    false_positives: int
    misses: int

    def row(self) -> str:
        return (f"MOTA {100 * self.mota:5.1f}  IDF1 {100 * self.idf1:5.1f}  HOTA {100 * self.hota:5.1f}  "
                f"IDs {self.switches:3d}  FP {self.false_positives:4d}  FN {self.misses:4d}")


def score(truth: pd.DataFrame, tracks: pd.DataFrame) -> Scores:
    """`tracks` against `truth`, both as `motmetrics.io.loadtxt` reads MOTChallenge files, on `truth`'s frames."""
    metrics = motmetrics.metrics.create().compute(
        _accumulate(truth, tracks), metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"],
        return_dataframe=False)
    return Scores(metrics["mota"], metrics["idf1"], hota(_frames(truth), _frames(tracks))["hota"],
                  int(metrics["num_switches"]), int(metrics["num_false_positives"]), int(metrics["num_misses"]))


def _accumulate(truth: pd.DataFrame, tracks: pd.DataFrame) -> motmetrics.MOTAccumulator:
    """What `motmetrics.utils.compare_to_groundtruth(truth, tracks, "iou", distth=0.5)` does; that function
    calls `np.asfarray`, gone since NumPy 2, in py-motmetrics 1.4.0."""
    accumulator = motmetrics.MOTAccumulator()
    truth_frames, track_frames = _frames(truth), _frames(tracks)
    empty = (np.zeros(0, int), np.zeros((0, 4)))
    for frame in sorted(set(truth_frames) | set(track_frames)):
        truth_ids, truth_boxes = truth_frames.get(frame, empty)
        track_ids, track_boxes = track_frames.get(frame, empty)
        distance = 1 - motmetrics.distances.boxiou(truth_boxes[:, None], track_boxes[None, :])
        accumulator.update(truth_ids, track_ids, np.where(distance > 0.5, np.nan, distance), frameid=frame)
    return accumulator


def _frames(table: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    return {int(frame): (rows.index.get_level_values("Id").to_numpy(), rows[["X", "Y", "Width", "Height"]].to_numpy())
            for frame, rows in table.groupby(level="FrameId")}


def track_videoscan(detections: np.ndarray, last_frame: int, every: int, min_confidence: float) -> tuple[list, float]:
    """MOT rows of the project's tracker, and its mean CPU time per detector frame in seconds (the frames
    carried in between included)."""
    tracker, rows, spent, detector_frames = MultiTracker(), [], 0.0, 0
    for frame in range(1, last_frame + 1):
        timestamp_ms = (frame - 1) * FRAME_MS
        if (frame - 1) % every == 0:
            found = [_detection(row) for row in detections[detections[:, 0] == frame]]
            reported = [d for d in found if d.confidence >= min_confidence]
            weak = [d for d in found if WEAK_SHARE * min_confidence <= d.confidence < min_confidence]
            started = time.process_time()
            finished = tracker.observe(frame, timestamp_ms, None, reported, weak)
            detector_frames += 1
        else:
            started = time.process_time()
            finished = tracker.carry(frame, timestamp_ms, None)
        spent += time.process_time() - started
        rows += [_row(done.index, d) for done in finished for d in done.detections]
    rows += [_row(done.index, d) for done in tracker.flush() for d in done.detections]
    return rows, spent / detector_frames


def track_sort(detections: np.ndarray, last_frame: int, every: int) -> list:
    """MOT rows of SORT, fed the detector frames only (it has no notion of frames between)."""
    sort, rows = Sort(), []
    for frame in range(1, last_frame + 1, every):
        boxes = detections[detections[:, 0] == frame][:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        rows += [[frame, track_id, x1, y1, x2 - x1, y2 - y1, 1, -1, -1, -1]
                 for track_id, (x1, y1, x2, y2) in sort.update(boxes)]
    return rows


def _detection(row: np.ndarray) -> Detection:
    left, top, width, height, confidence = row[2:7]
    box = Box.from_corners(left / WIDTH, top / HEIGHT, (left + width) / WIDTH, (top + height) / HEIGHT)
    return Detection("person", float(min(confidence, 1.0)), box)


def _row(frame: int, detection: Detection) -> list:
    box = detection.box
    return [frame, detection.track_id, box.left * WIDTH, box.top * HEIGHT, box.width * WIDTH, box.height * HEIGHT,
            detection.confidence, -1, -1, -1]


def mot_table(path: pathlib.Path, rows: list) -> pd.DataFrame:
    np.savetxt(path, np.array(rows, dtype=float).reshape(-1, 10), fmt="%g", delimiter=",")
    return motmetrics.io.loadtxt(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, help="folder for the MOT-format tracks (default: a temporary one)")
    parser.add_argument("--min-confidence", type=float, default=0.5,
                        help="detections under this are weak (det.txt holds scores from 0.5)")
    args = parser.parse_args()
    print(f"== tracking on mot15_dev: videoscan against SORT (min_confidence {args.min_confidence})")
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as temporary:
        out = args.out or pathlib.Path(temporary)
        out.mkdir(parents=True, exist_ok=True)
        for sequence in SEQUENCES:
            folder = DATA_DIR / "mot15_dev" / sequence
            detections = np.loadtxt(folder / "det.txt", delimiter=",").reshape(-1, 10)
            truth = motmetrics.io.loadtxt(str(folder / "gt.txt"))
            last_frame = int(truth.index.get_level_values("FrameId").max())
            print(f"\n-- {sequence} ({last_frame} frames; published SORT: {PUBLISHED_SORT[sequence]})")
            for every in INTERVALS:
                frames = list(range(1, last_frame + 1, every))
                on_frames = truth[truth.index.get_level_values("FrameId").isin(frames)]
                ours, cost = track_videoscan(detections, last_frame, every, args.min_confidence)
                ours = mot_table(out / f"{sequence}-every{every}-videoscan.txt", ours)
                ours = ours[ours.index.get_level_values("FrameId").isin(frames)]
                theirs = mot_table(out / f"{sequence}-every{every}-sort.txt", track_sort(detections, last_frame, every))
                print(f"every {every}: videoscan {score(on_frames, ours).row()}  "
                      f"({1000 * cost:.3f} ms a detector frame)")
                print(f"every {every}: SORT      {score(on_frames, theirs).row()}")
        if args.out:
            print(f"\ntracks written to {out}")


if __name__ == "__main__":
    main()
