"""Views of a frame for the person model: crop geometry, boxes mapped back, merging across views (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import views
from detectors.views import View


def test_a_16_9_frame_is_two_overlapping_squares_covering_it():
    squares = views.tiling("auto")(1280, 720)

    assert squares == [View(0, 0, 720, 720), View(560, 0, 720, 720)]


def test_a_portrait_frame_is_squares_down_it_and_a_4_3_frame_is_seen_whole():
    assert views.tiling("auto")(720, 1280) == [View(0, 0, 720, 720), View(0, 560, 720, 720)]
    assert views.tiling("auto")(640, 480) == [View(0, 0, 640, 480)]
    assert views.tiling("auto")(2000, 500) == [View(0, 0, 500, 500), View(500, 0, 500, 500),
                                               View(1000, 0, 500, 500), View(1500, 0, 500, 500)]


def test_none_is_the_whole_frame_and_2x2_adds_four_overlapping_quarters():
    assert views.tiling("none")(1280, 720) == [View(0, 0, 1280, 720)]
    whole, *quarters = views.tiling("2x2")(1280, 720)

    assert whole == View(0, 0, 1280, 720)
    assert quarters == [View(0, 0, 736, 414), View(544, 0, 736, 414), View(0, 306, 736, 414), View(544, 306, 736, 414)]


def test_the_padded_square_centres_the_frame():
    assert views.padded_square(1280, 720) == [View(0, -280, 1280, 1280)]


def test_an_unknown_tiles_setting_names_the_choices():
    with pytest.raises(ValueError, match=r"unknown tiles '3x3'; choose one of: auto, none, 2x2"):
        views.tiling("3x3")


def test_a_view_inside_the_frame_is_a_slice_and_one_past_it_is_zero_padded():
    batch = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)

    inside = views.crop(batch, View(2, 0, 4, 4))
    padded = views.crop(batch, View(0, -1, 6, 6))

    assert np.shares_memory(inside, batch) and np.array_equal(inside, batch[:, :, 2:6])
    assert padded.shape == (2, 6, 6, 3)
    assert np.array_equal(padded[:, 1:5], batch) and not padded[:, 0].any() and not padded[:, 5].any()


def test_boxes_map_back_to_frame_fractions():
    in_view = np.array([[0.0, 0.0, 1.0, 1.0], [0.5, 0.25, 0.75, 1.0]])

    right_square = views.to_frame(in_view, View(560, 0, 720, 720), 1280, 720)
    padded = views.to_frame(np.array([[0.25, 0.25, 0.5, 0.75]]), View(0, -280, 1280, 1280), 1280, 720)

    np.testing.assert_allclose(right_square, [[0.4375, 0, 1, 1], [(560 + 360) / 1280, 0.25, (560 + 540) / 1280, 1]],
                               atol=1e-12)
    np.testing.assert_allclose(padded, [[0.25, (320 - 280) / 720, 0.5, (960 - 280) / 720]], atol=1e-12)


def test_only_edges_inside_the_frame_cut_a_box():
    left_square, right_square = View(0, 0, 720, 720), View(560, 0, 720, 720)
    boxes = np.array([[0.0, 0.0, 0.3, 1.0], [0.7, 0.2, 1.0, 0.9], [0.4, 0.4, 0.6, 0.6]])

    assert views.cut_by_view(boxes, left_square, 1280, 720).tolist() == [False, True, False]
    assert views.cut_by_view(boxes, right_square, 1280, 720).tolist() == [True, False, False]


def test_one_person_in_the_overlap_of_two_views_is_one_box():
    # The same person found by both squares, the boxes a little apart.
    boxes = np.array([[0.47, 0.2, 0.53, 0.8], [0.471, 0.21, 0.531, 0.79]])

    merged, kept = views.merge(boxes, [0.7, 0.9], [False, False])

    assert kept == [1]
    np.testing.assert_allclose(merged, boxes[[1]])


def test_a_box_mostly_inside_a_better_one_is_dropped_but_a_neighbour_is_kept():
    person, legs, neighbour = [0.1, 0.1, 0.3, 0.9], [0.12, 0.5, 0.28, 0.9], [0.29, 0.1, 0.49, 0.9]

    merged, kept = views.merge(np.array([person, legs, neighbour]), [0.8, 0.6, 0.7], [False, False, False])

    assert kept == [0, 2]
    np.testing.assert_allclose(merged, [person, neighbour])


def test_parts_cut_by_two_views_become_one_box_covering_both():
    # A wide person across the seam: the left square sees it up to its edge, the right square from its edge.
    left_part, right_part = [0.40, 0.2, 0.5625, 0.9], [0.4375, 0.2, 0.60, 0.9]

    merged, kept = views.merge(np.array([left_part, right_part]), [0.6, 0.8], [True, True])

    assert kept == [1]
    np.testing.assert_allclose(merged, [[0.40, 0.2, 0.60, 0.9]])


def test_a_whole_person_replaces_a_better_scored_cut_part_of_it():
    part, whole = [0.50, 0.2, 0.5625, 0.9], [0.50, 0.2, 0.66, 0.9]

    merged, kept = views.merge(np.array([part, whole]), [0.9, 0.6], [True, False])

    assert kept == [0]  # the better score stays
    np.testing.assert_allclose(merged, [whole])


def test_merging_with_no_boxes_keeps_none():
    merged, kept = views.merge(np.zeros((0, 4)), [], [])

    assert merged.shape == (0, 4) and kept == []


def test_the_human_detector_rejects_an_unknown_tiles_setting_before_loading_its_model(monkeypatch):
    from detectors import build_detector, human

    monkeypatch.setattr(human, "load_packaged_model", lambda: pytest.fail("the model was loaded"))

    with pytest.raises(ValueError, match=r"unknown tiles 'squares'; choose one of: auto, none, 2x2"):
        build_detector("human", tiles="squares")
