"""A one-line progress bar for terminals; silent when the stream is not a terminal."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    WIDTH = 30

    def __init__(self, label: str = "frames", stream=None, min_interval_s: float = 0.1):
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._label = label
        self._min_interval_s = min_interval_s
        self._shown_at = 0.0

    def update(self, done: int, total: int, status: str = "") -> None:
        now = time.monotonic()
        if not self._enabled or now - self._shown_at < self._min_interval_s:
            return
        self._shown_at = now
        share = min(done / total, 1.0) if total else 0.0
        filled = int(share * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self._stream.write(f"\r[{bar}] {done}/{total} {self._label} {share:4.0%} {status}".rstrip() + " ")
        self._stream.flush()

    def close(self) -> None:
        if self._enabled and self._shown_at:
            self._stream.write("\n")
            self._stream.flush()
