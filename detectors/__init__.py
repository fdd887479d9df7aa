"""Detectors: the base class, the detections they return, and the factory that builds them by name."""

import os

# TensorFlow's C++ runtime logs plain text to stderr at import, which would break the
# worker's one-JSON-object-a-line log stream; keep it to errors unless the user asks.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from detectors.base import LANDMARK_NAMES, Box, Detection, Detector, Findings
from detectors.errors import DetectorError, ModelUnavailable, UnknownDetector
from detectors.registry import build_detector, check_detector_name, detector_names

__all__ = [
    "LANDMARK_NAMES", "Box", "Detection", "Detector", "DetectorError", "Findings", "ModelUnavailable",
    "UnknownDetector", "build_detector", "check_detector_name", "detector_names",
]
