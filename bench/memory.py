"""Resident memory of `videoscan analyze` (human) over a long video: it must not grow with the video.

The video is vtest.avi played 16 times (5,456 frames; OpenCV's MPEG-4 Part 2 re-encoding). RSS is
sampled every second from /proc while the command runs, against the frames done, which the command's
own progress bar reports (its stderr is a terminal here). The figure is the slope of a least-squares
line through the samples after the first WARMUP_FRAMES, in MB per thousand frames, with its standard
error; peak RSS from wait4 is reported too. Each round also runs the ablation: glibc's default malloc
(an arena per thread, up to 8 a core, and a rising mmap threshold) instead of the detectors' tuning.

    .venv/bin/python bench/memory.py [--quick] [--rounds N] [--copies N]
"""

from __future__ import annotations

import os
import pathlib
import pty
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

from common import REPO_ROOT, VTEST, arguments, footer, header, median, verdict, video_copy, videoscan

# Model loading, the first batches and TensorFlow's own caches come before this.
WARMUP_FRAMES = 400
SAMPLE_EVERY_S = 1.0
# At most this much growth per thousand frames: 0.65 GB over a six-hour 30 fps video.
TARGET_MB_PER_KFRAME = 1.0
SHIPPED = "malloc tuned (as shipped)"
VARIANTS = {SHIPPED: {}, "glibc's default malloc": {"GLIBC_TUNABLES": "glibc.malloc.arena_max=0"}}
_PROGRESS = re.compile(rb"\] (\d+)/\d+ frames")


def sample_rss(command: list[str], env: dict[str, str]) -> tuple[list[tuple[int, float]], float]:
    """Runs `command` with a terminal for stderr; (frames done, RSS in MB) every second, and peak RSS in MB."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal, cwd=REPO_ROOT,
                               env={**os.environ, **env})
    os.close(terminal)
    samples: list[tuple[int, float]] = []
    frames, shown, next_sample = 0, b"", time.monotonic()
    while True:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                shown = (shown + os.read(controller, 65536))[-4096:]  # reading also keeps the command from blocking
            except OSError:  # the command closed the terminal: it has ended
                break
            done = _PROGRESS.findall(shown)
            frames = int(done[-1]) if done else frames
        if time.monotonic() >= next_sample:
            next_sample += SAMPLE_EVERY_S
            rss = _rss_mb(process.pid)
            if rss is not None:
                samples.append((frames, rss))
    _, status, usage = os.wait4(process.pid, 0)
    os.close(controller)
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"{' '.join(command)} failed: {shown.decode(errors='replace')[-2000:]}")
    return samples, usage.ru_maxrss / 1024


def _rss_mb(pid: int) -> float | None:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kilobytes = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return int(kilobytes) / 1024 if kilobytes else None  # a zombie has no VmRSS


def slope(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """MB per thousand frames after the warm-up, and its standard error (least squares). Samples at the
    last frame count are left out: by then the command is writing its result and exiting."""
    points = [(frames / 1000, rss) for frames, rss in _steady(samples)]
    if len({x for x, _ in points}) < 3:
        sys.exit("too few samples after the warm-up: use a longer video")
    xs, ys = zip(*points)
    fit = statistics.linear_regression(xs, ys)
    residuals = [y - (fit.slope * x + fit.intercept) for x, y in points]
    spread = sum((x - statistics.fmean(xs)) ** 2 for x in xs)
    error = (sum(r * r for r in residuals) / (len(points) - 2) / spread) ** 0.5
    return fit.slope, error


def _steady(samples: list[tuple[int, float]]) -> list[tuple[int, float]]:
    last = samples[-1][0]
    return [(frames, rss) for frames, rss in samples if WARMUP_FRAMES <= frames < last]


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], extra=[("--copies", int, 16, "times vtest.avi is played in the long video")])
    header("memory: RSS of videoscan analyze over a long video", args)
    copies = 2 if args.quick else args.copies
    video = video_copy(VTEST, copies=copies)
    slopes: dict[str, list[float]] = {name: [] for name in VARIANTS}
    peaks: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as workdir:
        command = videoscan("analyze", video, "-o", pathlib.Path(workdir) / "detections.json", "--detectors", "human")
        for round_ in range(args.rounds):
            names = list(VARIANTS)[round_ % 2:] + list(VARIANTS)[: round_ % 2]  # the order alternates
            for name in names:
                samples, peak = sample_rss(command, VARIANTS[name])
                (mb_per_kframe, error), steady = slope(samples), [rss for _, rss in _steady(samples)]
                slopes[name].append(mb_per_kframe)
                peaks[name].append(peak)
                print(f"  round {round_ + 1}/{args.rounds} {name}: {mb_per_kframe:+.2f} ± {error:.2f} MB per 1000 "
                      f"frames ({len(steady)} samples from frame {WARMUP_FRAMES} to {samples[-1][0]}: "
                      f"{steady[0]:.0f} -> {steady[-1]:.0f} MB); peak {peak:.0f} MB", flush=True)
    for name in VARIANTS:
        print(f"{copies}x ({video.name}), {name}: RSS slope {median(slopes[name]):+.2f} MB per 1000 frames, "
              f"peak RSS {median(peaks[name]):.0f} MB (medians of {args.rounds})")
    print(verdict("RSS growth as shipped (MB per 1000 frames)", median(slopes[SHIPPED]), TARGET_MB_PER_KFRAME,
                  at_least=False, unit=""))
    footer()


if __name__ == "__main__":
    main()
