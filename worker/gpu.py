"""What the NVIDIA driver (through NVML) and TensorFlow each see of the GPUs."""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass
class GpuReport:
    nvml_gpus: list[dict] = dataclasses.field(default_factory=list)
    nvml_error: str | None = None
    driver_version: str | None = None
    tensorflow_gpus: list[str] = dataclasses.field(default_factory=list)
    tensorflow_error: str | None = None
    tensorflow_built_with_cuda: bool | None = None
    # How the worker will run on what TensorFlow sees: device, threads, batches.
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """Both the driver and TensorFlow must see a GPU, or inference silently runs on the CPU."""
        return bool(self.nvml_gpus) and bool(self.tensorflow_gpus)

    def lines(self) -> list[str]:
        lines = []
        if self.nvml_error:
            lines.append(f"NVML: unavailable ({self.nvml_error})")
        else:
            lines.append(f"NVML: driver {self.driver_version}, {len(self.nvml_gpus)} GPU(s)")
            lines += [f"  GPU {g['index']}: {g['name']}, {g['memory_total_mib']} MiB, {g['utilization_pct']}% busy"
                      for g in self.nvml_gpus]
        if self.tensorflow_error:
            lines.append(f"TensorFlow: unavailable ({self.tensorflow_error})")
        else:
            lines.append(f"TensorFlow: built with CUDA: {self.tensorflow_built_with_cuda}; "
                         f"{len(self.tensorflow_gpus)} GPU(s) {', '.join(self.tensorflow_gpus)}".rstrip())
        if self.settings:
            lines.append("worker settings: " + ", ".join(f"{name} {value}" for name, value in self.settings.items()))
        lines.append("usable GPU: yes" if self.usable else "usable GPU: no")
        return lines


def nvml_gpus() -> tuple[list[dict], str]:
    """The GPUs the driver sees, as NVML reports them; raises if NVML is unavailable."""
    import pynvml  # nvidia-ml-py

    pynvml.nvmlInit()
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append({
                "index": index,
                "name": pynvml.nvmlDeviceGetName(handle),
                "memory_total_mib": memory.total // 2**20,
                "memory_used_mib": memory.used // 2**20,
                "utilization_pct": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
            })
        return gpus, driver
    finally:
        pynvml.nvmlShutdown()


def check_gpu(include_tensorflow: bool = True) -> GpuReport:
    report = GpuReport()
    try:
        report.nvml_gpus, report.driver_version = nvml_gpus()
    except Exception as error:  # no driver, no device, or no library: all mean "no GPU"
        report.nvml_error = str(error) or type(error).__name__
    if include_tensorflow:
        try:
            import tensorflow as tf

            from detectors import tf_runtime

            device = tf_runtime.configure()  # memory growth must be set before TensorFlow touches a GPU

            report.tensorflow_built_with_cuda = tf.test.is_built_with_cuda()
            gpus = tf.config.list_physical_devices("GPU")
            report.tensorflow_gpus = [d.name for d in gpus]
            report.settings = _worker_settings(device, gpus)
        except Exception as error:
            report.tensorflow_error = str(error) or type(error).__name__
    return report


def _worker_settings(device: str, gpus: list) -> dict:
    """What `videoscan run` would use here, as `detectors` and `worker.analysis.video` choose it."""
    import tensorflow as tf

    from detectors import tf_runtime
    from detectors.face import FaceDetector
    from detectors.human import HumanDetector
    from worker.analysis.video import decode_threads

    growth = all(tf.config.experimental.get_memory_growth(gpu) for gpu in gpus)
    return {
        "device": device,
        **({"GPU memory growth": "on" if growth else "off"} if gpus else {}),
        "TensorFlow threads (intra-op/inter-op)": (f"{tf.config.threading.get_intra_op_parallelism_threads()}/"
                                                   f"{tf.config.threading.get_inter_op_parallelism_threads()}"),
        "batches in inference at once": tf_runtime.inference_streams(),
        "batch sizes (human/face)": "/".join(
            str(tf_runtime.batch_size(None, cpu=d.cpu_batch, gpu=d.gpu_batch)) for d in (HumanDetector, FaceDetector)),
        "decoding threads": decode_threads(for_gpu=bool(gpus)),
    }


class GpuSampler:
    """Samples utilisation and memory of the GPUs through NVML while a job runs.

    Without NVML (no driver, no GPU) it does nothing and `summary()` is None.
    """

    def __init__(self, interval_s: float = 1.0):
        self._interval_s = interval_s
        self._utilization: list[float] = []
        self._memory_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:
            self._nvml, self._handles = None, []

    def __enter__(self) -> "GpuSampler":
        if self._handles:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
            self._sample()  # at least one sample, however short the job
            self._nvml.nvmlShutdown()

    def summary(self) -> dict[str, float] | None:
        """Mean utilisation (%) across samples and GPUs, and the most memory used (MiB)."""
        if not self._utilization:
            return None
        return {"GpuUtilization": round(sum(self._utilization) / len(self._utilization), 1),
                "GpuMemoryUsed": round(self._memory_mib, 1)}

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            for handle in self._handles:
                self._utilization.append(float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                used = self._nvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
                self._memory_mib = max(self._memory_mib, used)
        except Exception:  # a sampling hiccup must never touch the job
            pass
