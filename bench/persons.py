"""Persons found per `tiles` setting: recall and precision at the default threshold and AP50 on
persons_dev letterboxed into 1280x720 frames, and frames/s of the human detector on vtest.avi.

    .venv/bin/python bench/persons.py [--frames N] [--rounds N]

`auto (padded)` is the alternative to two squares: the frame centred in one padded square, at
the cost of `none`. `own aspect` is the reference: each photo alone, not letterboxed, with `none`.
In-process: the detector alone (model loaded before timing), frames already decoded and prepared.
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

from annotated import letterboxed
from common import DATA_DIR, REPO_ROOT, VTEST, data_video, footer, machine, median, rgb_frames

sys.path.insert(0, str(REPO_ROOT))
from detectors import views  # noqa: E402  (the project, from this checkout)
from detectors.human import HumanDetector  # noqa: E402

FRAME_SIZE = (1280, 720)
MATCH_IOU = 0.5
DEFAULT_CONFIDENCE = 0.5
AP_CONFIDENCE = 0.1  # AP50 counts every box down to this detector's weak floor
EQUAL_PRECISION = 0.95  # settings compared by their recall at this precision, whatever threshold gives it


class PaddedHumanDetector(HumanDetector):
    """`auto` done as one padded square instead of overlapping squares."""

    def views(self, width: int, height: int) -> list[views.View]:
        return views.padded_square(width, height)


SETTINGS = {
    "none": lambda **options: HumanDetector(tiles="none", **options),
    "auto (two squares)": lambda **options: HumanDetector(tiles="auto", **options),
    "auto (padded)": lambda **options: PaddedHumanDetector(**options),
    "2x2": lambda **options: HumanDetector(tiles="2x2", **options),
}


def dev_set(letterbox: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, ground-truth corners in pixels) for every persons_dev image."""
    return [(cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB), frame.boxes)
            for frame in letterboxed(DATA_DIR / "persons_dev", FRAME_SIZE if letterbox else None)]


def found(detector: HumanDetector, image: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """(score, corners in pixels) of every person found, reported or weak."""
    findings = detector.detect([image])[0]
    size = np.array([image.shape[1], image.shape[0]] * 2)
    return [(d.confidence, np.array([d.box.left, d.box.top, d.box.left + d.box.width, d.box.top + d.box.height]) * size)
            for d in findings.detections + findings.weak]


def matches(detections: list[tuple[float, np.ndarray]], truth: np.ndarray) -> list[tuple[float, bool]]:
    """(score, true positive) per detection, best first, each truth box matched once at IoU >= 0.5."""
    taken = np.zeros(len(truth), bool)
    out = []
    for score, box in sorted(detections, key=lambda pair: -pair[0]):
        ious = _iou(box, truth)
        ious[taken] = 0
        hit = len(truth) > 0 and ious.max() >= MATCH_IOU
        if hit:
            taken[int(ious.argmax())] = True
        out.append((score, bool(hit)))
    return out


def _iou(box: np.ndarray, truth: np.ndarray) -> np.ndarray:
    inter = (np.clip(np.minimum(box[2], truth[:, 2]) - np.maximum(box[0], truth[:, 0]), 0, None)
             * np.clip(np.minimum(box[3], truth[:, 3]) - np.maximum(box[1], truth[:, 1]), 0, None))
    areas = (box[2] - box[0]) * (box[3] - box[1]) + (truth[:, 2] - truth[:, 0]) * (truth[:, 3] - truth[:, 1])
    return inter / np.maximum(areas - inter, 1e-9)


def quality(make, images) -> dict[str, float]:
    """Recall and precision at the default threshold (its detector), and AP50 (a low-threshold detector)."""
    total = sum(len(truth) for _, truth in images)
    default = make()
    at_default = [m for image, truth in images
                  for m in matches([f for f in found(default, image) if f[0] >= DEFAULT_CONFIDENCE], truth)]
    hits = sum(hit for _, hit in at_default)
    low = make(min_confidence=AP_CONFIDENCE)
    ranked = sorted((m for image, truth in images for m in matches(found(low, image), truth)), key=lambda m: -m[0])
    ranked_hits = [hit for _, hit in ranked]
    return {"recall": hits / total, "precision": hits / max(len(at_default), 1),
            "ap50": average_precision(ranked_hits, total), "at_equal": recall_at_precision(ranked_hits, total),
            "truth": total}


def recall_at_precision(hits: list[bool], total: int, precision: float = EQUAL_PRECISION) -> float:
    """The most recall any threshold gives with at least `precision`."""
    true_positives = np.cumsum(hits)
    good = true_positives / np.arange(1, len(hits) + 1) >= precision
    return float(true_positives[good].max() / total) if good.any() else 0.0


def average_precision(hits: list[bool], total: int) -> float:
    """VOC's all-point interpolated AP of a ranked list of hits and misses."""
    true_positives = np.cumsum(hits)
    recall = np.concatenate([[0], true_positives / total, [true_positives[-1] / total if hits else 0]])
    precision = np.concatenate([[1], true_positives / np.arange(1, len(hits) + 1), [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * precision[1:]))


def vtest_speeds(frames: list[np.ndarray], rounds: int) -> dict[str, tuple[float, float]]:
    """Per setting, (frames/s, persons reported per frame) on prepared vtest.avi frames: the settings
    timed in turn in each round (a loaded machine's drift hits them alike), after a warm-up."""
    detectors = {name: make() for name, make in SETTINGS.items()}
    persons = {name: sum(len(f.detections) for f in detector.detect(frames)) / len(frames)
               for name, detector in detectors.items()}
    seconds: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(rounds):
        for name, detector in detectors.items():
            start = time.perf_counter()
            detector.detect(frames)
            seconds[name].append(time.perf_counter() - start)
    return {name: (len(frames) / median(seconds[name]), persons[name]) for name in detectors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100, help="vtest.avi frames timed")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over them (median)")
    args = parser.parse_args()
    print("== persons per tiles setting: persons_dev letterboxed into 1280x720, speed on vtest.avi")
    print(f"machine: {machine()}; {args.frames} vtest.avi frames, median of {args.rounds} passes", flush=True)
    own = quality(SETTINGS["none"], dev_set(letterbox=False))
    print(f"own aspect (none, not letterboxed): recall {own['recall']:.3f} precision {own['precision']:.3f} "
          f"AP50 {own['ap50']:.3f} recall at precision {EQUAL_PRECISION} {own['at_equal']:.3f} "
          f"({own['truth']} persons)")
    images, frames = dev_set(letterbox=True), rgb_frames(data_video(VTEST), args.frames)
    speeds = vtest_speeds(frames, args.rounds)
    rows = {name: (quality(make, images), *speeds[name]) for name, make in SETTINGS.items()}
    base = rows["none"]
    print(f"{'tiles':20} {'recall':>7} {'prec.':>7} {'AP50':>7} {'R@P.95':>7} {'x recall':>9} {'frames/s':>9} "
          f"{'x cost':>7} {'vtest persons/frame':>20}")
    for name, (scores, fps, per_frame) in rows.items():
        print(f"{name:20} {scores['recall']:7.3f} {scores['precision']:7.3f} {scores['ap50']:7.3f} "
              f"{scores['at_equal']:7.3f} {scores['recall'] / base[0]['recall']:9.2f} {fps:9.1f} {base[1] / fps:7.2f} "
              f"{per_frame:20.2f}")
    footer()


if __name__ == "__main__":
    main()
