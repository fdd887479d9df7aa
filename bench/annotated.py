"""Annotated image sets (`faces_dev`, `persons_dev`) as video frames, and detections scored against them.

Each image is letterboxed into a 16:9 frame (scaled to fit, centred, black bars), as the data's
README asks, with its boxes mapped the same way. Scoring: a detection matches the unmatched
counted box it overlaps most (IoU >= 0.5, best-scored detections first); one that matches only
an ignored box, or a box below the counted size, is neither a hit nor a false positive.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import cv2
import numpy as np

MATCH_IOU = 0.5


@dataclasses.dataclass(frozen=True)
class Frame:
    name: str
    image: np.ndarray  # BGR, letterboxed
    boxes: np.ndarray  # (N, 4) x1, y1, x2, y2 in frame pixels
    ignore: np.ndarray  # (N,) bool: the set's own ignore flag


def letterbox(image: np.ndarray, size: tuple[int, int] = (1280, 720)) -> tuple[np.ndarray, float, int, int]:
    """The image scaled to fit a black frame of `size` (width, height), centred, as a video shows a
    photo (padded, not stretched): (frame, scale, left, top)."""
    scale = min(size[0] / image.shape[1], size[1] / image.shape[0])
    width, height = round(image.shape[1] * scale), round(image.shape[0] * scale)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    frame[top : top + height, left : left + width] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return frame, scale, left, top


def letterboxed(folder: pathlib.Path, size: tuple[int, int] | None = (1280, 720)) -> list[Frame]:
    """Every image of an annotated set, letterboxed into a frame of `size` (width, height); with
    `size` None, each image as it is, at its own aspect."""
    annotations = json.loads((folder / "annotations.json").read_text())
    frames = []
    for entry in annotations["images"]:
        image = cv2.imread(str(folder / entry["file"]))
        if image is None:
            raise FileNotFoundError(f"cannot read {folder / entry['file']}")
        frame, scale, left, top = letterbox(image, size) if size else (image, 1.0, 0, 0)
        boxes = np.asarray([[b["left"], b["top"], b["left"] + b["width"], b["top"] + b["height"]]
                            for b in entry["boxes"]], np.float64).reshape(-1, 4) * scale + [left, top, left, top]
        ignore = np.asarray([bool(b.get("ignore", False)) for b in entry["boxes"]], bool)
        frames.append(Frame(entry["file"], frame, boxes, ignore))
    return frames


@dataclasses.dataclass
class Tally:
    """Counted boxes found and missed by height band, and false positives."""

    bands: tuple[float, ...]  # lower edges of the height bands, in pixels; the first is the counted minimum
    found: np.ndarray = dataclasses.field(init=False)
    total: np.ndarray = dataclasses.field(init=False)
    true_positives: int = 0
    false_positives: int = 0

    def __post_init__(self):
        self.found = np.zeros(len(self.bands), int)
        self.total = np.zeros(len(self.bands), int)

    def add(self, frame: Frame, detections: np.ndarray, scores: np.ndarray) -> None:
        """`detections`: (M, 4) x1, y1, x2, y2 in frame pixels; counted boxes are those at least
        `bands[0]` high and not ignored."""
        heights = frame.boxes[:, 3] - frame.boxes[:, 1]
        counted = ~frame.ignore & (heights >= self.bands[0])
        band = np.searchsorted(self.bands, heights, side="right") - 1
        matched = np.zeros(len(frame.boxes), bool)
        overlaps = iou(detections, frame.boxes)
        for index in np.argsort(-scores, kind="stable"):
            candidates = np.where(counted & ~matched, overlaps[index], 0.0)
            best = int(np.argmax(candidates)) if len(candidates) else -1
            if best >= 0 and candidates[best] >= MATCH_IOU:
                matched[best] = True
                self.true_positives += 1
            elif not (overlaps[index][~counted] >= MATCH_IOU).any():
                self.false_positives += 1
        for box_band, is_counted, is_matched in zip(band, counted, matched):
            if is_counted:
                self.total[box_band] += 1
                self.found[box_band] += is_matched

    @property
    def recall(self) -> float:
        return self.found.sum() / max(self.total.sum(), 1)

    @property
    def precision(self) -> float:
        return self.true_positives / max(self.true_positives + self.false_positives, 1)

    def band_recalls(self) -> dict[str, str]:
        edges = [*self.bands, float("inf")]
        return {f"{edges[i]:.0f}-{edges[i + 1]:.0f} px": f"{self.found[i]}/{self.total[i]}"
                for i in range(len(self.bands))}


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(M, N) IoU of corner boxes."""
    a, b = a.reshape(-1, 4)[:, None, :], b.reshape(-1, 4)[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    areas_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    areas_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(areas_a + areas_b - inter, 1e-12)
