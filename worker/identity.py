"""The name a worker process writes on the jobs it runs and the results it makes."""

from __future__ import annotations

import os
import socket
import uuid


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
