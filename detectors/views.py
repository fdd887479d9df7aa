"""Views of a frame for a square-input detector: crop rectangles, boxes mapped back, merging across views.

The person graph resizes its input to a square. A 16:9 frame squeezed into it makes people 1.78
times thinner than the model learned them; squares cut from the frame keep them as they are.
Pure numpy: no model here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

# COCO photos are mostly 4:3 and the graph squeezed them into its square while it learned, so a
# frame up to 4:3 is seen whole: a second view would double the cost for people it already finds.
TOLERATED_ASPECT = 4 / 3
# 2x2 tiles reach past the frame's middle by this share of the half frame, so a person on a seam
# is whole in some view (the whole frame or a neighbouring tile).
TILE_OVERLAP = 0.15
# A box within this share of a view's inner edge (one that is not the frame's) is cut by the view.
EDGE_MARGIN = 0.01
MERGE_IOU = 0.5
# A box with this share of its area inside a better one is the same person seen less well.
CONTAINED_SHARE = 0.7


@dataclasses.dataclass(frozen=True)
class View:
    """A crop rectangle in frame pixels; it may reach past the frame, where it is zero padding."""

    left: int
    top: int
    width: int
    height: int

    def inside(self, frame_width: int, frame_height: int) -> bool:
        return (self.left >= 0 and self.top >= 0 and self.left + self.width <= frame_width
                and self.top + self.height <= frame_height)


def whole_frame(width: int, height: int) -> list[View]:
    return [View(0, 0, width, height)]


def squares(width: int, height: int) -> list[View]:
    """Overlapping squares along the long side, evenly spaced (16:9 as two); a frame up to 4:3, whole."""
    short, long = min(width, height), max(width, height)
    count = math.ceil(long / short) if long > short * TOLERATED_ASPECT else 1
    if count == 1:
        return whole_frame(width, height)
    starts = [round(index * (long - short) / (count - 1)) for index in range(count)]
    if width >= height:
        return [View(start, 0, short, short) for start in starts]
    return [View(0, start, short, short) for start in starts]


def padded_square(width: int, height: int) -> list[View]:
    """The frame centred in one square, padded: no extra cost, but people shrink by the aspect."""
    side = max(width, height)
    return [View((width - side) // 2, (height - side) // 2, side, side)]


def whole_and_quarters(width: int, height: int) -> list[View]:
    """The whole frame and four overlapping quarter tiles, for small, distant people."""
    tile_width = min(width, round(width / 2 * (1 + TILE_OVERLAP)))
    tile_height = min(height, round(height / 2 * (1 + TILE_OVERLAP)))
    return whole_frame(width, height) + [
        View(left, top, tile_width, tile_height)
        for top in (0, height - tile_height) for left in (0, width - tile_width)
    ]


TILINGS: dict[str, Callable[[int, int], list[View]]] = {
    "auto": squares,
    "none": whole_frame,
    "2x2": whole_and_quarters,
}


def tiling(name: str) -> Callable[[int, int], list[View]]:
    """The views function for a `tiles` setting; an unknown one is a ValueError naming the choices."""
    if name not in TILINGS:
        raise ValueError(f"unknown tiles {name!r}; choose one of: {', '.join(TILINGS)}")
    return TILINGS[name]


def crop(batch: np.ndarray, view: View) -> np.ndarray:
    """The view of a batch of frames [N, H, W, C]: a slice when it lies inside them, else padded with zeros."""
    frame_height, frame_width = batch.shape[1:3]
    if view.inside(frame_width, frame_height):
        return batch[:, view.top : view.top + view.height, view.left : view.left + view.width]
    out = np.zeros((batch.shape[0], view.height, view.width, *batch.shape[3:]), batch.dtype)
    top, left = max(view.top, 0), max(view.left, 0)
    bottom, right = min(view.top + view.height, frame_height), min(view.left + view.width, frame_width)
    out[:, top - view.top : bottom - view.top, left - view.left : right - view.left] = batch[:, top:bottom, left:right]
    return out


def to_frame(corners: np.ndarray, view: View, frame_width: int, frame_height: int) -> np.ndarray:
    """Boxes as (x1, y1, x2, y2) fractions of the view, as (x1, y1, x2, y2) fractions of the frame."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    scale = np.array([view.width / frame_width, view.height / frame_height] * 2)
    offset = np.array([view.left / frame_width, view.top / frame_height] * 2)
    return corners * scale + offset


def cut_by_view(corners: np.ndarray, view: View, frame_width: int, frame_height: int) -> np.ndarray:
    """Whether each box (fractions of the view) touches an edge of the view inside the frame: the
    view cut that object, so its box may be a part of it."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = corners.T
    return (((x1 <= EDGE_MARGIN) & (view.left > 0))
            | ((y1 <= EDGE_MARGIN) & (view.top > 0))
            | ((x2 >= 1 - EDGE_MARGIN) & (view.left + view.width < frame_width))
            | ((y2 >= 1 - EDGE_MARGIN) & (view.top + view.height < frame_height)))


def merge(corners: np.ndarray, scores: Sequence[float], cut: Sequence[bool]) -> tuple[np.ndarray, list[int]]:
    """Boxes found in overlapping views (frame fractions), one per object: (boxes, index of each kept one's score).

    In score order, a box is dropped when it overlaps a kept one (IoU over `MERGE_IOU`), lies
    mostly inside it, or is a cut kept box's whole object (the kept one lies mostly inside it).
    When either of the two was cut by its view, the kept box grows to cover both: the views
    saw parts of one object.
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    order = sorted(range(len(corners)), key=lambda index: -scores[index])  # stable: ties keep view order
    kept: list[int] = []
    boxes: list[np.ndarray] = []
    for index in order:
        box = corners[index]
        for position, other in enumerate(kept):
            inter = _intersection(box, boxes[position])
            area, kept_area = _area(box), _area(boxes[position])
            union = area + kept_area - inter
            same = (inter > MERGE_IOU * union or inter >= CONTAINED_SHARE * area
                    or (cut[other] and inter >= CONTAINED_SHARE * kept_area))
            if same:
                if cut[index] or cut[other]:
                    boxes[position] = np.concatenate([np.minimum(box, boxes[position])[:2],
                                                      np.maximum(box, boxes[position])[2:]])
                break
        else:
            kept.append(index)
            boxes.append(box.copy())
    return np.array(boxes).reshape(-1, 4), kept


def _area(box: np.ndarray) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    return max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
