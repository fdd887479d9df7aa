"""Private work directories for a job's temp files, and the removal of those dead workers left."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

log = logging.getLogger(__name__)

TEMP_PREFIX = "videoscan-"


@contextlib.contextmanager
def private_workdir() -> Iterator[str]:
    """A directory only this user can read (mkdtemp makes it 0700), removed on every path.

    Its name carries this process's id, so a later worker can tell an abandoned one.
    """
    path = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_workdirs(root: str | None = None) -> list[str]:
    """Removes work directories left by killed workers (their process is gone); returns them."""
    root = root or tempfile.gettempdir()
    removed = []
    for name in os.listdir(root):
        parts = name.split("-")
        if not name.startswith(TEMP_PREFIX) or len(parts) < 3 or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        # A restarted container can reuse this process's id; at start this process holds none.
        if pid == os.getpid() or not _process_alive(pid):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed.append(name)
    if removed:
        log.info("removed work directories of workers that died", extra={"directories": removed})
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True
