"""TensorFlow, set up once for the real detectors: CPU thread pools, GPU memory growth, the device to run on."""

from __future__ import annotations

import functools
import logging

import tensorflow as tf

from detectors.cores import usable_cores

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
    return gpu if on_gpu() else cpu


def on_gpu() -> bool:
    """Whether the models run on a GPU (TensorFlow set up on first call)."""
    return configure() != "CPU:0"


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
