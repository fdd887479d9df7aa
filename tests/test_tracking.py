"""The tracker: stable ids through crossings and occlusions, confirmation, boxes carried by optical flow,
lifetimes in seconds, counts.

Scenes are real gray frames: textured patches (blurred noise, so optical flow finds corners)
pasted over a textured background, with the detections a perfect detector would return.
"""

from __future__ import annotations

import dataclasses
import itertools

import cv2
import numpy as np
import pytest

from detectors import Box, Detection
from worker.analysis.association import assign
from worker.analysis.tracking import MultiTracker

WIDTH, HEIGHT = 320, 240
FRAME_MS = 40.0  # 25 frames/s
FACE_LANDMARKS = {
    "left_eye": (0.30, 0.30),
    "right_eye": (0.36, 0.30),
    "nose": (0.33, 0.34),
    "mouth_left": (0.31, 0.38),
    "mouth_right": (0.35, 0.38),
}


def texture(height: int, width: int, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (height, width)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 1.5)


BACKGROUND = texture(HEIGHT, WIDTH, seed=0)


@dataclasses.dataclass
class Patch:
    """A textured square moving at a constant pixel velocity."""

    x: int
    y: int
    vx: int
    vy: int
    size: int = 50
    seed: int = 1

    def at(self, frame: int) -> tuple[int, int, int, int]:
        """(left, top, width, height) in pixels on `frame`."""
        return self.x + self.vx * frame, self.y + self.vy * frame, self.size, self.size


def render(patches: list[Patch], frame: int) -> np.ndarray:
    """The gray frame, later patches drawn over earlier ones (parts off the frame cut off)."""
    gray = BACKGROUND.copy()
    for patch in patches:
        left, top, width, height = patch.at(frame)
        pixels = texture(height, width, patch.seed)
        x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + width, WIDTH), min(top + height, HEIGHT)
        if x1 < x2 and y1 < y2:
            gray[y1:y2, x1:x2] = pixels[y1 - top : y2 - top, x1 - left : x2 - left]
    return gray


def detection(left, top, width, height, label="person", confidence=0.9, landmarks=None) -> Detection:
    """A detection from a box in pixels of the test frame."""
    box = Box.from_corners(left / WIDTH, top / HEIGHT, (left + width) / WIDTH, (top + height) / HEIGHT)
    return Detection(label, confidence, box, landmarks)


def detected(patches: list[Patch], frame: int) -> list[Detection]:
    return [detection(*patch.at(frame)) for patch in patches]


def centre_px(box: Box) -> np.ndarray:
    return np.array([(box.left + box.width / 2) * WIDTH, (box.top + box.height / 2) * HEIGHT])


def iou(a: Box, b: Box) -> float:
    overlap_x = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    overlap_y = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    overlap = overlap_x * overlap_y
    return overlap / (a.width * a.height + b.width * b.height - overlap)


class Feed:
    """Drives a tracker as the pipeline does: frames numbered in order, FRAME_MS * `step` apart, and
    collects the frames the tracker finishes."""

    def __init__(self, tracker: MultiTracker, step: int = 1):
        self.tracker, self.step = tracker, step
        self.index = 0
        self.finished: dict[int, list[Detection]] = {}

    def observe(self, gray, detections, weak=()) -> list[Detection] | None:
        """The frame's final detections if the tracker finished it at once, else None."""
        return self._take(self.tracker.observe(self.index, self.index * FRAME_MS, gray, detections, weak))

    def carry(self, gray) -> list[Detection] | None:
        return self._take(self.tracker.carry(self.index, self.index * FRAME_MS, gray))

    def flush(self) -> list[list[Detection]]:
        """Every frame's final detections, in order."""
        self._collect(self.tracker.flush())
        assert sorted(self.finished) == list(range(0, self.index, self.step))  # each frame once, none lost
        return [self.finished[i] for i in sorted(self.finished)]

    def _take(self, frames) -> list[Detection] | None:
        index = self.index
        self.index += self.step
        self._collect(frames)
        return self.finished.get(index)

    def _collect(self, frames) -> None:
        for frame in frames:
            assert frame.index not in self.finished and frame.timestamp_ms == frame.index * FRAME_MS
            assert all(frame.index > done for done in self.finished)  # in order
            self.finished[frame.index] = frame.detections


def immediate() -> MultiTracker:
    """A tracker that confirms a track on its first detection, so every frame is final at once."""
    return MultiTracker(min_hits=1)


def run(tracker: MultiTracker, patches: list[Patch], frames: int, detect_every: int) -> list[list[Detection]]:
    """`observe` on every detect_every-th frame, `carry` between, then `flush`: each frame's final detections."""
    shuffle = np.random.default_rng(7)
    feed = Feed(tracker)
    for frame in range(frames):
        gray = render(patches, frame)
        if frame % detect_every == 0:
            found = detected(patches, frame)
            shuffle.shuffle(found)  # the detector's order says nothing about identity
            feed.observe(gray, found)
        else:
            feed.carry(gray)
    return feed.flush()


def test_a_box_moving_across_30_frames_keeps_one_id():
    tracker = MultiTracker()
    patch = Patch(x=10, y=60, vx=8, vy=2)

    results = run(tracker, [patch], frames=30, detect_every=1)

    assert [[d.track_id for d in found] for found in results] == [[1]] * 30
    assert tracker.track_counts() == {"person": 1}


@pytest.mark.parametrize(
    ("detect_every", "speed"),
    [
        (1, 24),  # so fast that each box's last position overlaps the other's detection more than its own
        (3, 8),  # A hides most of B for several carried frames
    ],
)
def test_ids_do_not_swap_when_two_boxes_cross(detect_every, speed):
    # A passes in front of B, 10 px higher: at the crossing their boxes overlap with an IoU of 0.71.
    a = Patch(x=4, y=80, vx=speed, vy=0, size=60, seed=1)
    b = Patch(x=256, y=90, vx=-speed, vy=0, size=60, seed=2)
    frames = (b.x - a.x) // speed  # until they have swapped sides
    tracker = MultiTracker()

    results = run(tracker, [b, a], frames=frames, detect_every=detect_every)

    [id_of_a] = [d.track_id for d in results[0] if iou(d.box, detection(*a.at(0)).box) > 0.5]
    id_of_b = 3 - id_of_a
    for frame, found in enumerate(results):
        truth = {id_of_a: detection(*a.at(frame)).box, id_of_b: detection(*b.at(frame)).box}
        assert sorted(d.track_id for d in found) == [1, 2], frame
        for d in found:
            assert iou(d.box, truth[d.track_id]) > 0.5, (frame, d)
    assert tracker.track_counts() == {"person": 2}


def test_identity_survives_a_short_occlusion_behind_another_object():
    # A walks behind B, which stands still: for 6 frames (0.24 s) the detector sees B only.
    a = Patch(x=10, y=90, vx=10, vy=0, size=50, seed=1)
    b = Patch(x=130, y=70, vx=0, vy=0, size=90, seed=2)
    hidden = range(11, 17)
    feed = Feed(MultiTracker())
    for frame in range(28):
        feed.observe(render([a, b], frame), detected([b] if frame in hidden else [a, b], frame))

    results = feed.flush()

    id_of_a = next(d.track_id for d in results[0] if iou(d.box, detection(*a.at(0)).box) > 0.5)
    for frame in [*range(11), *range(17, 28)]:
        [found] = [d for d in results[frame] if iou(d.box, detection(*a.at(frame)).box) > 0.5]
        assert found.track_id == id_of_a, frame
    assert all(len(results[frame]) == 1 for frame in hidden)  # A is not reported while unseen
    assert feed.tracker.track_counts() == {"person": 2}


def test_confirmation_delays_the_frames_but_loses_no_box():
    patch = Patch(x=40, y=80, vx=4, vy=0)
    feed = Feed(MultiTracker(min_hits=3))

    assert feed.observe(render([patch], 0), detected([patch], 0)) is None  # held back: the track is tentative
    assert feed.observe(render([patch], 1), detected([patch], 1)) is None
    assert feed.carry(render([patch], 2)) is None
    [confirmed] = feed.observe(render([patch], 3), detected([patch], 3))  # the third hit confirms it

    assert confirmed.track_id == 1
    results = feed.flush()
    assert [[(d.track_id, d.source) for d in found] for found in results] == [
        [(1, "detector")], [(1, "detector")], [(1, "tracker")], [(1, "detector")]]
    assert [found[0].box for found in results[:2]] == [detection(*patch.at(f)).box for f in (0, 1)]


def test_a_track_that_dies_unconfirmed_is_never_reported_and_takes_no_id():
    person = Patch(x=40, y=80, vx=0, vy=0, seed=1)
    feed = Feed(MultiTracker(min_hits=2))
    false_once = detection(220, 150, 40, 40)

    feed.observe(render([person], 0), [*detected([person], 0), false_once])
    feed.observe(render([person], 1), detected([person], 1))
    feed.observe(render([person], 2), [*detected([person], 2), detection(230, 40, 40, 40)])  # tentative at the end
    results = feed.flush()

    assert [[d.track_id for d in found] for found in results] == [[1], [1], [1]]
    assert feed.tracker.track_counts() == {"person": 1}


@pytest.mark.parametrize("sample_every", [1, 3])
@pytest.mark.parametrize(("gap_s", "same_id"), [(0.8, True), (1.6, False)])
def test_a_lost_track_lives_for_seconds_of_video_whatever_the_sampling(sample_every, gap_s, same_id):
    patch = Patch(x=100, y=100, vx=0, vy=0)
    feed = Feed(MultiTracker(lost_s=1.2), step=sample_every)
    gone = range(12, 12 + round(gap_s * 1000 / FRAME_MS))
    for frame in range(0, gone.stop + 6, sample_every):
        feed.observe(render([patch] if frame not in gone else [], 0), [] if frame in gone else detected([patch], 0))

    ids = {d.track_id for found in feed.flush() for d in found}

    assert ids == ({1} if same_id else {1, 2})


def test_a_lost_track_survives_one_detector_frame_however_short_its_lifetime():
    patch = Patch(x=100, y=100, vx=0, vy=0)
    feed = Feed(MultiTracker(min_hits=1, lost_s=0.001), step=5)  # 200 ms between detector frames
    for frame in range(6):
        feed.observe(render([patch], 0), [] if frame in (2, 4, 5) else detected([patch], 0))
    feed.observe(render([patch], 0), detected([patch], 0))

    assert [[d.track_id for d in found] for found in feed.flush()] == [[1], [1], [], [1], [], [], [2]]


def test_where_analysed_frames_are_far_apart_a_single_detection_is_reported():
    # One second between analysed frames: a person seen once is as sure as the tracker can tell.
    person, passer_by = Patch(x=40, y=80, vx=0, vy=0, seed=1), Patch(x=200, y=60, vx=0, vy=0, seed=2)
    feed = Feed(MultiTracker(min_hits=2), step=25)

    feed.observe(render([person, passer_by], 0), detected([person, passer_by], 0))
    feed.observe(render([person], 0), detected([person], 0))
    results = feed.flush()

    assert [sorted(d.track_id for d in found) for found in results] == [[1, 2], [1]]


def test_no_identity_carries_over_a_cut_to_another_shot():
    # given a box tracked in one shot, and a cut to a darker shot with another object where it was
    tracker = MultiTracker()
    patch = Patch(x=100, y=80, vx=2, vy=0)
    feed = Feed(tracker)
    for frame in range(10):
        gray = render([patch], frame)
        if frame >= 5:
            gray = (gray // 3).astype(np.uint8)  # the next shot: another scene, another exposure
        # when the detector finds a box at the same place on both sides of the cut
        feed.observe(gray, detected([patch], frame))
    results = feed.flush()

    # then the object after the cut is a new track, and none of the first shot's boxes is lost
    assert [found[0].track_id for found in results] == [1] * 5 + [2] * 5
    assert tracker.track_counts() == {"person": 2}


def test_carry_follows_a_moving_textured_box():
    patch = Patch(x=60, y=50, vx=5, vy=3, size=60)
    # Loose, as a person's box is: over half of it is background, which does not move.
    left, top, _, _ = patch.at(0)
    feed = Feed(immediate())
    feed.observe(render([patch], 0), [detection(left - 15, top - 15, 90, 90, confidence=0.77)])

    for frame in range(1, 5):
        [carried] = feed.carry(render([patch], frame))

    assert (carried.source, carried.track_id, carried.label, carried.confidence) == ("tracker", 1, "person", 0.77)
    assert all(type(value) is float for value in dataclasses.astuple(carried.box))  # plain floats, as in JSON
    assert np.abs(centre_px(carried.box) - centre_px(detection(*patch.at(4)).box)).max() < 1.5
    assert abs(carried.box.width * WIDTH - 90) < 2 and abs(carried.box.height * HEIGHT - 90) < 2


def test_carry_scales_a_box_whose_object_grows():
    # The same textured object seen 4 % larger on each frame, around a fixed centre.
    scene = texture(200, 200, seed=3)
    sizes = [round(60 * 1.04**frame) for frame in range(5)]

    def frame_with(size: int) -> np.ndarray:
        gray = BACKGROUND.copy()
        gray[120 - size // 2 : 120 - size // 2 + size, 160 - size // 2 : 160 - size // 2 + size] = cv2.resize(
            scene[70:130, 70:130], (size, size), interpolation=cv2.INTER_LINEAR
        )
        return gray

    feed = Feed(immediate())
    feed.observe(frame_with(sizes[0]), [detection(130, 90, 60, 60)])
    for size in sizes[1:]:
        [carried] = feed.carry(frame_with(size))

    assert abs(carried.box.width * WIDTH - sizes[-1]) < 3
    assert np.abs(centre_px(carried.box) - [160, 120]).max() < 2


def test_carried_landmarks_move_with_the_face():
    patch = Patch(x=80, y=60, vx=4, vy=-2, size=60)
    face = detection(*patch.at(0), label="face", landmarks=FACE_LANDMARKS)
    feed = Feed(immediate())
    feed.observe(render([patch], 0), [face])

    for frame in range(1, 4):
        [carried] = feed.carry(render([patch], frame))

    to_pixels = np.array([WIDTH, HEIGHT])
    for name, point in FACE_LANDMARKS.items():
        expected = np.array(point) * to_pixels + [patch.vx * 3, patch.vy * 3]
        assert np.abs(np.array(carried.landmarks[name]) * to_pixels - expected).max() < 1.5


def test_without_an_image_the_motion_model_carries_the_box_until_it_leaves_the_frame():
    feed = Feed(immediate())
    for frame in range(6):
        feed.observe(None, [detection(100 + 20 * frame, 100, 40, 40)])

    carried = [feed.carry(None) for _ in range(10)]

    centres = [centre_px(found[0].box)[0] for found in carried if found]
    assert 225 < centres[0] < 245  # about 20 px a frame on from the last detection, at 220
    assert all(later > earlier for earlier, later in zip(centres, centres[1:]))
    assert [len(found) for found in carried][-1] == 0  # gone once wholly outside the frame
    [reappeared] = feed.observe(None, [detection(100, 100, 40, 40)])
    assert reappeared.track_id == 2


def test_a_track_the_detector_missed_is_carried_silently_and_keeps_its_id():
    patch = Patch(x=40, y=80, vx=4, vy=0)
    feed = Feed(immediate())
    feed.observe(render([patch], 0), detected([patch], 0))
    feed.observe(render([patch], 1), [])  # the detector flickers

    assert feed.carry(render([patch], 2)) == []
    [found] = feed.observe(render([patch], 3), detected([patch], 3))
    assert found.track_id == 1


def test_a_weak_detection_keeps_the_track_reported_between_detector_frames():
    patch = Patch(x=40, y=80, vx=4, vy=0)
    feed = Feed(immediate())
    feed.observe(render([patch], 0), [detection(*patch.at(0), confidence=0.8)])
    weak = detection(*patch.at(1), confidence=0.35)

    assert feed.observe(render([patch], 1), [], weak=[weak]) == []  # never reported itself

    [carried] = feed.carry(render([patch], 2))
    assert (carried.track_id, carried.source, carried.confidence) == (1, "tracker", 0.8)
    assert iou(carried.box, detection(*patch.at(2)).box) > 0.8
    [found] = feed.observe(render([patch], 3), detected([patch], 3))
    assert found.track_id == 1
    assert feed.tracker.track_counts() == {"person": 1}


def test_a_weak_detection_starts_no_track_and_matches_only_its_label_nearby():
    person = Patch(x=40, y=80, vx=0, vy=0)
    feed = Feed(immediate())
    feed.observe(render([person], 0), detected([person], 0))
    elsewhere = detection(200, 150, 50, 50, confidence=0.35)
    same_place_other_label = detection(*person.at(1), label="face", confidence=0.35)

    assert feed.observe(render([person], 1), [], weak=[elsewhere, same_place_other_label]) == []

    assert feed.carry(render([person], 2)) == []  # missed: the weak detections vouch for nothing here
    assert feed.tracker.track_counts() == {"person": 1}


def test_track_counts_count_objects_not_boxes():
    people = [Patch(x=10, y=20, vx=5, vy=0, seed=1), Patch(x=200, y=150, vx=-5, vy=0, seed=2)]
    face = Patch(x=150, y=40, vx=0, vy=3, size=30, seed=3)
    feed = Feed(MultiTracker())

    for frame in range(12):
        found = [*detected(people, frame), detection(*face.at(frame), label="face")]
        feed.observe(render([*people, face], frame), found)

    assert feed.tracker.track_counts() == {"person": 2, "face": 1}


def test_observe_returns_the_detections_unchanged_but_for_track_id_and_source():
    frames = [
        [
            detection(10, 10, 50, 80, confidence=0.61),
            detection(20, 15, 20, 20, label="face", confidence=0.95, landmarks=FACE_LANDMARKS),
            detection(200, 100, 40, 90, confidence=0.83),
        ],
        [
            detection(201, 101, 40, 90, confidence=0.8),
            detection(12, 10, 50, 80, confidence=0.7),
            detection(21, 15, 20, 20, label="face", confidence=0.97, landmarks=FACE_LANDMARKS),
        ],
    ]
    feed = Feed(immediate())

    for given in frames:
        returned = feed.observe(BACKGROUND, given)

        assert [dataclasses.replace(d, track_id=None) for d in returned] == given
        assert all(d.source == "detector" and isinstance(d.track_id, int) for d in returned)
    assert [d.track_id for d in returned] == [2, 1, 1]


def test_each_label_has_its_own_tracks_and_ids():
    feed = Feed(immediate())
    person, face = detection(100, 60, 50, 50), detection(100, 60, 50, 50, label="face")

    assert [d.track_id for d in feed.observe(BACKGROUND, [person, face])] == [1, 1]
    assert [d.track_id for d in feed.observe(BACKGROUND, [face])] == [1]  # not the person's track
    assert [d.track_id for d in feed.observe(BACKGROUND, [person])] == [1]
    assert feed.tracker.track_counts() == {"person": 1, "face": 1}


def test_each_tracker_starts_its_ids_from_one():
    for _ in range(2):
        feed = Feed(immediate())
        assert [d.track_id for d in feed.observe(BACKGROUND, [detection(100, 60, 50, 50)])] == [1]


def test_assignment_prefers_the_pairing_that_matches_everyone():
    # Greedy would give track 0 the first detection (0.6) and leave track 1 with nothing.
    overlaps = np.array([[0.6, 0.55], [0.58, 0.0]])

    assert sorted(assign(overlaps, threshold=0.3)) == [(0, 1), (1, 0)]


def test_assignment_leaves_pairs_below_the_threshold_unmatched():
    assert assign(np.array([[0.2, 0.1], [0.05, 0.9]]), threshold=0.3) == [(1, 1)]
    assert assign(np.zeros((0, 3)), threshold=0.3) == []


@pytest.mark.parametrize("shape", [(4, 4), (3, 6), (6, 3)])
def test_assignment_finds_the_largest_total_overlap(shape):
    rows, columns = shape
    for seed in range(10):
        rng = np.random.default_rng(seed)
        overlaps = np.where(rng.random(shape) < 0.6, rng.random(shape), 0.0)
        admissible = np.where(overlaps >= 0.3, overlaps, 0.0)
        pairings = (zip(range(rows), order) if rows <= columns else zip(order, range(columns))
                    for order in itertools.permutations(range(max(shape)), min(shape)))
        best = max(sum(admissible[r, c] for r, c in pairing) for pairing in pairings)

        pairs = assign(overlaps, threshold=0.3)

        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
        assert all(overlaps[r, c] >= 0.3 for r, c in pairs)
        assert sum(overlaps[r, c] for r, c in pairs) == pytest.approx(best)
