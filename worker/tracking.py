"""Track ids for detections, and boxes carried between detector frames (SORT-style, per label).

On a detector frame each label's detections are matched to its tracks by the IoU between a
detection and the track's predicted box (constant velocity on centre and size), with an
optimal assignment; unmatched detections start tracks. Tracks left over are then matched to
the weak detections, those scored under the reporting threshold (ByteTrack's second
association, Zhang et al. 2022): a detector flickers around its threshold, and an object it
still half sees keeps its track, its id and its place. Weak detections are never reported and
start no track. Between detector frames the optical flow in each track's box moves it
(`worker.box_flow`), or the velocity when flow fails.

Boxes are kept as (centre x, centre y, width, height), as fractions of the frame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from detectors import Box, Detection
from worker.box_flow import BoxMotion, box_motions

# Width of the tracker's grayscale view: optical flow holds on small people in crowds at 640
# (81% of vtest.avi's boxes, against 67% at 480) for a fraction of a millisecond more.
TRACKING_WIDTH = 640
# Weight of the newest velocity measurement: smooths detector jitter, follows turns in a few frames.
VELOCITY_GAIN = 0.5
# A box narrower or shorter than this many pixels of the gray frame has left or collapsed.
MIN_BOX_PX = 2.0


def tracking_view(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame as the tracker wants it: grayscale, at most TRACKING_WIDTH wide."""
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    if width <= TRACKING_WIDTH:
        return gray
    return cv2.resize(gray, (TRACKING_WIDTH, round(height * TRACKING_WIDTH / width)), interpolation=cv2.INTER_AREA)


class MultiTracker:
    """SORT-style tracking per label, with sparse optical flow carrying boxes between detector frames.

    Call once per analysed frame, in order: `observe` on detector frames, `carry` on the others.
    `gray` is the frame as uint8 single-channel, the same size on every call.
    """

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 3):
        self.iou_threshold = iou_threshold
        # Detector frames in a row a track may go unmatched (detector flicker, brief occlusion).
        self.max_missed = max_missed
        self._tracks: dict[str, list[_Track]] = {}
        self._started: dict[str, int] = {}
        self._previous: np.ndarray | None = None

    def observe(
        self, gray: np.ndarray, detections: list[Detection], weak: Sequence[Detection] = ()
    ) -> list[Detection]:
        """A detector frame: associates detections to tracks, returns them with track_id set (source "detector").

        `weak` are the detector's detections scored under the reporting threshold: they only
        keep tracks going.
        """
        ids: list[int] = [0] * len(detections)
        # Labels with tracks too: their tracks count a miss when no detection of theirs came.
        for label in dict.fromkeys([*self._tracks, *(d.label for d in detections)]):
            indices = [i for i, d in enumerate(detections) if d.label == label]
            found = self._associate(label, [detections[i] for i in indices], [w for w in weak if w.label == label])
            for index, track_id in zip(indices, found):
                ids[index] = track_id
        self._finish_frame(gray)
        return [dataclasses.replace(d, track_id=i, source="detector") for d, i in zip(detections, ids)]

    def carry(self, gray: np.ndarray) -> list[Detection]:
        """A frame between detector frames: moves every live track's box by optical flow.

        Returns the boxes of the tracks the last detector frame found (strongly or weakly), source
        "tracker", with the confidence of the track's last reported detection.
        """
        live = [track for tracks in self._tracks.values() for track in tracks]
        height, width = gray.shape
        to_pixels = np.array([width, height, width, height], dtype=float)
        corners = np.array([_corners(t.box) for t in live]).reshape(-1, 4) * to_pixels
        motions = box_motions(self._previous, gray, corners, [t.detection.label for t in live])
        for track, motion in zip(live, motions):
            track.frames_since_detection += 1
            moved = track.box + track.velocity if motion is None else _moved(track.box, motion, width, height)
            track.box = _clipped(moved)
        self._finish_frame(gray)
        # A track the detector just missed entirely is carried silently, so it can be matched
        # again under its id, but not reported: the detector no longer vouches for it.
        return [t.carried_detection() for tracks in self._tracks.values() for t in tracks if t.missed == 0]

    def track_counts(self) -> dict[str, int]:
        """Distinct tracks started so far, per label (labels seen)."""
        return dict(self._started)

    def _associate(self, label: str, detections: list[Detection], weak: list[Detection]) -> list[int]:
        """Matches one label's detections to its tracks, then the tracks left to the weak detections,
        and starts tracks for the detections left; returns the detections' track ids."""
        tracks = self._tracks.setdefault(label, [])
        for track in tracks:
            track.frames_since_detection += 1
        predicted = np.array([_clipped(t.box + t.velocity) for t in tracks]).reshape(-1, 4)
        found = np.array([_centre_size(d.box) for d in detections]).reshape(-1, 4)
        track_of = {d: t for t, d in assign(iou_matrix(predicted, found), self.iou_threshold)}
        left = [t for t in range(len(tracks)) if t not in track_of.values()]
        weak_boxes = np.array([_centre_size(w.box) for w in weak]).reshape(-1, 4)
        for t, w in assign(iou_matrix(predicted[left], weak_boxes), self.iou_threshold):
            track = tracks[left[t]]
            track.match(dataclasses.replace(weak[w], confidence=track.detection.confidence))
        for t in left:
            if tracks[t].frames_since_detection:  # no weak detection either
                tracks[t].missed += 1
                tracks[t].box = _clipped(tracks[t].box + tracks[t].velocity)
        ids = []
        for d, detection in enumerate(detections):
            if d in track_of:
                track = tracks[track_of[d]]
                track.match(detection)
            else:
                track = self._start(detection)
                tracks.append(track)
            ids.append(track.track_id)
        return ids

    def _start(self, detection: Detection) -> _Track:
        track_id = self._started.get(detection.label, 0) + 1
        self._started[detection.label] = track_id
        return _Track(track_id, detection, _centre_size(detection.box))

    def _finish_frame(self, gray: np.ndarray) -> None:
        """Ends the tracks that lost their object and keeps the frame for the next `carry`."""
        height, width = gray.shape
        for label, tracks in self._tracks.items():
            self._tracks[label] = [
                t for t in tracks
                if t.missed <= self.max_missed and t.box[2] * width >= MIN_BOX_PX and t.box[3] * height >= MIN_BOX_PX
            ]
        self._previous = gray


@dataclasses.dataclass(eq=False)
class _Track:
    track_id: int
    # The last one matched (a weak one with the confidence of the last reported one): label,
    # confidence and landmarks to carry.
    detection: Detection
    box: np.ndarray  # the estimate on the latest frame
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4))  # per analysed frame
    hits: int = 1
    missed: int = 0  # detector frames since the last match
    frames_since_detection: int = 0  # analysed frames

    def match(self, detection: Detection) -> None:
        box = _centre_size(detection.box)
        # Measured between detections, not carried boxes: the detector is the reference.
        step = (box - _centre_size(self.detection.box)) / self.frames_since_detection
        self.velocity = step if self.hits == 1 else self.velocity + VELOCITY_GAIN * (step - self.velocity)
        self.detection, self.box = detection, box
        self.hits += 1
        self.missed = self.frames_since_detection = 0

    def carried_detection(self) -> Detection:
        """The track's box now, with the last detection's label, confidence and (moved) landmarks."""
        landmarks = self.detection.landmarks
        return Detection(
            label=self.detection.label,
            confidence=self.detection.confidence,
            box=Box.from_corners(*_corners(self.box).tolist()),
            landmarks=_moved_landmarks(landmarks, self.detection.box, self.box) if landmarks else None,
            track_id=self.track_id,
            source="tracker",
        )


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (n, 4) with every box in `b` (m, 4), both centre/size."""
    a, b = _corners(a)[:, None, :], _corners(b)[None, :, :]
    overlap = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0.0, None).prod(-1)
    union = (a[..., 2:] - a[..., :2]).prod(-1) + (b[..., 2:] - b[..., :2]).prod(-1) - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def assign(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs with the largest total IoU among pairs at or above `threshold`, in row order."""
    admissible = iou >= threshold
    # A pair whose row and column have no other admissible pair is in every best assignment:
    # most pairs, frame after frame, so the search runs only on the few contested ones.
    alone = admissible & (admissible.sum(axis=1, keepdims=True) == 1) & (admissible.sum(axis=0, keepdims=True) == 1)
    pairs = list(zip(*np.nonzero(alone)))
    rows = np.flatnonzero(admissible.any(axis=1) & ~alone.any(axis=1))
    columns = np.flatnonzero(admissible.any(axis=0) & ~alone.any(axis=0))
    if len(rows):
        contested = np.where(admissible, iou, 0.0)[np.ix_(rows, columns)]
        pairs += [(rows[r], columns[c]) for r, c in min_cost_assignment(-contested) if contested[r, c] > 0]
    return sorted((int(r), int(c)) for r, c in pairs)


def min_cost_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """The Hungarian algorithm (shortest augmenting paths with potentials), each row or column used once.

    O(n^2 m) for n rows <= m columns, with the inner loop over columns in numpy; a frame's
    tracks and detections per label are tens at most.
    """
    if cost.shape[0] > cost.shape[1]:
        return sorted((r, c) for c, r in min_cost_assignment(cost.T))
    rows, columns = cost.shape
    # 1-based with column 0 as the search's virtual start; row_of[j] == 0 means column j is free.
    row_potential, column_potential = np.zeros(rows + 1), np.zeros(columns + 1)
    row_of = np.zeros(columns + 1, dtype=int)
    for row in range(1, rows + 1):
        row_of[0] = row
        came_from = np.zeros(columns + 1, dtype=int)
        slack = np.full(columns + 1, np.inf)
        visited = np.zeros(columns + 1, dtype=bool)
        column = 0
        while row_of[column]:
            visited[column] = True
            reduced = cost[row_of[column] - 1] - row_potential[row_of[column]] - column_potential[1:]
            better = ~visited[1:] & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            came_from[1:][better] = column
            open_slack = np.where(visited[1:], np.inf, slack[1:])
            nearest = int(np.argmin(open_slack)) + 1
            delta = open_slack[nearest - 1]
            row_potential[row_of[visited]] += delta
            column_potential[visited] -= delta
            slack[1:][~visited[1:]] -= delta
            column = nearest
        while column:  # flip the matching along the augmenting path
            previous = came_from[column]
            row_of[column] = row_of[previous]
            column = previous
    return [(int(row_of[j]) - 1, j - 1) for j in range(1, columns + 1) if row_of[j]]


def _centre_size(box: Box) -> np.ndarray:
    return np.array([box.left + box.width / 2, box.top + box.height / 2, box.width, box.height])


def _corners(box: np.ndarray) -> np.ndarray:
    return np.concatenate([box[..., :2] - box[..., 2:] / 2, box[..., :2] + box[..., 2:] / 2], axis=-1)


def _clipped(box: np.ndarray) -> np.ndarray:
    """The part of `box` inside the frame (a size driven below zero by the velocity is zero)."""
    box = np.concatenate([box[:2], np.maximum(box[2:], 0.0)])
    x1, y1, x2, y2 = np.clip(_corners(box), 0.0, 1.0)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


def _moved(box: np.ndarray, motion: BoxMotion, width: int, height: int) -> np.ndarray:
    centre = box[:2] + np.array([motion.dx / width, motion.dy / height])
    return np.concatenate([centre, box[2:] * motion.scale])


def _moved_landmarks(
    landmarks: Mapping[str, tuple[float, float]], detected: Box, box: np.ndarray
) -> dict[str, tuple[float, float]]:
    """Landmarks keep their place within the box, as those of a rigidly moving face do."""
    before = _centre_size(detected)
    points = np.array(list(landmarks.values()))
    moved = np.clip(box[:2] + (points - before[:2]) * box[2:] / before[2:], 0.0, 1.0)
    return {name: (float(x), float(y)) for name, (x, y) in zip(landmarks, moved)}
