"""Detectors built once per process and reused across jobs: a model takes seconds to load."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

from detectors import Detector, build_detector
from detectors.model_source import ModelFetcher
from worker.errors import detector_errors_as_ours
from worker.options import DetectorSpec


class DetectorPool:
    def __init__(self, human_model: str | None = None, build: Callable[..., Detector] = build_detector,
                 fetch_model: ModelFetcher | None = None):
        """`human_model`: the worker's model for `human` when a job names none; `fetch_model`
        downloads a model given as an `s3://` location."""
        self._default_models = {"human": human_model}
        self._fetch_model = fetch_model
        self._build = build
        self._built: dict[DetectorSpec, Detector] = {}
        self._lock = threading.Lock()

    def get(self, specs: Sequence[DetectorSpec]) -> list[Detector]:
        """The detectors for a job; each distinct set of options gets its own instance."""
        with self._lock, detector_errors_as_ours():
            return [self._get_one(spec) for spec in specs]

    def _get_one(self, spec: DetectorSpec) -> Detector:
        if spec.model is None and self._default_models.get(spec.name):
            spec = dataclasses.replace(spec, model=self._default_models[spec.name])
        if spec not in self._built:
            options = {"min_confidence": spec.min_confidence, "model": spec.model, "tiles": spec.tiles}
            if spec.model and spec.model.startswith("s3://"):
                options["fetch_model"] = self._fetch_model
            self._built[spec] = self._build(spec.name, **{k: v for k, v in options.items() if v is not None})
        return self._built[spec]
