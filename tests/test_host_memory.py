"""The detectors keep the process to one malloc arena, so threads do not fragment memory across arenas."""

from __future__ import annotations

import os
import subprocess
import sys

# Threads that allocate at once, then glibc's own account of its arenas (on stderr).
PROBE = """
import ctypes, threading
{setup}
def allocate():
    buffers = [ctypes.create_string_buffer(200_000) for _ in range(50)]
barrier = threading.Barrier(4)
threads = [threading.Thread(target=lambda: (barrier.wait(), allocate())) for _ in range(4)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
ctypes.CDLL(None).malloc_stats()
"""


def arenas(setup: str, env: dict[str, str]) -> int:
    probe = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup)], capture_output=True, text=True,
                           timeout=120, env=env)
    assert probe.returncode == 0, probe.stderr
    return sum(line.startswith("Arena ") for line in probe.stderr.splitlines())


def test_importing_the_detectors_leaves_one_malloc_arena_for_every_thread():
    env = {key: value for key, value in os.environ.items() if key not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}

    assert arenas("import detectors", env) == 1
    assert arenas("", env) > 1  # what glibc does by default: the probe can tell


def test_a_users_own_arena_limit_is_kept():
    env = {**os.environ, "MALLOC_ARENA_MAX": "3"}

    assert arenas("import detectors", env) > 1
