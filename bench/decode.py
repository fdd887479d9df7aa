"""Decoding speed, OpenCV against PyAV, whole processes: every frame of vtest.avi and of
short_hamilton_clip.mp4 decoded to BGR arrays (what the analysis needs), a few rounds interleaved.

    .venv/bin/python bench/decode.py [--rounds N]

`--decode opencv|pyav VIDEO` is one measured process.
"""

from __future__ import annotations

import sys

from common import HAMILTON, VTEST, data_video, footer, header, interleaved, median, paired_ratio, run_process


def decode_opencv(path: str) -> int:
    import cv2

    capture, frames = cv2.VideoCapture(path), 0
    while capture.read()[0]:
        frames += 1
    return frames


def decode_pyav(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="bgr24") is not None)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--decode", nargs=2, metavar=("LIBRARY", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode:
        library, video = args.decode
        print({"opencv": decode_opencv, "pyav": decode_pyav}[library](video))
        return
    args.quick = False
    header("decode: OpenCV against PyAV, every frame to BGR", args)
    for name in (VTEST, HAMILTON):
        video = str(data_video(name))
        runs = interleaved({library: (lambda library=library: run_process([sys.executable, __file__, "--decode", library, video]))
                            for library in ("opencv", "pyav")}, args.rounds)
        walls = {library: [run.wall_s for run in runs[library]] for library in runs}
        print(f"{name}: OpenCV {median(walls['opencv']):.2f} s, PyAV {median(walls['pyav']):.2f} s wall "
              f"(medians of {args.rounds}); PyAV takes {paired_ratio(walls['pyav'], walls['opencv']):.2f}x "
              f"OpenCV's time (CPU {median([r.cpu_s for r in runs['opencv']]):.2f} s against "
              f"{median([r.cpu_s for r in runs['pyav']]):.2f} s)")
    footer()


if __name__ == "__main__":
    main()
