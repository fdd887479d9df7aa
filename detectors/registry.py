"""Detectors by name; each is imported only when built, so TensorFlow loads only for real models."""

from __future__ import annotations

import importlib
from typing import Any

from detectors.base import Detector
from detectors.errors import UnknownDetector

# name -> "module:callable" building it from its options
DETECTORS = {
    "human": "detectors.human:HumanDetector",
    "face": "detectors.face:build_face_detector",
    "stub": "detectors.stub:StubDetector",
}
# The models a job may name for each detector, the first the default; `human` also takes the
# location of a TF2 SavedModel directory or frozen graph (a local path or an s3:// URI).
MODELS = {"human": ("ssdlite",), "face": ("blazeface-mtcnn", "mtcnn"), "stub": ()}


def detector_names() -> list[str]:
    return sorted(DETECTORS)


def check_detector_name(name: str) -> None:
    if name not in DETECTORS:
        raise UnknownDetector(f"unknown detector {name!r}; known detectors: {', '.join(detector_names())}")


def check_detector_model(name: str, model: str) -> None:
    """A known model of a known detector; for `human`, a model location of the right form."""
    check_detector_name(name)
    if model in MODELS[name]:
        return
    if name == "human" and not model.startswith("s3://"):
        return  # a local path: whether it holds a model shows when it loads
    if name == "human" and model.partition("s3://")[2].partition("/")[2]:
        return
    known = ", ".join(MODELS[name]) or "none"
    shape = " or an s3://bucket/key location" if name == "human" else ""
    raise UnknownDetector(f"unknown {name} model {model[:80]!r}; known models: {known}{shape}")


def build_detector(name: str, **options: Any) -> Detector:
    """Builds a detector from its name and options (`min_confidence`, `model`, `batch_size`)."""
    check_detector_name(name)
    module_name, class_name = DETECTORS[name].split(":")
    detector_class = getattr(importlib.import_module(module_name), class_name)
    return detector_class(**options)
