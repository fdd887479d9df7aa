"""The tracker: stable ids, crossings, boxes carried by optical flow, tracks that end, counts.

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
from worker.tracking import MultiTracker, assign, min_cost_assignment

WIDTH, HEIGHT = 320, 240
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


def run(tracker: MultiTracker, patches: list[Patch], frames: int, detect_every: int) -> list[list[Detection]]:
    """Drives the tracker as the pipeline does: `observe` on every detect_every-th frame, `carry` between."""
    shuffle = np.random.default_rng(7)
    results = []
    for frame in range(frames):
        gray = render(patches, frame)
        if frame % detect_every == 0:
            found = detected(patches, frame)
            shuffle.shuffle(found)  # the detector's order says nothing about identity
            results.append(tracker.observe(gray, found))
        else:
            results.append(tracker.carry(gray))
    return results


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


def test_carry_follows_a_moving_textured_box():
    patch = Patch(x=60, y=50, vx=5, vy=3, size=60)
    # Loose, as a person's box is: over half of it is background, which does not move.
    left, top, _, _ = patch.at(0)
    tracker = MultiTracker()
    tracker.observe(render([patch], 0), [detection(left - 15, top - 15, 90, 90, confidence=0.77)])

    for frame in range(1, 5):
        [carried] = tracker.carry(render([patch], frame))

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

    tracker = MultiTracker()
    tracker.observe(frame_with(sizes[0]), [detection(130, 90, 60, 60)])
    for size in sizes[1:]:
        [carried] = tracker.carry(frame_with(size))

    assert abs(carried.box.width * WIDTH - sizes[-1]) < 3
    assert np.abs(centre_px(carried.box) - [160, 120]).max() < 2


def test_carried_landmarks_move_with_the_face():
    patch = Patch(x=80, y=60, vx=4, vy=-2, size=60)
    face = detection(*patch.at(0), label="face", landmarks=FACE_LANDMARKS)
    tracker = MultiTracker()
    tracker.observe(render([patch], 0), [face])

    for frame in range(1, 4):
        [carried] = tracker.carry(render([patch], frame))

    to_pixels = np.array([WIDTH, HEIGHT])
    for name, point in FACE_LANDMARKS.items():
        expected = np.array(point) * to_pixels + [patch.vx * 3, patch.vy * 3]
        assert np.abs(np.array(carried.landmarks[name]) * to_pixels - expected).max() < 1.5


def test_without_texture_the_velocity_carries_the_box_until_it_leaves_the_frame():
    flat = np.full((HEIGHT, WIDTH), 128, np.uint8)
    tracker = MultiTracker()
    for frame in range(3):
        tracker.observe(flat, [detection(200 + 20 * frame, 100, 40, 40)])

    carried = [tracker.carry(flat) for _ in range(4)]

    assert np.abs(centre_px(carried[0][0].box) - [280, 120]).max() < 1e-6
    # 20 px a frame: at the edge on the second, half out on the third, gone on the fourth.
    assert [[round(d.box.width * WIDTH) for d in found] for found in carried] == [[40], [40], [20], []]

    [reappeared] = tracker.observe(flat, [detection(200, 100, 40, 40)])
    assert reappeared.track_id == 2


@pytest.mark.parametrize(("frames_missing", "id_when_back"), [(2, 1), (3, 2)])
def test_a_track_ends_after_max_missed_detector_frames_without_its_object(frames_missing, id_when_back):
    patch = Patch(x=100, y=100, vx=0, vy=0)
    tracker = MultiTracker(max_missed=2)
    for _ in range(3):
        tracker.observe(render([patch], 0), detected([patch], 0))
    for _ in range(frames_missing):
        assert tracker.observe(BACKGROUND, []) == []

    [back] = tracker.observe(render([patch], 0), detected([patch], 0))

    assert back.track_id == id_when_back
    assert tracker.track_counts() == {"person": id_when_back}


def test_a_track_the_detector_missed_is_carried_silently_and_keeps_its_id():
    patch = Patch(x=40, y=80, vx=4, vy=0)
    tracker = MultiTracker()
    tracker.observe(render([patch], 0), detected([patch], 0))
    tracker.observe(render([patch], 1), [])  # the detector flickers

    assert tracker.carry(render([patch], 2)) == []
    [found] = tracker.observe(render([patch], 3), detected([patch], 3))
    assert found.track_id == 1


def test_a_weak_detection_keeps_the_track_reported_between_detector_frames():
    patch = Patch(x=40, y=80, vx=4, vy=0)
    tracker = MultiTracker()
    tracker.observe(render([patch], 0), [detection(*patch.at(0), confidence=0.8)])
    weak = detection(*patch.at(1), confidence=0.35)

    assert tracker.observe(render([patch], 1), [], weak=[weak]) == []  # never reported itself

    [carried] = tracker.carry(render([patch], 2))
    assert (carried.track_id, carried.source, carried.confidence) == (1, "tracker", 0.8)
    assert iou(carried.box, detection(*patch.at(2)).box) > 0.8
    [found] = tracker.observe(render([patch], 3), detected([patch], 3))
    assert found.track_id == 1
    assert tracker.track_counts() == {"person": 1}


def test_a_weak_detection_starts_no_track_and_matches_only_its_label_nearby():
    person = Patch(x=40, y=80, vx=0, vy=0)
    tracker = MultiTracker()
    tracker.observe(render([person], 0), detected([person], 0))
    elsewhere = detection(200, 150, 50, 50, confidence=0.35)
    same_place_other_label = detection(*person.at(1), label="face", confidence=0.35)

    assert tracker.observe(render([person], 1), [], weak=[elsewhere, same_place_other_label]) == []

    assert tracker.carry(render([person], 2)) == []  # missed: the weak detections vouch for nothing here
    assert tracker.track_counts() == {"person": 1}


def test_track_counts_count_objects_not_boxes():
    people = [Patch(x=10, y=20, vx=5, vy=0, seed=1), Patch(x=200, y=150, vx=-5, vy=0, seed=2)]
    face = Patch(x=150, y=40, vx=0, vy=3, size=30, seed=3)
    tracker = MultiTracker()

    for frame in range(12):
        gray = render([*people, face], frame)
        tracker.observe(gray, [*detected(people, frame), detection(*face.at(frame), label="face")])

    assert tracker.track_counts() == {"person": 2, "face": 1}


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
    tracker = MultiTracker()

    for given in frames:
        returned = tracker.observe(BACKGROUND, given)

        assert [dataclasses.replace(d, track_id=None) for d in returned] == given
        assert all(d.source == "detector" and isinstance(d.track_id, int) for d in returned)
    assert [d.track_id for d in returned] == [2, 1, 1]


def test_each_label_has_its_own_tracks_and_ids():
    tracker = MultiTracker()
    person, face = detection(100, 60, 50, 50), detection(100, 60, 50, 50, label="face")

    assert [d.track_id for d in tracker.observe(BACKGROUND, [person, face])] == [1, 1]
    assert [d.track_id for d in tracker.observe(BACKGROUND, [face])] == [1]  # not the person's track
    assert [d.track_id for d in tracker.observe(BACKGROUND, [person])] == [1]
    assert tracker.track_counts() == {"person": 1, "face": 1}


def test_assignment_prefers_the_pairing_that_matches_everyone():
    # Greedy would give track 0 the first detection (0.6) and leave track 1 with nothing.
    overlaps = np.array([[0.6, 0.55], [0.58, 0.0]])

    assert sorted(assign(overlaps, threshold=0.3)) == [(0, 1), (1, 0)]


def test_assignment_leaves_pairs_below_the_threshold_unmatched():
    assert assign(np.array([[0.2, 0.1], [0.05, 0.9]]), threshold=0.3) == [(1, 1)]
    assert assign(np.zeros((0, 3)), threshold=0.3) == []


@pytest.mark.parametrize("shape", [(4, 4), (3, 6), (6, 3)])
def test_min_cost_assignment_finds_the_optimum(shape):
    costs = np.random.default_rng(sum(shape)).random((20, *shape))
    for cost in costs:
        rows, columns = shape
        best = min(
            sum(cost[r, c] for r, c in zip(range(rows), perm)) if rows <= columns
            else sum(cost[r, c] for r, c in zip(perm, range(columns)))
            for perm in itertools.permutations(range(max(shape)), min(shape))
        )

        pairs = min_cost_assignment(cost)

        assert len(pairs) == min(shape)
        assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == min(shape)
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(best)


@pytest.mark.parametrize("seed", range(20))
def test_assignment_equals_the_search_over_the_whole_matrix(seed):
    """Pairs without rivals are taken without a search; what is left gets the optimal search."""
    rng = np.random.default_rng(seed)
    iou = np.where(rng.random((7, 9)) < 0.25, rng.random((7, 9)), 0.0)

    admissible = np.where(iou >= 0.3, iou, 0.0)
    whole = [(r, c) for r, c in min_cost_assignment(-admissible) if admissible[r, c] > 0]
    assert assign(iou, threshold=0.3) == sorted(whole)
