"""The cost of a job's outputs: the same job with `annotated` and `redacted` asked for against it
without outputs, as whole `videoscan analyze` processes (the worker's own path: analysis, the frames
spooled, one more pass rendering both videos, the result written last), on short_hamilton_clip.mp4
(human + face) and the 4x vtest copy (human); and the peak memory with outputs on vtest 1x against
4x (flat with length).

The ratio is with / without, the median of each round's own ratio.

    .venv/bin/python bench/outputs.py [--quick] [--rounds N]
"""

from __future__ import annotations

import sys
import tempfile

from common import (HAMILTON, VTEST, arguments, data_video, footer, header, interleaved, median, paired_ratio,
                    run_process, verdict, video_copy, videoscan)

TARGET_RATIO = 1.3
TARGET_MEMORY = 1.1
OUTPUTS = "annotated,redacted"


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("outputs: a job with annotated + redacted against the same job without", args)
    copies = 2 if args.quick else 4
    cases = {"hamilton, human+face": (data_video(HAMILTON), "human,face"),
             f"vtest {copies}x, human": (video_copy(VTEST, copies=copies), "human")}
    peaks = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name, (video, detectors) in cases.items():
            plain = videoscan("analyze", video, "-o", f"{workdir}/plain.json", "--detectors", detectors)
            shown = videoscan("analyze", video, "-o", f"{workdir}/shown.json", "--detectors", detectors,
                              "--outputs", OUTPUTS)
            runs = interleaved({"without": lambda: run_process(plain), "with": lambda: run_process(shown)},
                               args.rounds)
            walls = {k: [run.wall_s for run in runs[k]] for k in runs}
            rss = {k: median([run.peak_rss_mb for run in runs[k]]) for k in runs}
            peaks[name] = rss["with"]
            print(f"{name}: without {median(walls['without']):.2f} s, with {median(walls['with']):.2f} s wall "
                  f"(CPU {median([r.cpu_s for r in runs['without']]):.2f} / {median([r.cpu_s for r in runs['with']]):.2f} s), "
                  f"peak RSS {rss['without']:.0f} / {rss['with']:.0f} MB")
            print(verdict(f"  {name}: with / without", paired_ratio(walls["with"], walls["without"]),
                          TARGET_RATIO, at_least=False))
        # The 4x copy's peaks are measured above; the copy played once, encoded alike, beside them.
        shown = videoscan("analyze", video_copy(VTEST), "-o", f"{workdir}/memory-1.json", "--detectors", "human",
                          "--outputs", OUTPUTS)
        once = median([run_process(shown).peak_rss_mb for _ in range(args.rounds)])
        longer = peaks[f"vtest {copies}x, human"]
        print(f"peak RSS with outputs: vtest 1x {once:.0f} MB, {copies}x {longer:.0f} MB (medians of {args.rounds})")
        print(verdict(f"peak RSS with outputs {copies}x / 1x", longer / once, TARGET_MEMORY, at_least=False))
    footer()


if __name__ == "__main__":
    sys.exit(main())
