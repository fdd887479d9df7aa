"""The cost of the outputs: rendering the annotated and the redacted video (one pass, both
videos) against the analysis that made the result, on short_hamilton_clip.mp4 (human + face)
and the 4x vtest copy (human); and render's peak memory on vtest 1x against 4x (flat with length).

Until the worker renders during a job, a job with outputs costs the analysis plus this render;
the ratio is (analyze + render) / analyze, the median of each round's own ratio.

    .venv/bin/python bench/outputs.py [--quick] [--rounds N]
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from common import (HAMILTON, VTEST, arguments, data_video, footer, header, interleaved, median, paired_ratio,
                    run_process, verdict, video_copy, videoscan)

TARGET_RATIO = 1.3
TARGET_MEMORY = 1.1


def render_both(result: str, video: str, workdir: str) -> None:
    """One measured process: both videos in one pass over the source."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    from worker.outputs.render import RenderRequest, render_result

    render_result(result, video, RenderRequest(annotated=f"{workdir}/annotated.mp4", redacted=f"{workdir}/redacted.mp4"))


def main() -> None:
    if sys.argv[1:2] == ["--render"]:
        render_both(*sys.argv[2:5])
        return
    args = arguments(__doc__.split("\n\n")[0])
    header("outputs: rendering annotated + redacted against the analysis", args)
    copies = 2 if args.quick else 4
    cases = {"hamilton, human+face": (data_video(HAMILTON), "human,face"),
             f"vtest {copies}x, human": (video_copy(VTEST, copies=copies), "human")}
    render_peaks = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name, (video, detectors) in cases.items():
            result = f"{workdir}/result.json"
            analyze = videoscan("analyze", video, "-o", result, "--detectors", detectors)
            render = [sys.executable, __file__, "--render", result, str(video), workdir]
            run_process(analyze)  # the result the renders read
            runs = interleaved({"analyze": lambda: run_process(analyze), "render": lambda: run_process(render)},
                               args.rounds)
            walls = {k: [run.wall_s for run in runs[k]] for k in runs}
            totals = [a + r for a, r in zip(walls["analyze"], walls["render"])]
            render_peaks[name] = median([run.peak_rss_mb for run in runs["render"]])
            print(f"{name}: analyze {median(walls['analyze']):.2f} s, render {median(walls['render']):.2f} s wall "
                  f"(CPU {median([r.cpu_s for r in runs['analyze']]):.2f} / {median([r.cpu_s for r in runs['render']]):.2f} s), "
                  f"render peak RSS {render_peaks[name]:.0f} MB")
            print(verdict(f"  {name}: (analyze + render) / analyze", paired_ratio(totals, walls["analyze"]),
                          TARGET_RATIO, at_least=False))
        # The 4x copy's render peaks are measured above; the copy played once, encoded alike, beside them.
        peaks = {copies: render_peaks[f"vtest {copies}x, human"]}
        video, result = video_copy(VTEST), f"{workdir}/memory-1.json"
        run_process(videoscan("analyze", video, "-o", result, "--detectors", "human"))
        render = [sys.executable, __file__, "--render", result, str(video), workdir]
        peaks[1] = median([run_process(render).peak_rss_mb for _ in range(args.rounds)])
        print(f"render peak RSS: vtest 1x {peaks[1]:.0f} MB, {copies}x {peaks[copies]:.0f} MB (medians of {args.rounds})")
        print(verdict(f"render peak RSS {copies}x / 1x", peaks[copies] / peaks[1], TARGET_MEMORY, at_least=False))
    footer()


if __name__ == "__main__":
    main()
