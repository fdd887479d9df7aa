"""What the benchmarks share: the test videos and their long copies, whole-process timing, medians,
interleaved rounds, verdicts, and a description of the machine.

Every figure is a whole process (`videoscan ...` or a bench script in a new interpreter), so model
loading and interpreter start are inside it, as a user would see them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
DATA_DIR = pathlib.Path(os.environ.get("VIDEOSCAN_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
# Generated videos are kept between runs (the 8x copy takes a while to encode).
CACHE_DIR = BENCH_DIR / ".cache"
VTEST = "vtest.avi"
HAMILTON = "short_hamilton_clip.mp4"


# -- videos --------------------------------------------------------------------------------------

def data_video(name: str) -> pathlib.Path:
    path = DATA_DIR / name
    if not path.is_file():
        sys.exit(f"{path} not found: set VIDEOSCAN_TEST_DATA to the folder of the shared test videos")
    return path


def video_copy(name: str, copies: int = 1, frames: int | None = None) -> pathlib.Path:
    """The shared video played `copies` times in a row, or only its first `frames` frames, re-encoded
    with OpenCV and cached. MPEG-4 Part 2: the OpenCV wheels carry no H.264 encoder."""
    source = data_video(name)
    suffix = f"first{frames}" if frames else f"x{copies}"
    path = CACHE_DIR / f"{source.stem}-{suffix}.mp4"
    if path.is_file():
        return path
    _make_cache_dir()
    capture = cv2.VideoCapture(str(source))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    # vtest.avi's container claims 50 fps but its timestamps say 25: keep what the pipeline measures.
    fps = 25.0 if name == VTEST else capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    partial = path.with_suffix(".part.mp4")
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(copies):
        capture = cv2.VideoCapture(str(source))  # streamed, not held: one pass of vtest.avi is 0.9 GB of BGR frames
        written = 0
        while written != frames:
            ok, image = capture.read()
            if not ok:
                break
            writer.write(image)
            written += 1
        capture.release()
    writer.release()
    partial.rename(path)  # a run stopped half-way leaves no truncated copy in the cache
    return path


def rgb_frames(path: pathlib.Path, count: int) -> list[np.ndarray]:
    """The first `count` frames of a video, as RGB arrays (what the detectors' `prepare` gives)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def _make_cache_dir() -> None:
    CACHE_DIR.mkdir(exist_ok=True)
    # Ignored by git from the inside, as .pytest_cache does: no generated video can be committed.
    (CACHE_DIR / ".gitignore").write_text("*\n")


# -- processes -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system: less sensitive than wall time to other load on the machine
    peak_rss_mb: float


def run_process(command: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Runs a command to its end; its wall time, CPU time and peak resident memory (its own, from wait4)."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(list(command), stdout=subprocess.DEVNULL, stderr=errors, cwd=REPO_ROOT,
                                   env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        wall_s = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(map(str, command))} exited with {process.returncode}:\n{tail}")
    return Run(wall_s, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)  # Linux reports kilobytes


def videoscan(*args: object) -> list[str]:
    """The real command line, run by this interpreter (the project's virtual environment)."""
    return [sys.executable, "-m", "worker", *map(str, args)]


def bench_script(name: str, *args: object) -> list[str]:
    return [sys.executable, str(BENCH_DIR / name), *map(str, args)]


def interleaved(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, list]:
    """Calls every variant once per round, rotating the order each round.

    The machine is shared: load that comes and goes then falls on every variant alike,
    which running all of A before all of B would not do.
    """
    names = list(variants)
    results: dict[str, list] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name]())
            print(f"  round {round_ + 1}/{rounds} {name}: {_brief(results[name][-1])}", flush=True)
    return results


def _brief(result: object) -> str:
    if isinstance(result, Run):
        return f"{result.wall_s:.2f} s wall, {result.cpu_s:.2f} s CPU, {result.peak_rss_mb:.0f} MB peak"
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.items())


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of the rounds' own ratios. A round's runs ran close together, so a slow spell on the
    shared machine mostly cancels out of its ratio; it does not cancel out of a ratio of medians."""
    return median([n / d for n, d in zip(numerators, denominators)])


# -- reporting -----------------------------------------------------------------------------------

def verdict(name: str, value: float, target: float, at_least: bool = True, unit: str = "x") -> str:
    """One line: the figure, the target, and met, or missed by how much."""
    met = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    outcome = "MET" if met else f"MISSED by {abs(value - target) / target:.1%}"
    return f"{name}: {value:.3f}{unit} (target {sign} {target}{unit}) {outcome}"


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, load average {load()}"


def load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def arguments(description: str, extra: Sequence[tuple[str, type, object, str]] = ()) -> argparse.Namespace:
    """--quick, --rounds, and a bench's own (flag, type, default, help) options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shorter videos: a smoke run, not figures to report")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians need at least 3)")
    for flag, kind, default, explanation in extra:
        parser.add_argument(flag, type=kind, default=default, help=explanation)
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def header(title: str, args: argparse.Namespace) -> None:
    print(f"== {title}{' (quick)' if args.quick else ''}")
    print(f"machine: {machine()}")
    print(f"rounds: {args.rounds}, interleaved", flush=True)


def footer() -> None:
    print(f"load average at the end: {load()}")
