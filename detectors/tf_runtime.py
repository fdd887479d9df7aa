"""TensorFlow, set up once for the real detectors: GPU memory growth and the device to run on."""

from __future__ import annotations

import functools
import logging

import tensorflow as tf

log = logging.getLogger(__name__)


@functools.cache
def configure() -> str:
    """Turns on memory growth for every GPU and names the device the models should use.

    Growth must be set before TensorFlow first touches a GPU; without it the first model
    would reserve all GPU memory and leave none for the second detector.
    """
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # something else initialised the GPU first
            log.warning("could not turn on GPU memory growth", extra={"gpu": gpu.name, "error": str(error)})
    return "GPU:0" if gpus else "CPU:0"
