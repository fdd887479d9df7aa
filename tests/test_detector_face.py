"""The `face:mtcnn` detector on real short_hamilton_clip.mp4 frames: parity with MTCNN called directly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.base import LANDMARK_NAMES
from support.helpers import MODEL_TOLERANCE, assert_same_detections, read_frames

pytestmark = pytest.mark.slow

# Singer and pianist (0), singer alone (25, 100), no face (50), the audience (225, 250).
FRAME_FACES = {0: 2, 25: 1, 50: 0, 100: 1, 225: 4, 250: 4}


@pytest.fixture(scope="module")
def rgb_frames(data_dir) -> list[np.ndarray]:
    bgr = read_frames(data_dir / "short_hamilton_clip.mp4", FRAME_FACES)
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in bgr]


@pytest.fixture(scope="module")
def mtcnn():
    """MTCNN called directly, one frame at a time: the reference."""
    from mtcnn import MTCNN

    return MTCNN()


def direct_faces(mtcnn, frame: np.ndarray, min_confidence: float, **options) -> list[dict]:
    return [face for face in mtcnn.detect_faces(frame, **options) if face["confidence"] >= min_confidence]


def assert_same_faces(found, expected, frame):
    """Same faces in the same order; mtcnn's own boxes are in whole pixels, so within one pixel. The
    detector runs MTCNN in batches and this reference frame by frame: scores within the tolerance."""
    height, width = frame.shape[:2]
    assert [face.label for face in found] == ["face"] * len(expected)
    for face, reference in zip(found, expected):
        x, y, w, h = reference["box"]
        assert face.confidence == pytest.approx(float(reference["confidence"]), abs=MODEL_TOLERANCE)
        assert (face.box.left, face.box.top) == pytest.approx((x / width, y / height), abs=1 / width)
        assert (face.box.width, face.box.height) == pytest.approx((w / width, h / height), abs=1 / width)
        for name in LANDMARK_NAMES:
            px, py = reference["keypoints"][name]
            assert face.landmarks[name] == pytest.approx((px / width, py / height), abs=1 / width)


def test_the_detector_equals_mtcnn_called_directly(mtcnn_face_detector, rgb_frames, mtcnn):
    found = [findings.detections for findings in mtcnn_face_detector.detect(rgb_frames)]

    assert [len(faces) for faces in found] == list(FRAME_FACES.values())
    for faces, frame in zip(found, rgb_frames):
        assert_same_faces(faces, direct_faces(mtcnn, frame, 0.9), frame)


def test_a_threshold_below_mtcnns_own_keeps_what_mtcnn_keeps_at_that_threshold(rgb_frames, mtcnn):
    from detectors.face import FaceDetector

    found = [findings.detections for findings in FaceDetector(min_confidence=0.5).detect(rgb_frames)]

    for faces, frame in zip(found, rgb_frames):
        assert_same_faces(faces, direct_faces(mtcnn, frame, 0.5, threshold_onet=0.5), frame)
    # MTCNN's default ONet threshold (0.8) would have dropped these.
    assert sum(map(len, found)) > sum(FRAME_FACES.values())


def test_weak_detections_are_the_faces_scored_from_the_weak_floor_to_min_confidence(mtcnn_face_detector, rgb_frames,
                                                                                    mtcnn):
    found = mtcnn_face_detector.detect(rgb_frames)

    assert mtcnn_face_detector.weak_floor == pytest.approx(0.45)
    for findings, frame in zip(found, rgb_frames):
        weak = [face for face in direct_faces(mtcnn, frame, 0.45, threshold_onet=0.45) if face["confidence"] < 0.9]
        assert_same_faces(findings.weak, weak, frame)


def test_a_face_scored_exactly_at_the_threshold_is_kept(mtcnn_face_detector, rgb_frames):
    from detectors.face import FaceDetector

    audience = rgb_frames[-1]
    faces = mtcnn_face_detector.detect([audience])[0].detections
    weakest = min(face.confidence for face in faces)

    at_its_score = FaceDetector(min_confidence=weakest).detect([audience])[0].detections

    # The same call on the same frame gives the same scores bit for bit, so the weakest is exactly at the
    # threshold; mtcnn's own threshold_onet=weakest would drop it.
    assert at_its_score == faces


def test_faces_carry_five_landmarks_inside_their_box(mtcnn_face_detector, rgb_frames):
    faces = [face for findings in mtcnn_face_detector.detect(rgb_frames) for face in findings.detections]

    assert faces
    for face in faces:
        assert tuple(face.landmarks) == LANDMARK_NAMES
        box = face.box
        for x, y in face.landmarks.values():
            # Landmarks are predicted, not clipped to the box: allow a tenth of the box's size.
            assert box.left - box.width / 10 <= x <= box.left + box.width * 1.1
            assert box.top - box.height / 10 <= y <= box.top + box.height * 1.1


def test_one_batch_and_frame_by_frame_give_the_same_faces(mtcnn_face_detector, rgb_frames):
    from detectors.face import FaceDetector

    in_one_batch = FaceDetector(batch_size=len(rgb_frames)).detect(rgb_frames)
    frame_by_frame = [mtcnn_face_detector.detect([frame])[0] for frame in rgb_frames]

    assert_same_detections(in_one_batch, frame_by_frame)


@pytest.mark.parametrize(
    "frames",
    [
        [np.zeros((360, 640, 3), np.uint8)],
        [np.zeros((360, 640, 3), np.uint8)] * 3,
        [np.full((360, 640, 3), 128, np.uint8), np.zeros((360, 640, 3), np.uint8)],
    ],
    ids=["one-black", "three-black", "grey-and-black"],
)
def test_frames_without_faces_give_no_faces(mtcnn_face_detector, frames):
    assert [findings.detections for findings in mtcnn_face_detector.detect(frames)] == [[] for _ in frames]


def test_a_frame_with_faces_among_empty_ones_keeps_its_faces(mtcnn_face_detector, rgb_frames):
    blank = np.zeros_like(rgb_frames[0])

    found = mtcnn_face_detector.detect([blank, rgb_frames[-1], blank])

    assert_same_detections([findings.detections for findings in found],
                           [[], mtcnn_face_detector.detect([rgb_frames[-1]])[0].detections, []])


def test_frames_of_different_sizes_give_each_frames_own_faces(mtcnn_face_detector, rgb_frames):
    smaller = cv2.resize(rgb_frames[0], (480, 270))

    found = mtcnn_face_detector.detect([smaller, rgb_frames[-1]])

    # Frames of different sizes run one at a time: the same calls as here, equal bit for bit.
    assert found == [mtcnn_face_detector.detect([smaller])[0], mtcnn_face_detector.detect([rgb_frames[-1]])[0]]


def test_the_detector_describes_its_model(mtcnn_face_detector):
    assert mtcnn_face_detector.describe() == {"name": "face", "label": "face", "model": "mtcnn 1.0.0", "min_confidence": 0.9}
