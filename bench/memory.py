"""Peak resident memory of `videoscan analyze` (human) on vtest.avi and on a copy 8 times longer:
memory must not grow with the length of the video.

Both files are OpenCV re-encodings (MPEG-4 Part 2), so only their length differs.

    .venv/bin/python bench/memory.py [--quick] [--rounds N]
"""

from __future__ import annotations

import pathlib
import tempfile

from common import VTEST, arguments, footer, header, interleaved, median, run_process, verdict, video_copy, videoscan

TARGET = 1.1  # peak RSS on the long video against the short one


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("memory: peak RSS of videoscan analyze against video length", args)
    copies = 2 if args.quick else 8
    videos = {"1x": video_copy(VTEST), f"{copies}x": video_copy(VTEST, copies=copies)}
    with tempfile.TemporaryDirectory() as workdir:
        result = pathlib.Path(workdir) / "detections.json"
        runs = interleaved(
            {name: (lambda video=video: run_process(videoscan("analyze", video, "-o", result, "--detectors", "human")))
             for name, video in videos.items()},
            args.rounds,
        )
    peaks = {name: median([run.peak_rss_mb for run in runs[name]]) for name in videos}
    for name, video in videos.items():
        print(f"{name:>3} ({video.name}): peak RSS {peaks[name]:.0f} MB (median of {args.rounds}; "
              f"runs {', '.join(f'{run.peak_rss_mb:.0f}' for run in runs[name])})")
    print(verdict(f"peak RSS {copies}x / 1x", peaks[f"{copies}x"] / peaks["1x"], TARGET, at_least=False))
    footer()


if __name__ == "__main__":
    main()
