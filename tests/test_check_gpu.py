"""`videoscan check-gpu`: what NVML and TensorFlow see, and the settings the worker would run with."""

from __future__ import annotations

import pytest

from support.helpers import videoscan
from detectors.cores import usable_cores
from worker.gpu import GpuReport


@pytest.mark.slow  # imports TensorFlow in a new process
def test_without_a_gpu_it_exits_1_and_shows_the_cpu_settings():
    cores = usable_cores()
    streams = min(cores, 4)

    checked = videoscan("check-gpu")

    assert checked.returncode == 1
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("NVML: unavailable")
    assert lines[-1] == "usable GPU: no"
    assert lines[-2] == (
        f"worker settings: device CPU:0, TensorFlow threads (intra-op/inter-op) {max(1, cores // streams)}/{streams},"
        f" batches in inference at once {streams}, batch sizes (human/face) 4/8, decoding threads {min(cores, 2)}"
    )


def test_a_gpu_is_usable_only_when_both_the_driver_and_tensorflow_see_it():
    gpu = {"index": 0, "name": "NVIDIA H100", "memory_total_mib": 81559, "memory_used_mib": 0, "utilization_pct": 0}
    both = GpuReport(nvml_gpus=[gpu], driver_version="560.35", tensorflow_gpus=["/physical_device:GPU:0"],
                     tensorflow_built_with_cuda=True, settings={"device": "GPU:0", "decoding threads": 16})
    driver_only = GpuReport(nvml_gpus=[gpu], driver_version="560.35", tensorflow_built_with_cuda=False)

    assert both.usable and not driver_only.usable
    assert both.lines() == [
        "NVML: driver 560.35, 1 GPU(s)",
        "  GPU 0: NVIDIA H100, 81559 MiB, 0% busy",
        "TensorFlow: built with CUDA: True; 1 GPU(s) /physical_device:GPU:0",
        "worker settings: device GPU:0, decoding threads 16",
        "usable GPU: yes",
    ]
    assert driver_only.lines()[-1] == "usable GPU: no"
