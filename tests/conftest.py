"""Fixtures: moto's server on 127.0.0.1 (real HTTP), fresh AWS resources per test, the shared videos."""

from __future__ import annotations

import os
import pathlib
import uuid

import pytest

from worker.aws import AwsClients
from worker.embedded_aws import EmbeddedAws, create_resources

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedded_aws():
    """One moto server for the whole run; each test makes its own uniquely named resources."""
    with EmbeddedAws() as stack:
        yield stack


@pytest.fixture
def clients(embedded_aws) -> AwsClients:
    return AwsClients.create(embedded_aws.region)


@pytest.fixture
def resources(clients, monkeypatch):
    """A queue (with a dead-letter queue), table, bucket and topic, and the VIDEOSCAN_* env for them."""
    created = create_resources(clients, f"t{uuid.uuid4().hex[:10]}", visibility_timeout=30)
    for name, value in created.environment().items():
        monkeypatch.setenv(name, value)
    return created


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
