"""ECS task scale-in protection while a job runs, so a scale-in never stops a busy task.

Set through the ECS agent's endpoint (`$ECS_AGENT_URI/task-protection/v1/state`); a failure
there is logged, never fatal: protection is an optimisation, the job's safety does not rest on it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import urllib.request
from collections.abc import Iterator

log = logging.getLogger(__name__)

# Protection lapses on its own if the worker hangs; the heartbeat renews it long before.
EXPIRES_IN_MINUTES = 60
RENEW_AFTER_S = 20 * 60


class TaskProtection:
    def __init__(self, agent_uri: str | None, timeout_s: float = 5.0):
        self._url = f"{agent_uri.rstrip('/')}/task-protection/v1/state" if agent_uri else None
        self._timeout_s = timeout_s
        self._set_at = 0.0

    @classmethod
    def from_environment(cls) -> "TaskProtection":
        return cls(os.environ.get("ECS_AGENT_URI"))

    @contextlib.contextmanager
    def while_busy(self) -> Iterator[None]:
        self._put(True)
        try:
            yield
        finally:
            self._put(False)

    def renew_if_due(self) -> None:
        if self._set_at and time.monotonic() - self._set_at > RENEW_AFTER_S:
            self._put(True)

    def _put(self, enabled: bool) -> None:
        if not self._url:
            return
        body = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = EXPIRES_IN_MINUTES
        request = urllib.request.Request(self._url, data=json.dumps(body).encode(), method="PUT",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                response.read()
            self._set_at = time.monotonic() if enabled else 0.0
        except Exception as error:  # the agent may be old, busy or absent
            log.warning("could not set ECS task scale-in protection", extra={"enabled": enabled, "error": str(error)})
