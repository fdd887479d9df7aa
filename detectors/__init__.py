"""Detectors: the base class, the detections they return, and the factory that builds them by name."""

from detectors.base import LANDMARK_NAMES, Box, Detection, Detector
from detectors.registry import build_detector, check_detector_name, detector_names

__all__ = ["LANDMARK_NAMES", "Box", "Detection", "Detector", "build_detector", "check_detector_name", "detector_names"]
