"""Host memory that stays flat while TensorFlow runs in several threads for hours."""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter


def one_malloc_arena() -> None:
    """One glibc malloc arena for the whole process, unless the user chose (MALLOC_ARENA_MAX, GLIBC_TUNABLES).

    glibc gives threads arenas of their own; TensorFlow's inference threads, the detect pool and the
    decode thread allocate and free each other's large buffers, and with two or more arenas the heaps
    fragment: resident memory grew with the length of the video (BENCHMARKS.md, memory). glibc fixes
    its arena limit once more than 8 arenas exist, so this must run before threads start (S3 downloads
    start up to 10), hence at import of the detectors.
    """
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # absent from other C libraries
    if mallopt is None or not mallopt(_M_ARENA_MAX, 1):
        log.warning("could not limit malloc to one arena: memory may grow with video length")
