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


def detector_names() -> list[str]:
    return sorted(DETECTORS)


def check_detector_name(name: str) -> None:
    if name not in DETECTORS:
        raise UnknownDetector(f"unknown detector {name!r}; known detectors: {', '.join(detector_names())}")


def build_detector(name: str, **options: Any) -> Detector:
    """Builds a detector from its name and options (`min_confidence`, `model`, `batch_size`)."""
    check_detector_name(name)
    module_name, class_name = DETECTORS[name].split(":")
    detector_class = getattr(importlib.import_module(module_name), class_name)
    return detector_class(**options)
