"""Dockerfile.gpu without Docker: what it installs (resolved by pip for the image's platform)
satisfies TensorFlow's own CUDA requirements, at the pinned TensorFlow, without demo or test
packages; and the image's settings are the ones the GPU worker needs."""

from __future__ import annotations

import os
import re
import urllib.request

import pytest
from packaging.requirements import Requirement  # packaging: installed with pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from image_recipe import (
    base_image,
    dockerfile_instructions,
    extras,
    image_requirements,
    install_requires,
    resolve,
    single_default,
)

INDEX_URL = "https://pypi.org/simple/"

# The shared libraries Dockerfile.gpu checks for after ldconfig, and the wheel each comes from:
# the soname's number is the wheel's major version, so a new TensorFlow that moves to other
# CUDA majors fails here instead of in a build.
SONAME_WHEELS = {
    "libcudart.so": "nvidia-cuda-runtime-cu12",
    "libcublas.so": "nvidia-cublas-cu12",
    "libcublasLt.so": "nvidia-cublas-cu12",
    "libcufft.so": "nvidia-cufft-cu12",
    "libcurand.so": "nvidia-curand-cu12",
    "libcusolver.so": "nvidia-cusolver-cu12",
    "libcusparse.so": "nvidia-cusparse-cu12",
    "libcudnn.so": "nvidia-cudnn-cu12",
    "libnccl.so": "nvidia-nccl-cu12",
    "libnvJitLink.so": "nvidia-nvjitlink-cu12",
}


def pinned_tensorflow() -> Version:
    [pin] = [Requirement(r) for r in install_requires() if canonicalize_name(Requirement(r).name) == "tensorflow"]
    [spec] = pin.specifier
    assert spec.operator == "==", f"setup.cfg pins TensorFlow with {spec}, not =="
    return Version(spec.version)


def index_reachable() -> bool:
    try:
        with urllib.request.urlopen(INDEX_URL + "tensorflow/", timeout=15) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def resolved() -> dict[str, dict]:
    """name -> metadata of every distribution the image installs, resolved from the index.

    Without the index this fails under CI=true (CI has it, so its absence is a fault to see)
    and skips elsewhere (a developer offline can still run the rest of the suite).
    """
    if not index_reachable():
        message = f"the package index ({INDEX_URL}) is unreachable"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    report = resolve(image_requirements(), base_image())
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"] for item in report["install"]}


def and_cuda_requirements(tensorflow: dict) -> list[Requirement]:
    requirements = [Requirement(r) for r in tensorflow.get("requires_dist", [])]
    return [r for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "and-cuda"})
            and not r.marker.evaluate({"extra": ""})]


# ----------------------------------------------------------------- resolved from the index


@pytest.mark.index
def test_image_tensorflow_is_the_pinned_one(resolved):
    assert Version(resolved["tensorflow"]["version"]) == pinned_tensorflow()
    assert Version(single_default("TF_VERSION")) == pinned_tensorflow()
    assert "tensorflow[and-cuda]==${TF_VERSION}" in DOCKERFILE_TEXT


@pytest.mark.index
def test_cuda_and_cudnn_wheels_satisfy_tensorflows_own_requirements(resolved):
    # Given TensorFlow's own `and-cuda` requirements, read from the resolved wheel's metadata
    requirements = and_cuda_requirements(resolved["tensorflow"])
    names = {canonicalize_name(r.name) for r in requirements}
    assert {"nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12"} <= names, names

    # Then each is installed at a version inside TensorFlow's range
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in resolved, f"{name} is not installed in the image"
        version = Version(resolved[name]["version"])
        assert requirement.specifier.contains(version, prereleases=True), f"{name} {version} not in {requirement}"


@pytest.mark.index
def test_libraries_the_build_checks_come_from_the_resolved_wheels(resolved):
    checked = dict(re.findall(r"\b(lib\w+\.so)\.(\d+)\b", DOCKERFILE_TEXT))
    assert checked.keys() == SONAME_WHEELS.keys()
    for library, major in checked.items():
        wheel = SONAME_WHEELS[library]
        assert Version(resolved[wheel]["version"]).major == int(major), (library, major, wheel)


@pytest.mark.index
def test_image_installs_no_demo_or_test_package(resolved):
    demo_and_test = {canonicalize_name(Requirement(r).name) for name in ("demo", "test") for r in extras()[name]}
    assert {"moto", "scikit-image", "pytest"} <= demo_and_test
    assert demo_and_test.isdisjoint(resolved), demo_and_test & resolved.keys()


# ----------------------------------------------------------------- the Dockerfile itself

DOCKERFILE_TEXT = "\n".join(f"{k} {a}" for k, a in dockerfile_instructions())


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_image_builds_on_slim_python_311_not_a_tensorflow_image():
    assert re.fullmatch(r"python:3\.11-slim-\w+", base_image())
    assert all(a.split()[0] == "${PYTHON_IMAGE}" for k, a in dockerfile_instructions() if k == "FROM")
    assert "tensorflow/tensorflow" not in DOCKERFILE_TEXT


def test_image_runs_unprivileged_requires_a_gpu_and_execs_videoscan():
    stage = final_stage()
    [user] = [a for k, a in stage if k == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    environment = " ".join(a for k, a in stage if k == "ENV")
    assert re.search(r"\bVIDEOSCAN_REQUIRE_GPU=1\b", environment)
    assert re.search(r"\bNVIDIA_DRIVER_CAPABILITIES=\S*compute", environment)
    [entrypoint] = [a for k, a in stage if k == "ENTRYPOINT"]
    assert entrypoint == '["videoscan"]'  # exec form: SIGTERM reaches the worker


def test_nvidia_library_folders_are_found_from_the_installed_packages():
    stage = " ".join(f"{k} {a}" for k, a in final_stage())
    assert "/etc/ld.so.conf.d/" in stage and "nvidia.__path__" in stage and "ldconfig" in stage
    assert "libgl1" in stage and "libglib2.0-0" in stage  # opencv-python's runtime libraries
