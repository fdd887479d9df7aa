"""`sample_every` 5 against 1: how much faster `videoscan analyze` (human) covers the 4x copy of
vtest.avi when it analyses one frame in five. Skipped frames are still grabbed (decoded by FFmpeg)
but never converted, prepared or detected, so the gain is below 5x. Whole processes.

    .venv/bin/python bench/sampling.py [--quick] [--rounds N]
"""

from __future__ import annotations

import json
import pathlib
import tempfile

from common import (VTEST, arguments, footer, header, interleaved, median, paired_ratio, run_process, verdict,
                    video_copy, videoscan)

SAMPLE_EVERY = 5
TARGET = 1.6


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header(f"sampling: sample_every {SAMPLE_EVERY} against every frame", args)
    video = video_copy(VTEST, copies=1 if args.quick else 4)
    startup_video = video_copy(VTEST, frames=1)
    with tempfile.TemporaryDirectory() as workdir:
        result = pathlib.Path(workdir) / "detections.json"

        def analyze(path: pathlib.Path, every: int):
            return run_process(videoscan("analyze", path, "-o", result, "--detectors", "human",
                                         "--sample-every", every))

        runs = interleaved({
            "startup": lambda: analyze(startup_video, 1),
            "sample_every 1": lambda: analyze(video, 1),
            f"sample_every {SAMPLE_EVERY}": lambda: analyze(video, SAMPLE_EVERY),
        }, args.rounds)
        frames = json.loads(result.read_text())["video"]["frame_count"]
    startup = median([r.wall_s for r in runs["startup"]])
    walls = {every: [r.wall_s for r in runs[f"sample_every {every}"]] for every in (1, SAMPLE_EVERY)}
    print(f"{video.name}: {frames} frames; medians of {args.rounds}; startup {startup:.2f} s")
    for every, wall in walls.items():
        print(f"sample_every {every}: {median(wall):6.2f} s, {frames / median(wall):6.1f} video frames/s, "
              f"{(frames - 1) / (median(wall) - startup):6.1f} after startup")
    print(f"speed-up after startup: {(median(walls[1]) - startup) / (median(walls[SAMPLE_EVERY]) - startup):.2f}x")
    print(verdict(f"sample_every {SAMPLE_EVERY} speed-up, whole process (median of the rounds' ratios)",
                  paired_ratio(walls[1], walls[SAMPLE_EVERY]), TARGET))
    footer()


if __name__ == "__main__":
    main()
