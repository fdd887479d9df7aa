"""How many CPU cores this process may really use (containers limit them below what the host shows)."""

from __future__ import annotations

import math
import os
import pathlib


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    TensorFlow and FFmpeg count the affinity only; in a container limited to 2 CPUs on a
    64-core host they would start 64 threads each and have them preempt one another.
    """
    cores = len(os.sched_getaffinity(0))
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`); None when unlimited."""
    v2 = pathlib.Path("/sys/fs/cgroup/cpu.max")
    v1 = pathlib.Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()
        elif v1.is_file():
            quota, period = v1.read_text().strip(), v1.with_name("cpu.cfs_period_us").read_text().strip()
        else:
            return None
    except (OSError, ValueError):
        return None
    if quota in ("max", "-1"):
        return None
    return int(quota) / int(period)
