"""Test doubles shared by several test modules."""

from __future__ import annotations

import threading

from detectors.stub import StubDetector


class GatedDetector(StubDetector):
    """A stub whose first batch waits for the test, so a signal lands mid-job, deterministically."""

    def __init__(self, **options):
        super().__init__(**options)
        self.started = threading.Event()
        self.proceed = threading.Event()

    def detect(self, frames):
        self.started.set()
        self.proceed.wait(timeout=30)
        return super().detect(frames)
