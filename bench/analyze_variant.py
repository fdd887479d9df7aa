"""`videoscan analyze` with one experimental setting changed, for bench/tuning.py and bench/interval.py.

The settings are applied from outside, before the command runs, so what is measured is the real
command with only that knob moved and the project's code untouched:

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
    if args.decode_threads is not None:
        _set_decode_threads(args.decode_threads)
    if args.queue_depth is not None:
        import worker.pipeline

        worker.pipeline.QUEUE_DEPTH = args.queue_depth
    batch_sizes = {name: size for name, size in (("human", args.human_batch), ("face", args.face_batch)) if size}
    if batch_sizes:
        _set_batch_sizes(batch_sizes)
    if args.no_weak_detections:
        _ignore_weak_detections()

    from worker.cli import main as videoscan

    return videoscan(["analyze", *analyze_args])


def _set_tensorflow_threads(intra: int | None, inter: int | None) -> None:
    """Replaces the project's choice of thread pools (detectors.tf_runtime.thread_pools)."""
    from detectors import tf_runtime

    chosen = tf_runtime.thread_pools

    def thread_pools(cores: int) -> tuple[int, int]:
        default_intra, default_inter = chosen(cores)
        return (default_intra if intra is None else intra), (default_inter if inter is None else inter)

    tf_runtime.thread_pools = thread_pools


def _set_decode_threads(threads: int) -> None:
    """Replaces the project's choice of FFmpeg decoding threads (worker.video.decode_threads)."""
    import worker.analysis

    worker.analysis.decode_threads = lambda for_gpu: threads


def _set_batch_sizes(batch_sizes: dict[str, int]) -> None:
    """Detector pools build with these batch sizes, through the pool's own `build` parameter."""
    import worker.detector_pool
    from detectors import build_detector

    pool = worker.detector_pool.DetectorPool

    def build(name: str, **options):
        return build_detector(name, **options, **({"batch_size": batch_sizes[name]} if name in batch_sizes else {}))

    worker.detector_pool.DetectorPool = lambda human_model=None: pool(human_model, build=build)


def _ignore_weak_detections() -> None:
    import worker.pipeline
    from worker.tracking import MultiTracker

    class WithoutWeakDetections(MultiTracker):
        """Tracks follow only the detections that are reported (the tracker before ByteTrack's second pass)."""

        def observe(self, index, timestamp_ms, gray, detections, weak=()):
            return super().observe(index, timestamp_ms, gray, detections)

    worker.pipeline.MultiTracker = WithoutWeakDetections


if __name__ == "__main__":
    sys.exit(main())
