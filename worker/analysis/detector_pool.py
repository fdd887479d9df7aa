"""Detectors kept built between jobs, as a multi-model endpoint keeps models: a model takes seconds to load.

Each distinct spec (detector, model, options) is built on first use and kept; beyond `cache_size`
the least recently used is dropped. Dropping releases the Python references: TensorFlow then
frees the model's graph and weights, and on a GPU their memory returns to TensorFlow's own
allocator (reused by the next model), not to the driver.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence

from detectors import Detector, build_detector
from detectors.model_source import ModelFetcher
from worker.errors import detector_errors_as_ours
from worker.options import DetectorSpec

log = logging.getLogger(__name__)

DEFAULT_CACHE_SIZE = 4

# Called after each model load with its spec and the seconds it took (the worker's metrics).
LoadObserver = Callable[[DetectorSpec, float], None]


class DetectorPool:
    def __init__(self, human_model: str | None = None, build: Callable[..., Detector] = build_detector,
                 fetch_model: ModelFetcher | None = None, cache_size: int = DEFAULT_CACHE_SIZE,
                 on_load: LoadObserver | None = None):
        """`human_model`: the worker's model for `human` when a job names none; `fetch_model`
        downloads a model given as an `s3://` location; `cache_size`: detectors kept built."""
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self._default_models = {"human": human_model}
        self._fetch_model = fetch_model
        self._build = build
        self._cache_size = cache_size
        self._on_load = on_load
        self._built: collections.OrderedDict[DetectorSpec, Detector] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, specs: Sequence[DetectorSpec]) -> list[Detector]:
        """The detectors for a job; each distinct spec gets its own instance.

        A model that cannot be loaded fails the job with UNKNOWN_DETECTOR naming why; the pool
        (and the worker) go on as before.
        """
        with self._lock, detector_errors_as_ours():
            return [self._get_one(self.resolve(spec)) for spec in specs]

    def resolve(self, spec: DetectorSpec) -> DetectorSpec:
        """The spec as built: a job that names no model for `human` gets the worker's."""
        if spec.model is None and self._default_models.get(spec.name):
            return dataclasses.replace(spec, model=self._default_models[spec.name])
        return spec

    @property
    def cached(self) -> list[DetectorSpec]:
        """The specs kept built, least recently used first."""
        with self._lock:
            return list(self._built)

    def _get_one(self, spec: DetectorSpec) -> Detector:
        if spec in self._built:
            self._built.move_to_end(spec)
            return self._built[spec]
        while len(self._built) >= self._cache_size:  # before loading: the two models never coexist here
            self._evict()
        started = time.monotonic()
        detector = self._build(spec.name, **self._options(spec))  # a model that cannot load: UNKNOWN_DETECTOR
        seconds = time.monotonic() - started
        log.info("model loaded", extra={"detector": spec.name, "model": spec.model, "seconds": round(seconds, 3),
                                        "cached": len(self._built) + 1})
        if self._on_load is not None:
            self._on_load(spec, seconds)
        self._built[spec] = detector
        return detector

    def _options(self, spec: DetectorSpec) -> dict:
        options = {"min_confidence": spec.min_confidence, "model": spec.model, "tiles": spec.tiles}
        if spec.model and spec.model.startswith("s3://"):
            options["fetch_model"] = self._fetch_model
        return {key: value for key, value in options.items() if value is not None}

    def _evict(self) -> None:
        spec, detector = self._built.popitem(last=False)
        log.info("model dropped from the cache", extra={"detector": spec.name, "model": spec.model})
        del detector
        gc.collect()  # loaded TF models hold reference cycles: free them now, not at some later collection
