"""Detections and the detector factory: validation, clipping, names, and no TensorFlow on import."""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from detectors import Box, Detection, build_detector, detector_names
from detectors.stub import StubDetector
from detectors.errors import UnknownDetector
from worker import errors
from worker.analysis.detector_pool import DetectorPool
from worker.options import DetectorSpec

FACE_LANDMARKS = {
    "left_eye": (0.41, 0.12),
    "right_eye": (0.44, 0.12),
    "nose": (0.425, 0.14),
    "mouth_left": (0.41, 0.16),
    "mouth_right": (0.44, 0.16),
}


def test_a_box_inside_the_frame_keeps_its_coordinates():
    box = Box(0.1, 0.2, 0.3, 0.4)

    assert (box.left, box.top, box.width, box.height) == (0.1, 0.2, 0.3, 0.4)


def test_a_box_may_touch_the_far_edges():
    assert Box(0.5, 0.5, 0.5, 0.5).width == 0.5
    assert Box(0.0, 0.0, 1.0, 1.0).height == 1.0


@pytest.mark.parametrize(
    "coordinates",
    [
        (-0.01, 0.1, 0.2, 0.2),  # left of the frame
        (0.1, -0.01, 0.2, 0.2),  # above the frame
        (0.9, 0.1, 0.2, 0.2),  # past the right edge
        (0.1, 0.9, 0.2, 0.2),  # past the bottom edge
    ],
)
def test_a_box_outside_the_frame_is_rejected(coordinates):
    with pytest.raises(ValueError, match="outside the frame"):
        Box(*coordinates)


@pytest.mark.parametrize("coordinates", [(0.1, 0.1, -0.1, 0.2), (0.1, 0.1, 0.2, -0.1)])
def test_a_box_with_a_negative_size_is_rejected(coordinates):
    with pytest.raises(ValueError, match="negative size"):
        Box(*coordinates)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_box_with_a_non_finite_coordinate_is_rejected(bad):
    with pytest.raises(ValueError, match="non-finite"):
        Box(0.1, bad, 0.2, 0.2)


def test_from_corners_clips_to_the_frame_and_orders_the_corners():
    box = Box.from_corners(1.2, 0.8, -0.1, 0.2)

    assert (box.left, box.top, box.width, box.height) == pytest.approx((0.0, 0.2, 1.0, 0.6))


def test_from_corners_of_a_box_entirely_outside_gives_an_empty_box_on_the_edge():
    box = Box.from_corners(1.5, 0.1, 2.0, 0.3)

    assert (box.left, box.width) == (1.0, 0.0)


@pytest.mark.parametrize("confidence", [0.0, 0.5, 1.0])
def test_a_confidence_within_zero_to_one_is_accepted(confidence):
    assert Detection("person", confidence, Box(0, 0, 1, 1)).confidence == confidence


@pytest.mark.parametrize("confidence", [-0.01, 1.01, math.nan])
def test_a_confidence_outside_zero_to_one_is_rejected(confidence):
    with pytest.raises(ValueError, match="confidence"):
        Detection("person", confidence, Box(0, 0, 1, 1))


def test_a_detection_needs_a_label():
    with pytest.raises(ValueError, match="label"):
        Detection("", 0.5, Box(0, 0, 1, 1))


def test_a_face_carries_its_landmarks():
    face = Detection("face", 0.99, Box(0.4, 0.1, 0.05, 0.08), FACE_LANDMARKS)

    assert face.landmarks["nose"] == (0.425, 0.14)


@pytest.mark.parametrize("point", [(1.1, 0.5), (0.5, -0.1)])
def test_a_landmark_outside_the_frame_is_rejected(point):
    with pytest.raises(ValueError, match="landmark nose"):
        Detection("face", 0.99, Box(0.4, 0.1, 0.05, 0.08), {**FACE_LANDMARKS, "nose": point})


def test_the_factory_builds_the_stub_with_its_options():
    detector = build_detector("stub", min_confidence=0.25, batch_size=3)

    assert isinstance(detector, StubDetector)
    assert (detector.min_confidence, detector.batch_size) == (0.25, 3)
    frame = np.full((48, 64, 3), 128, np.uint8)
    assert detector.detect([detector.prepare(frame)])[0].detections[0].label == "object"


def test_an_unknown_detector_name_is_rejected_with_the_known_names():
    with pytest.raises(UnknownDetector) as raised:
        build_detector("cat")

    assert all(name in str(raised.value) for name in ["face", "human", "stub"])
    assert detector_names() == ["face", "human", "stub"]


def test_the_worker_gives_a_detector_error_the_contracts_code():
    with pytest.raises(errors.UnknownDetector) as raised:
        DetectorPool().get([DetectorSpec("cat")])

    assert raised.value.code == "UNKNOWN_DETECTOR" and "'cat'" in str(raised.value)
    assert isinstance(raised.value.__cause__, UnknownDetector)


def test_importing_the_detectors_and_using_the_stub_does_not_import_tensorflow():
    script = (
        "import sys, numpy, detectors, detectors.registry, detectors.stub\n"
        "detectors.build_detector('stub').detect([numpy.zeros((32, 32, 3), numpy.uint8)])\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('worker', 'boto3', 'botocore')], 'imported'\n"
    )

    subprocess.run([sys.executable, "-c", script], cwd=pathlib.Path(__file__).resolve().parent.parent, check=True)
