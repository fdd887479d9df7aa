"""Host memory that stays flat while TensorFlow runs in several threads for hours."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# glibc's mallopt parameters
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
# Buffers from this size up (a batch of frames, the model's larger activations) are mapped and unmapped.
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
_USER_SETTINGS = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune_malloc() -> None:
    """One glibc malloc arena, and a fixed mmap threshold, unless the user tuned malloc themselves.

    glibc gives threads arenas of their own; TensorFlow's inference threads, the detect pool and the
    decode thread allocate and free each other's large buffers, and with two or more arenas the heaps
    fragment: resident memory grew with the length of the video (BENCHMARKS.md, memory). glibc also
    raises its mmap threshold after freeing a mapped buffer, up to 32 MB, which puts multi-MB tensors
    in the heap, where they fragment it too. glibc fixes its arena limit once more than 8 arenas
    exist, so this must run before threads start (S3 downloads start up to 10): at import of the
    detectors.
    """
    if any(name in os.environ for name in _USER_SETTINGS) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # absent from other C libraries
    if mallopt is None or not (mallopt(_M_ARENA_MAX, 1) and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)):
        log.warning("could not tune malloc: memory may grow with video length")
