"""One knob at a time against the shipped settings: TensorFlow's thread pools, OpenCV's and FFmpeg's
threads, the pipeline's queue depth, and the human detector's batch size.

Each variant is `videoscan analyze` (human) on the 2x copy of vtest.avi (682 frames) run through
bench/analyze_variant.py with one setting moved; "shipped" runs it with none. Whole processes,
interleaved, medians; the CPU seconds show what a variant costs when the cores are shared.

    .venv/bin/python bench/tuning.py [--quick] [--rounds N]
"""

from __future__ import annotations

import pathlib
import tempfile

from common import VTEST, arguments, bench_script, footer, header, interleaved, median, run_process, video_copy

VARIANTS = {
    "shipped": [],
    "intra-op 1": ["--intra", 1],
    "intra-op 2": ["--intra", 2],
    "inter-op 1": ["--inter", 1],
    "inter-op 2": ["--inter", 2],
    "FFmpeg threads 1": ["--decode-threads", 1],
    "cv2 threads 1": ["--cv2-threads", 1],
    "queue depth 1": ["--queue-depth", 1],
    "queue depth 8": ["--queue-depth", 8],
    "human batch 4": ["--human-batch", 4],
    "human batch 16": ["--human-batch", 16],
}


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("tuning: one setting at a time", args)
    video = video_copy(VTEST, copies=1 if args.quick else 2)
    with tempfile.TemporaryDirectory() as workdir:
        result = pathlib.Path(workdir) / "detections.json"
        runs = interleaved({
            name: (lambda knob=knob: run_process(bench_script(
                "analyze_variant.py", *knob, "--", video, "-o", result, "--detectors", "human")))
            for name, knob in VARIANTS.items()
        }, args.rounds)
    shipped = median([r.wall_s for r in runs["shipped"]])
    print(f"\n{video.name}; medians of {args.rounds}; speed relative to shipped (above 1: faster)")
    print(f"{'':18} {'wall s':>7} {'CPU s':>7} {'peak MB':>8} {'speed':>6}")
    for name in VARIANTS:
        wall = median([r.wall_s for r in runs[name]])
        print(f"{name:18} {wall:7.2f} {median([r.cpu_s for r in runs[name]]):7.2f} "
              f"{median([r.peak_rss_mb for r in runs[name]]):8.0f} {shipped / wall:6.2f}")
    footer()


if __name__ == "__main__":
    main()
