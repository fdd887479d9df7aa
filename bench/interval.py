"""`detect_every` 5 against 1: speed, and how many of the every-frame detections the interval run keeps.

Persons on vtest.avi (341 frames) and on its 4x copy (1364 frames: the issue's targets are judged on
it, where the 4-7 s of startup weigh less), faces on short_hamilton_clip.mp4 (275 frames); whole
processes.

Agreement: the share of the every-frame run's boxes matched by the interval run's boxes on the same
frame (IoU >= 0.5, same label, one to one). Precision, the other way round: the share of the interval
run's boxes matched by the every-frame run's. Both also for a variant whose tracker ignores the
detector's weak detections (bench/analyze_variant.py --no-weak-detections, run once), and, for scale,
the every-frame detector against itself one frame earlier: how much it flickers.

    .venv/bin/python bench/interval.py [--quick] [--rounds N]
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile

import numpy as np

from common import (HAMILTON, VTEST, arguments, bench_script, data_video, footer, header, interleaved, median,
                    paired_ratio, run_process, verdict, video_copy, videoscan)
from worker.analysis.association import assign, iou_matrix

INTERVAL = 5
MATCH_IOU = 0.5
TARGET_AGREEMENT = 0.85


@dataclasses.dataclass(frozen=True)
class Case:
    detectors: str
    video: pathlib.Path
    first_frame: pathlib.Path
    target_speedup: float


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header(f"interval: detect_every {INTERVAL} against every frame", args)
    cases = [
        Case("human", video_copy(VTEST, frames=100) if args.quick else data_video(VTEST),
             video_copy(VTEST, frames=1), 1.5),
        *([] if args.quick else [Case("human", video_copy(VTEST, copies=4), video_copy(VTEST, frames=1), 1.5)]),
        Case("face", video_copy(HAMILTON, frames=60) if args.quick else data_video(HAMILTON),
             video_copy(HAMILTON, frames=1), 3.0),
    ]
    verdicts = []
    with tempfile.TemporaryDirectory() as workdir:
        for case in cases:
            verdicts += compare(case, args.rounds, pathlib.Path(workdir))
    print("\n".join(verdicts))
    footer()


def compare(case: Case, rounds: int, workdir: pathlib.Path) -> list[str]:
    """Prints the speed and agreement figures of one case; returns its verdicts."""
    results = {every: workdir / f"{case.detectors}-every{every}.json" for every in (1, INTERVAL)}
    without_weak = workdir / f"{case.detectors}-without-weak.json"

    def analyze(video: pathlib.Path, every: int):
        return run_process(videoscan("analyze", video, "-o", results[every], "--detectors", case.detectors,
                                     "--detect-every", every))

    print(f"\n-- {case.detectors} on {case.video.name}")
    runs = interleaved({
        "startup": lambda: analyze(case.first_frame, 1),
        "detect_every 1": lambda: analyze(case.video, 1),
        f"detect_every {INTERVAL}": lambda: analyze(case.video, INTERVAL),
    }, rounds)
    run_process(bench_script("analyze_variant.py", "--no-weak-detections", "--", case.video, "-o", without_weak,
                             "--detectors", case.detectors, "--detect-every", INTERVAL))

    every_frame = _load(results[1])
    frames = every_frame["video"]["frame_count"]
    startup = median([r.wall_s for r in runs["startup"]])
    walls = {every: [r.wall_s for r in runs[f"detect_every {every}"]] for every in results}
    print(f"{frames} frames; medians of {rounds}; startup {startup:.2f} s")
    for every, wall in walls.items():
        print(f"detect_every {every}: {median(wall):6.2f} s, {frames / median(wall):6.1f} frames/s, "
              f"{(frames - 1) / (median(wall) - startup):6.1f} frames/s after startup")
    speedup = paired_ratio(walls[1], walls[INTERVAL])
    print(f"speed-up: {speedup:.2f}x whole process (median of the rounds' ratios), "
          f"{(median(walls[1]) - startup) / (median(walls[INTERVAL]) - startup):.2f}x after startup")
    shares = {}
    variants = ((f"detect_every {INTERVAL}", results[INTERVAL]), ("  tracker without weak detections", without_weak))
    for name, path in variants:
        shares[name] = agreement(every_frame, _load(path))
        print(f"{name}: agreement {shares[name][0]:.3f}, precision {shares[name][1]:.3f}")
    flicker = agreement(every_frame, _shifted(every_frame))[0]
    print(f"the every-frame detector against itself one frame earlier: agreement {flicker:.3f}")
    name = f"{case.detectors} on {case.video.name}"
    return [
        verdict(f"{name}: detect_every {INTERVAL} speed-up, whole process", speedup, case.target_speedup),
        verdict(f"{name}: agreement at detect_every {INTERVAL}", shares[f"detect_every {INTERVAL}"][0],
                TARGET_AGREEMENT, unit=""),
    ]


def agreement(reference: dict, candidate: dict) -> tuple[float, float]:
    """(share of the reference's boxes matched by the candidate's, share of the candidate's matched),
    frame by frame, label by label, one to one at IoU >= MATCH_IOU."""
    matched = total_reference = total_candidate = 0
    candidate_frames = {frame["index"]: frame["detections"] for frame in candidate["frames"]}
    for frame in reference["frames"]:
        theirs = candidate_frames.get(frame["index"], [])
        for label in {d["label"] for d in frame["detections"] + theirs}:
            a, b = _boxes(frame["detections"], label), _boxes(theirs, label)
            matched += len(assign(iou_matrix(a, b), MATCH_IOU))
            total_reference, total_candidate = total_reference + len(a), total_candidate + len(b)
    return matched / max(total_reference, 1), matched / max(total_candidate, 1)


def _shifted(result: dict) -> dict:
    """Each frame with the detections of the frame before it."""
    frames = result["frames"]
    return {"frames": [{**frame, "detections": before["detections"]} for before, frame in zip(frames, frames[1:])]}


def _boxes(detections: list[dict], label: str) -> np.ndarray:
    """(n, 4) centre/size boxes, as worker.analysis.association's IoU takes them."""
    boxes = [d["box"] for d in detections if d["label"] == label]
    return np.array([[b["left"] + b["width"] / 2, b["top"] + b["height"] / 2, b["width"], b["height"]]
                     for b in boxes]).reshape(-1, 4)


def _load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


if __name__ == "__main__":
    main()
