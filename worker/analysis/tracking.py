"""Track ids for detections, and boxes carried between detector frames (SORT, ByteTrack, OC-SORT, per label).

Each track's box is a Kalman estimate (`worker.analysis.kalman`). On a detector frame each label's reported
detections are matched to its tracks by IoU with the predicted boxes, optimally, with the direction
each track was going as a tie-breaker (OC-SORT's momentum); the tracks left are then matched to its
weak detections, those scored under the reporting threshold (ByteTrack's second association, Zhang
et al. 2022): a detector flickers around its threshold, and an object it still half sees keeps its
track. Weak detections are never reported and start no track; reported ones left start tentative
tracks.

A track is confirmed after `min_hits` detections in a row, the first one reported, the others
reported or weak (SORT's probation: one false detection starts nothing; not where analysed frames
are far apart, see CONFIRM_WITHIN_MS), and only then gets an id; its boxes since its first detection
are reported then, so nothing is lost, and frames come out of the tracker once no tentative track is
in them: late by at most `min_hits` detector frames. A tentative track that misses a detector frame
ends unreported. A confirmed track the detector misses is kept, silently, for `lost_s` seconds of
video (at least one detector frame), so the frame rate, `sample_every` and `detect_every` do not
change how long an identity survives an occlusion. Between detector frames optical flow in each box
moves it (`worker.analysis.box_flow`), or the filter's prediction when flow fails or there is no image.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from detectors import Detection
from worker.analysis.association import assign, centre_size, corners, direction_agreement, iou_matrix
from worker.analysis.box_flow import box_motions
from worker.analysis.tracks import Track

# Width of the tracker's grayscale view: optical flow holds on small people in crowds at 640
# (81% of vtest.avi's boxes, against 67% at 480) for a fraction of a millisecond more.
TRACKING_WIDTH = 640
# Weight of a track's direction against IoU in matching (OC-SORT's inertia): where people cross,
# boxes overlap alike, and which way each was going tells them apart.
MOMENTUM_WEIGHT = 0.2
# Analysed frames further apart than this (sparse sampling) are beyond what IoU matching can bridge:
# a walking person's boxes no longer overlap, so a second hit would not confirm an object but drop
# it, and each detection is reported from its first frame.
CONFIRM_WITHIN_MS = 150.0
# A box narrower or shorter than this many pixels of the gray frame has left or collapsed.
MIN_BOX_PX = 2.0
# A hard cut between shots: analysed frames whose grey-level histograms are this far apart
# (Bhattacharyya distance) AND whose 32x18 thumbnails differ by this much a pixel on average show
# two scenes, and no track carries over the cut (the object that overlaps a box in the next shot is
# another one). Camera motion changes the pixels but hardly the histogram; a flat picture growing
# brighter changes its histogram but hardly its pixels; a cut changes both.
SHOT_CUT_DISTANCE = 0.15
SHOT_CUT_PIXELS = 20.0


def tracking_view(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame as the tracker wants it: grayscale, at most TRACKING_WIDTH wide."""
    gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
    height, width = gray.shape
    if width <= TRACKING_WIDTH:
        return gray
    return cv2.resize(gray, (TRACKING_WIDTH, round(height * TRACKING_WIDTH / width)), interpolation=cv2.INTER_AREA)


@dataclasses.dataclass(frozen=True)
class TrackedFrame:
    """An analysed frame with its final detections, each with its track id."""

    index: int
    timestamp_ms: float
    detections: list[Detection]


@dataclasses.dataclass(frozen=True)
class _Pending:
    index: int
    timestamp_ms: float
    entries: list[tuple[Track, Detection]]

    def final(self) -> bool:
        return not any(track.tentative for track, _ in self.entries)

    def result(self) -> TrackedFrame:
        return TrackedFrame(self.index, self.timestamp_ms, [
            dataclasses.replace(detection, track_id=track.track_id)
            for track, detection in self.entries if track.track_id is not None
        ])


class MultiTracker:
    """Tracking per label; a new one for each video (ids count from 1 per label).

    Call once per analysed frame, in order: `observe` on detector frames, `carry` on the others,
    then `flush` after the last. Each call returns the frames that became final, in order. `gray`
    is the frame as uint8 single-channel, the same size on every call, or None where there is no
    image (the motion model alone carries the boxes).
    """

    def __init__(self, iou_threshold: float = 0.2, tentative_iou_threshold: float = 0.3,
                 weak_iou_threshold: float = 0.3, min_hits: int = 2, lost_s: float = 2.0):
        # ByteTrack's thresholds, but for weak detections: a track that has not yet proved itself, or
        # a weak detection, must overlap more to be matched.
        self.iou_threshold = iou_threshold
        self.tentative_iou_threshold = tentative_iou_threshold
        self.weak_iou_threshold = weak_iou_threshold
        self.min_hits = min_hits
        self.lost_ms = lost_s * 1000.0
        self._tracks: dict[str, list[Track]] = {}
        self._confirmed: dict[str, int] = {}
        self._pending: collections.deque[_Pending] = collections.deque()
        self._previous: np.ndarray | None = None
        self._previous_ms: float | None = None
        self._shot: tuple[np.ndarray, np.ndarray] | None = None  # the last frame's histogram and thumbnail

    def observe(self, index: int, timestamp_ms: float, gray: np.ndarray | None, detections: Sequence[Detection],
                weak: Sequence[Detection] = ()) -> list[TrackedFrame]:
        """A detector frame: its detections are reported (source "detector") with the id of their track.

        `weak` are the detector's detections scored under the reporting threshold: they only keep
        tracks going.
        """
        self._end_tracks_at_a_cut(gray)
        sparse = self._previous_ms is not None and timestamp_ms - self._previous_ms > CONFIRM_WITHIN_MS
        tracks: list[Track | None] = [None] * len(detections)
        for label in dict.fromkeys([*self._tracks, *(d.label for d in detections)]):
            indices = [i for i, d in enumerate(detections) if d.label == label]
            found = self._associate(label, timestamp_ms, [detections[i] for i in indices],
                                    [w for w in weak if w.label == label], 1 if sparse else self.min_hits)
            for i, track in zip(indices, found):
                tracks[i] = track
        self._end_tracks(gray, timestamp_ms)
        entries = [(track, dataclasses.replace(d, source="detector")) for track, d in zip(tracks, detections)]
        return self._add(_Pending(index, timestamp_ms, entries), gray)

    def carry(self, index: int, timestamp_ms: float, gray: np.ndarray | None) -> list[TrackedFrame]:
        """A frame between detector frames: every track moves by optical flow, or by its prediction.

        The tracks the last detector frame found (strongly or weakly) are reported there, source
        "tracker", with the confidence of the track's last reported detection; a track the detector
        just missed is carried silently, so it can be matched again under its id.
        """
        self._end_tracks_at_a_cut(gray)
        live = [track for tracks in self._tracks.values() for track in tracks]
        seen = [track for track in live if not track.missed]
        origins = np.array([t.box for t in seen]).reshape(-1, 4)  # on the previous frame
        for track in live:
            track.predict()
        if gray is not None and self._previous is not None and seen:
            height, width = gray.shape
            pixels = corners(origins) * np.array([width, height, width, height])
            motions = box_motions(self._previous, gray, pixels, [t.detection.label for t in seen])
            for track, origin, motion in zip(seen, origins, motions):
                if motion is not None:
                    track.flow(origin, motion, width, height)
        self._end_tracks(gray, timestamp_ms)
        entries = [(track, track.carried_detection()) for track in seen if not track.ended]
        return self._add(_Pending(index, timestamp_ms, entries), gray)

    def flush(self) -> list[TrackedFrame]:
        """The frames still waiting, after the last one: tracks still tentative are not reported."""
        self._end_all_tracks()
        return self._finished()

    def track_counts(self) -> dict[str, int]:
        """Confirmed tracks so far, per label."""
        return dict(self._confirmed)

    def _associate(self, label: str, timestamp_ms: float, detections: list[Detection], weak: list[Detection],
                   min_hits: int) -> list[Track]:
        """Matches one label's detections to its tracks, then the tracks left to the weak detections,
        and starts tracks for the detections left; returns each detection's track."""
        tracks = self._tracks.setdefault(label, [])
        for track in tracks:  # frames turned sparse: a track's one hit is enough now
            self._confirm(label, track, min_hits)
        predicted = np.array([t.predict() for t in tracks]).reshape(-1, 4)
        found = np.array([centre_size(d.box) for d in detections]).reshape(-1, 4)
        momentum = MOMENTUM_WEIGHT * direction_agreement(
            np.array([t.direction() for t in tracks]).reshape(-1, 2),
            np.array([t.observed_centre for t in tracks]).reshape(-1, 2), found)
        iou = iou_matrix(predicted, found)
        tentative = np.array([t.tentative for t in tracks], bool)
        iou[tentative] = np.where(iou[tentative] >= self.tentative_iou_threshold, iou[tentative], 0.0)
        track_of = {d: tracks[t] for t, d in assign(iou, self.iou_threshold, momentum)}
        for d, track in track_of.items():
            track.match(detections[d], timestamp_ms)
        # ByteTrack's second association, for every track left: a track the detector missed before, or one
        # not yet confirmed, may be the person it half sees (vtest.avi's crowd flickers around the threshold).
        left = [t for t, track in enumerate(tracks) if track.steps]
        weak_boxes = np.array([centre_size(w.box) for w in weak]).reshape(-1, 4)
        for t, w in assign(iou_matrix(predicted[left], weak_boxes), self.weak_iou_threshold):
            track = tracks[left[t]]
            track.match(dataclasses.replace(weak[w], confidence=track.detection.confidence), timestamp_ms)
            self._confirm(label, track, min_hits)
        for track in tracks:
            if track.steps:  # no detection, strong or weak
                track.missed += 1
                track.ended = track.tentative
        result = []
        for d, detection in enumerate(detections):
            track = track_of.get(d)
            if track is None:
                track = Track.start(detection, timestamp_ms)
                tracks.append(track)
            self._confirm(label, track, min_hits)
            result.append(track)
        return result

    def _confirm(self, label: str, track: Track, min_hits: int) -> None:
        if track.tentative and track.hits >= min_hits:
            track.track_id = self._confirmed[label] = self._confirmed.get(label, 0) + 1

    def _end_all_tracks(self) -> None:
        for tracks in self._tracks.values():
            for track in tracks:
                track.ended = True
        self._tracks.clear()

    def _end_tracks_at_a_cut(self, gray: np.ndarray | None) -> None:
        """Ends every track where a new shot starts (see SHOT_CUT_DISTANCE)."""
        if gray is None:
            return
        histogram = cv2.calcHist([gray], [0], None, [32], [0, 256])
        cv2.normalize(histogram, histogram, 1, 0, cv2.NORM_L1)
        thumbnail = cv2.resize(gray, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._shot is not None:
            last_histogram, last_thumbnail = self._shot
            if (cv2.compareHist(last_histogram, histogram, cv2.HISTCMP_BHATTACHARYYA) > SHOT_CUT_DISTANCE
                    and np.abs(thumbnail - last_thumbnail).mean() > SHOT_CUT_PIXELS):
                self._end_all_tracks()
        self._shot = histogram, thumbnail

    def _end_tracks(self, gray: np.ndarray | None, timestamp_ms: float) -> None:
        """Ends the tracks lost for longer than their lifetime, and those whose box left the frame."""
        height, width = gray.shape if gray is not None else (1, 1)
        smallest = MIN_BOX_PX if gray is not None else 0.0
        for label, tracks in self._tracks.items():
            for track in tracks:
                lost_too_long = track.missed > 1 and timestamp_ms - track.seen_ms > self.lost_ms
                if lost_too_long or track.box[2] * width <= smallest or track.box[3] * height <= smallest:
                    track.ended = True
            self._tracks[label] = [t for t in tracks if not t.ended]

    def _add(self, frame: _Pending, gray: np.ndarray | None) -> list[TrackedFrame]:
        self._previous, self._previous_ms = gray, frame.timestamp_ms
        self._pending.append(frame)
        return self._finished()

    def _finished(self) -> list[TrackedFrame]:
        done = []
        while self._pending and self._pending[0].final():
            done.append(self._pending.popleft().result())
        return done
