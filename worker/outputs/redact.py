"""Blurs every object of the redacted labels on every frame of a video.

The renderer gives `Redactor` each analysed frame's detections (reported and weak) and asks
it for the boxes to blur on every source frame, analysed or not:
- a margin of `MARGIN` of the box's size on every side covers a box drawn a little tight and
  the motion between the frame it was found on and the frame it is blurred on;
- weak detections are blurred too: a false blur is cheap, a missed face is not;
- a track that disappears keeps its last box blurred for `hold_frames` source frames, so a
  face the detector misses for a frame or two never shows;
- between analysed frames (`sample_every` > 1) a track is blurred over the box that covers
  both its previous and its next position (the renderer looks one analysed frame ahead).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from detectors import Detection
from worker.outputs.frames import FrameDetections

MARGIN = 0.25
# Blocks across the longer side of a blurred region: too few to keep any feature of a face.
BLOCKS = 6
HOLD_S = 0.5

Region = tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of the frame


class Redactor:
    def __init__(self, labels: Iterable[str], hold_frames: int):
        self.labels = frozenset(labels)
        self.hold_frames = hold_frames
        self._held: dict[object, tuple[int, Region]] = {}  # key -> (source index last seen, region)

    def regions(self, index: int, previous: FrameDetections | None, following: FrameDetections | None) -> list[Region]:
        """The regions to blur on source frame `index`, given the analysed frames at or before it
        (`previous`) and after it (`following`)."""
        regions: dict[object, Region] = {}
        if previous is not None:
            current = self._select(previous)
            if previous.index == index:
                self._held.update({key: (index, region) for key, region in current.items()})
                regions.update(current)
            else:
                ahead = self._select(following) if following is not None else {}
                for key, region in current.items():
                    regions[key] = _hull(region, ahead[key]) if key in ahead else region
                for key, region in ahead.items():
                    regions.setdefault(key, region)
        for key, (seen, region) in list(self._held.items()):
            if index - seen > self.hold_frames:
                del self._held[key]
            else:
                regions.setdefault(key, region)
        return list(regions.values())

    def _select(self, frame: FrameDetections) -> dict[object, Region]:
        chosen = [d for d in (*frame.detections, *frame.weak) if d.label in self.labels]
        return {_key(d, frame.index, n): _region(d) for n, d in enumerate(chosen)}


def blur_regions(image: np.ndarray, regions: Sequence[Region]) -> np.ndarray:
    """Pixelates then smooths each region with its margin, in place: beyond recognition, and
    with no sharp block edges for a detector to read as features."""
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in regions:
        mx, my = (x2 - x1) * MARGIN, (y2 - y1) * MARGIN
        left, top = max(int((x1 - mx) * width), 0), max(int((y1 - my) * height), 0)
        right, bottom = min(int(np.ceil((x2 + mx) * width)), width), min(int(np.ceil((y2 + my) * height)), height)
        if right - left < 2 or bottom - top < 2:
            continue
        patch = image[top:bottom, left:right]
        side = max(right - left, bottom - top)
        small = cv2.resize(patch, (max(BLOCKS * (right - left) // side, 1), max(BLOCKS * (bottom - top) // side, 1)),
                           interpolation=cv2.INTER_AREA)
        coarse = cv2.resize(small, (right - left, bottom - top), interpolation=cv2.INTER_NEAREST)
        kernel = max(side // BLOCKS, 1) | 1
        image[top:bottom, left:right] = cv2.GaussianBlur(coarse, (kernel, kernel), 0)
    return image


def _key(detection: Detection, index: int, position: int) -> object:
    """Tracks by their id; an untracked (weak) box by its frame and place in it."""
    if detection.track_id is not None:
        return detection.label, detection.track_id
    return "untracked", index, position


def _region(detection: Detection) -> Region:
    box = detection.box
    return box.left, box.top, box.left + box.width, box.top + box.height


def _hull(a: Region, b: Region) -> Region:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])
