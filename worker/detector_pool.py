"""Detectors built once per process and reused across jobs: a model takes seconds to load."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from detectors import Detector, build_detector
from detectors.model_source import ModelFetcher
from worker.errors import detector_errors_as_ours


class DetectorPool:
    def __init__(self, human_model: str | None = None, build: Callable[..., Detector] = build_detector,
                 fetch_model: ModelFetcher | None = None):
        """`fetch_model` downloads a model given as an `s3://` location."""
        self._options = {"human": {"model": human_model, "fetch_model": fetch_model if human_model else None}}
        self._build = build
        self._built: dict[tuple[str, float | None], Detector] = {}
        self._lock = threading.Lock()

    def get(self, names: Sequence[str], min_confidence: float | None = None) -> list[Detector]:
        """The detectors for a job; a job's own `min_confidence` gets its own instance."""
        with self._lock, detector_errors_as_ours():
            return [self._get_one(name, min_confidence) for name in names]

    def _get_one(self, name: str, min_confidence: float | None) -> Detector:
        key = (name, min_confidence)
        if key not in self._built:
            options = {"min_confidence": min_confidence, **self._options.get(name, {})}
            self._built[key] = self._build(name, **{k: v for k, v in options.items() if v is not None})
        return self._built[key]
