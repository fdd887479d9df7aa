"""Fixtures: moto's server on 127.0.0.1 (real HTTP), fresh AWS resources per test, the shared videos."""

from __future__ import annotations

import os
import pathlib
import uuid

import pytest

from worker.aws.clients import AwsClients
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.aws.embedded import EmbeddedAws, create_resources
from support.helpers import write_test_video
from worker.options import DetectorSpec
from worker.worker import Worker

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedded_aws():
    """One moto server for the whole run; each test makes its own uniquely named resources.

    The project's code gets its clients from the stack. The `videoscan` and `aws` commands the
    tests start, and plain boto3 clients made in tests, find it as a user's would: through the
    environment, set here for the whole run.
    """
    with EmbeddedAws() as stack, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in stack.environment().items():
            patch.setenv(name, value)
        yield stack


@pytest.fixture
def clients(embedded_aws) -> AwsClients:
    return embedded_aws.clients()


@pytest.fixture
def resources(clients, monkeypatch):
    """A queue (with a dead-letter queue), table, bucket and topic, and the VIDEOSCAN_* env for them."""
    created = create_resources(clients, f"t{uuid.uuid4().hex[:10]}", visibility_timeout=30)
    for name, value in created.environment().items():
        monkeypatch.setenv(name, value)
    return created


@pytest.fixture
def settings(resources) -> Settings:
    return Settings.load()


@pytest.fixture(scope="session")
def detector_pool() -> DetectorPool:
    """Detectors shared by the whole run, so each real model loads once."""
    return DetectorPool(cache_size=16)  # more than the run builds: none is evicted


@pytest.fixture
def make_worker(clients, detector_pool):
    """Builds an in-process worker from the environment (plus overrides) sharing the run's models."""
    def make(**overrides) -> Worker:
        return Worker(Settings.load(**overrides), clients, pool=detector_pool)
    return make


@pytest.fixture
def small_video(tmp_path) -> str:
    return write_test_video(tmp_path / "small.mp4")


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """The real test videos (../shared/data, or VIDEOSCAN_TEST_DATA); missing is a failure in CI."""
    path = pathlib.Path(os.environ.get("VIDEOSCAN_TEST_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "vtest.avi").is_file():
        message = f"test videos not found in {path} (set VIDEOSCAN_TEST_DATA)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def human_detector(detector_pool):
    """The default human detector: the packaged SSDLite graph, confidence 0.5 (built once per run)."""
    return detector_pool.get([DetectorSpec("human")])[0]


@pytest.fixture(scope="session")
def face_detector(detector_pool):
    """The default face detector: BlazeFace proposals refined by ONet, confidence 0.9 (built once per run)."""
    return detector_pool.get([DetectorSpec("face")])[0]


@pytest.fixture(scope="session")
def mtcnn_face_detector(detector_pool):
    """The `face:mtcnn` detector, confidence 0.9 (built once per run)."""
    return detector_pool.get([DetectorSpec("face", model="mtcnn")])[0]
