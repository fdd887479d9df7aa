"""Frames per second of `videoscan analyze` against the seed design (bench/reference_loop.py), as whole
processes, model loading included.

Persons on a 4x copy of vtest.avi (1364 frames). Faces, and both detectors, on short_hamilton_clip.mp4
(275 frames, 640x360) instead: MTCNN takes 0.1-0.7 s a frame on this CPU, so 4x vtest would take
15 minutes a run. Startup (interpreter, TensorFlow, model loading, the first call) is measured on a
one-frame copy of each video and also reported apart.

    .venv/bin/python bench/throughput.py [--quick] [--rounds N]
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import tempfile

from common import (HAMILTON, VTEST, Run, arguments, bench_script, data_video, footer, header, interleaved, median,
                    paired_ratio, run_process, verdict, video_copy, videoscan)

TARGET = 1.2  # analyze (human, every frame) against the reference loop, whole process


@dataclasses.dataclass(frozen=True)
class Case:
    detectors: str
    video: pathlib.Path
    first_frame: pathlib.Path


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("throughput: videoscan analyze against the seed's sequential loop", args)
    vtest = video_copy(VTEST, copies=1 if args.quick else 4)
    hamilton = video_copy(HAMILTON, frames=60) if args.quick else data_video(HAMILTON)
    cases = [
        Case("human", vtest, video_copy(VTEST, frames=1)),
        Case("face", hamilton, video_copy(HAMILTON, frames=1)),
        Case("human,face", hamilton, video_copy(HAMILTON, frames=1)),
    ]
    verdicts = []
    with tempfile.TemporaryDirectory() as workdir:
        for case in cases:
            ratio = compare(case, args.rounds, pathlib.Path(workdir))
            if case.detectors == "human":
                verdicts.append(verdict("analyze (human, every frame) / reference loop, whole process", ratio, TARGET))
    print("\n".join(verdicts))
    footer()


def compare(case: Case, rounds: int, workdir: pathlib.Path) -> float:
    """Prints both designs' figures on one case; returns the whole-process speed ratio."""
    result = workdir / "detections.json"

    def analyze(video: pathlib.Path) -> Run:
        return run_process(videoscan("analyze", video, "-o", result, "--detectors", case.detectors))

    def reference(video: pathlib.Path) -> Run:
        return run_process(bench_script("reference_loop.py", video, "--detectors", case.detectors))

    print(f"\n-- {case.detectors} on {case.video.name}")
    runs = interleaved({
        "analyze startup": lambda: analyze(case.first_frame),
        "analyze": lambda: analyze(case.video),
        "reference startup": lambda: reference(case.first_frame),
        "reference": lambda: reference(case.video),
    }, rounds)
    frames = json.loads(result.read_text())["video"]["frame_count"]
    print(f"{frames} frames; medians of {rounds}")
    print(f"{'':10} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'frames/s':>9} {'startup s':>10} "
          f"{'frames/s after startup':>23}")
    after_startup = {}
    for name in ("analyze", "reference"):
        wall, startup = median([r.wall_s for r in runs[name]]), median([r.wall_s for r in runs[f"{name} startup"]])
        after_startup[name] = (frames - 1) / (wall - startup)
        print(f"{name:10} {wall:7.2f} {median([r.cpu_s for r in runs[name]]):7.2f} "
              f"{median([r.peak_rss_mb for r in runs[name]]):8.0f} {frames / wall:9.1f} {startup:10.2f} "
              f"{after_startup[name]:23.1f}")
    walls = {name: [r.wall_s for r in runs[name]] for name in ("analyze", "reference")}
    whole = paired_ratio(walls["reference"], walls["analyze"])
    print(f"analyze / reference speed: {whole:.2f}x whole process (median of the rounds' ratios; "
          f"{median(walls['reference']) / median(walls['analyze']):.2f}x from the medians), "
          f"{after_startup['analyze'] / after_startup['reference']:.2f}x after startup")
    return whole


if __name__ == "__main__":
    main()
