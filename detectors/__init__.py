"""Detectors: the base class, the detections they return, and the factory that builds them by name."""

import os

# TensorFlow's C++ runtime logs every INFO line at import; keep its warnings (a GPU library
# that cannot load is one) and errors unless the user asks. In json mode worker.native_log turns
# them into JSON lines and applies this level to absl's early lines too, which ignore it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from detectors.host_memory import tune_malloc

tune_malloc()

from detectors.base import LANDMARK_NAMES, Box, Detection, Detector, Findings
from detectors.errors import DetectorError, ModelUnavailable, UnknownDetector
from detectors.registry import build_detector, check_detector_model, check_detector_name, detector_names

__all__ = [
    "LANDMARK_NAMES", "Box", "Detection", "Detector", "DetectorError", "Findings", "ModelUnavailable",
    "UnknownDetector", "build_detector", "check_detector_model", "check_detector_name", "detector_names",
]
