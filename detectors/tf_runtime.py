"""TensorFlow, set up once for the real detectors: CPU thread pools, GPU memory growth, the device to run on."""

from __future__ import annotations

import functools
import logging
import math
import os
import pathlib

import tensorflow as tf

log = logging.getLogger(__name__)


@functools.cache
def configure() -> str:
    """Sizes TensorFlow's thread pools, turns on memory growth for every GPU, and names the
    device the models should use.

    Both must be set before TensorFlow first runs anything. Without growth the first model
    would reserve all GPU memory and leave none for the second detector.
    """
    intra, inter = thread_pools(usable_cores())
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as error:  # something else started TensorFlow first
        log.warning("could not size TensorFlow's thread pools", extra={"error": str(error)})
    gpus = _gpus()
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # something else initialised the GPU first
            log.warning("could not turn on GPU memory growth", extra={"gpu": gpu.name, "error": str(error)})
    return "GPU:0" if gpus else "CPU:0"


def batch_size(requested: int | None, cpu: int, gpu: int) -> int:
    """Frames per model call: `requested`, else the default for the device the models run on.

    A GPU needs large batches to stay busy; on a CPU, batches past about 8 only add memory.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"batch_size must be at least 1, not {requested}")
        return requested
    return cpu if configure() == "CPU:0" else gpu


@functools.cache
def inference_streams() -> int:
    """Batches a detector may have in inference at once: 1 on a GPU, up to 4 on a CPU.

    On a CPU, one batch spread over every core leaves cores idle in the graph's sequential
    parts (NMS, small operations); batches side by side, a few cores each, keep them busy.
    """
    return 1 if _gpus() else min(usable_cores(), 4)


def thread_pools(cores: int) -> tuple[int, int]:
    """(intra-op, inter-op) threads for `cores` cores: on a CPU, a share of the cores per batch in flight."""
    if _gpus():
        return cores, cores
    streams = inference_streams()
    return max(1, cores // streams), streams


@functools.cache
def _gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    TensorFlow counts the affinity only; in a container limited to 2 CPUs on a 64-core host
    it would start 64 threads per pool and have them preempt one another.
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
