"""Where a user's model lives: a local path as is, or an S3 object or prefix fetched to a private temp dir."""

from __future__ import annotations

import contextlib
import pathlib
import tempfile
from collections.abc import Callable, Iterator

from detectors.errors import ModelUnavailable

# Downloads the model at an `s3://` location into an empty directory; returns the local path that
# holds it (the .pb file, or the directory). The worker gives one: detectors/ has no AWS access.
ModelFetcher = Callable[[str, pathlib.Path], pathlib.Path]


@contextlib.contextmanager
def local_model_path(location: str, fetch: ModelFetcher | None = None) -> Iterator[pathlib.Path]:
    """Yields a local path holding the model at `location`; a downloaded copy is deleted afterwards.

    `s3://bucket/key.pb` names one frozen graph; any other `s3://bucket/prefix` names a
    SavedModel directory. Models are read fully into memory while loading, so the copy
    is needed only inside the `with` block.
    """
    if not location.startswith("s3://"):
        path = pathlib.Path(location).expanduser()
        if not path.exists():
            raise ModelUnavailable(f"model {location} does not exist")
        yield path
        return
    if fetch is None:
        raise ModelUnavailable(f"model {location} is on S3, and this detector was given no way to fetch it")
    with tempfile.TemporaryDirectory(prefix="videoscan-model-") as temp_dir:
        yield fetch(location, pathlib.Path(temp_dir).resolve())
