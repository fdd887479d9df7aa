"""The face models against each other: recall and precision on faces_dev, and time a frame after startup.

Quality: faces_dev's 12 photographs, each letterboxed into a 1280x720 frame; faces at least 20 px
high count (reported by height band), `ignore` boxes are neither misses nor false positives
(bench/annotated.py); for blazeface-mtcnn also the share of those faces BlazeFace proposes (a
proposal at IoU >= 0.3 or 0.5, before RNet and ONet), which says whether a miss is the proposals' or
the refinement's. Speed: each model built and warmed up on one batch first, then the median
over rounds of the time a frame on short_hamilton_clip.mp4 (its first 64 frames, 640x360) and
on the letterboxed faces_dev frames (1280x720), in the detector's own batches, the two models in
interleaved rounds.

    PYTHONPATH=. .venv/bin/python bench/faces.py [--quick] [--rounds N]
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from annotated import Tally, iou, letterboxed
from common import DATA_DIR, HAMILTON, arguments, data_video, footer, header, median, rgb_frames, verdict
from detectors import build_detector

MODELS = ("mtcnn", "blazeface-mtcnn")
BANDS = (20, 40, 80, 160)
HAMILTON_FRAMES = 64


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("faces: blazeface-mtcnn against mtcnn", args)
    frames = letterboxed(DATA_DIR / "faces_dev")
    rgb_720p = [cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB) for frame in frames]
    hamilton = rgb_frames(data_video(HAMILTON), 16 if args.quick else HAMILTON_FRAMES)
    detectors = {model: build_detector("face", model=model) for model in MODELS}
    tallies = {}
    for model, detector in detectors.items():
        print(f"{model}: {detector.model}", flush=True)
        tallies[model] = _score(detector, frames, rgb_720p)
        detector.detect(hamilton[: detector.batch_size])  # warm-up: first calls build graphs
        tally = tallies[model]
        print(f"  faces_dev: recall {tally.recall:.3f}, precision {tally.precision:.3f} "
              f"({tally.true_positives} found, {tally.false_positives} false), by height: {tally.band_recalls()}")
        if hasattr(detector, "_blazeface"):
            print(f"  proposals: {_proposal_recall(detector._blazeface, frames, rgb_720p)}")
    clips = {"hamilton 640x360": hamilton, "faces_dev 1280x720": rgb_720p}
    # Rounds interleave the models, so that both meet the same load.
    rounds = {(model, name): [] for model in MODELS for name in clips}
    for _ in range(args.rounds):
        for name, clip in clips.items():
            for model, detector in detectors.items():
                rounds[model, name].append(_time_a_frame(detector, clip))
    seconds = {key: median(values) for key, values in rounds.items()}
    for (model, name), values in rounds.items():
        print(f"{model} on {name}: {1000 * seconds[model, name]:.1f} ms a frame "
              f"(rounds: {', '.join(f'{1000 * s:.1f}' for s in values)})")
    reference, fast = tallies["mtcnn"], tallies["blazeface-mtcnn"]
    verdicts = [verdict(f"speed on {name}", seconds["mtcnn", name] / seconds["blazeface-mtcnn", name], 5.0)
                for name in ("hamilton 640x360", "faces_dev 1280x720")]
    verdicts.append(verdict("recall", fast.recall, reference.recall - 0.02, unit=""))
    verdicts.append(verdict("precision", fast.precision, reference.precision - 0.02, unit=""))
    print("\n".join(verdicts))
    footer()


def _score(detector, frames, rgb_frames) -> Tally:
    tally = Tally(BANDS)
    for frame, rgb in zip(frames, rgb_frames):
        faces = detector.detect([rgb])[0].detections
        height, width = rgb.shape[:2]
        boxes = np.asarray([[f.box.left * width, f.box.top * height, (f.box.left + f.box.width) * width,
                             (f.box.top + f.box.height) * height] for f in faces]).reshape(-1, 4)
        tally.add(frame, boxes, np.asarray([f.confidence for f in faces]))
    return tally


def _proposal_recall(blazeface, frames, rgb_frames) -> str:
    """Counted faces with a BlazeFace proposal at IoU >= 0.3 and >= 0.5, and proposals a frame."""
    covered, counted, proposed = np.zeros(2, int), 0, 0
    for frame, rgb in zip(frames, rgb_frames):
        proposals = blazeface.propose([rgb])[0]
        heights = frame.boxes[:, 3] - frame.boxes[:, 1]
        faces = frame.boxes[~frame.ignore & (heights >= BANDS[0])]
        best = iou(faces, proposals[:, :4]).max(axis=1) if len(proposals) else np.zeros(len(faces))
        covered += [(best >= 0.3).sum(), (best >= 0.5).sum()]
        counted, proposed = counted + len(faces), proposed + len(proposals)
    return (f"IoU >= 0.3 {covered[0] / counted:.3f}, IoU >= 0.5 {covered[1] / counted:.3f}, "
            f"{proposed / len(frames):.0f} proposals a frame")


def _time_a_frame(detector, frames: list[np.ndarray]) -> float:
    start = time.perf_counter()
    detector.detect(frames)
    return (time.perf_counter() - start) / len(frames)


if __name__ == "__main__":
    main()
