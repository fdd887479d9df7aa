"""`videoscan analyze` with one experimental setting changed, for bench/tuning.py and bench/interval.py.

The pipeline's settings and the detectors' batch sizes are passed to the real command; TensorFlow's
thread pools are set from outside, before it runs. What is measured is the real command with only
that knob moved:

    python bench/analyze_variant.py [--intra N] [--inter N] [--cv2-threads N] [--decode-threads N]
        [--queue-depth N] [--human-batch N] [--face-batch N] [--no-weak-detections]
        -- VIDEO -o OUT [analyze options]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import cv2

# This checkout's code, not whichever one the virtual environment's editable install points at.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intra", type=int, help="TensorFlow intra-op threads")
    parser.add_argument("--inter", type=int, help="TensorFlow inter-op threads")
    parser.add_argument("--cv2-threads", type=int, help="cv2.setNumThreads (colour conversion, resizing)")
    parser.add_argument("--decode-threads", type=int, help="FFmpeg's decoding threads (CAP_PROP_N_THREADS)")
    parser.add_argument("--queue-depth", type=int, help="batches between the decode thread and inference")
    parser.add_argument("--human-batch", type=int, help="the human detector's batch size")
    parser.add_argument("--face-batch", type=int, help="the face detector's batch size")
    parser.add_argument("--no-weak-detections", action="store_true",
                        help="the tracker ignores the detections scored under the reporting threshold")
    args, analyze_args = parser.parse_known_args()
    if analyze_args[:1] == ["--"]:
        analyze_args = analyze_args[1:]

    if args.intra is not None or args.inter is not None:
        _set_tensorflow_threads(args.intra, args.inter)
    if args.cv2_threads is not None:
        cv2.setNumThreads(args.cv2_threads)
    from worker import cli, commands
    from worker.config import Settings
    from worker.logs import configure_logging
    from worker.options import PipelineConfig

    tuned = {"decode_threads": args.decode_threads, "queue_depth": args.queue_depth}
    pipeline = PipelineConfig(**{k: v for k, v in tuned.items() if v is not None},
                              weak_detections=not args.no_weak_detections)
    batch_sizes = {name: size for name, size in (("human", args.human_batch), ("face", args.face_batch)) if size}
    settings = Settings.load()
    configure_logging(settings.log_format, settings.log_level)
    return commands.cmd_analyze(cli.build_parser().parse_args(["analyze", *analyze_args]), settings, pipeline,
                           _build_with_batch_sizes(batch_sizes))


def _set_tensorflow_threads(intra: int | None, inter: int | None) -> None:
    """Replaces the project's choice of thread pools (detectors.tf_runtime.thread_pools)."""
    from detectors import tf_runtime

    chosen = tf_runtime.thread_pools

    def thread_pools(cores: int) -> tuple[int, int]:
        default_intra, default_inter = chosen(cores)
        return (default_intra if intra is None else intra), (default_inter if inter is None else inter)

    tf_runtime.thread_pools = thread_pools


def _build_with_batch_sizes(batch_sizes: dict[str, int]):
    """The detectors' factory, with these batch sizes."""
    from detectors import build_detector

    def build(name: str, **options):
        return build_detector(name, **options, **({"batch_size": batch_sizes[name]} if name in batch_sizes else {}))

    return build


if __name__ == "__main__":
    sys.exit(main())
