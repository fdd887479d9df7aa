"""Where a user's model lives: a local path as is, or an S3 object or prefix fetched to a private temp dir."""

from __future__ import annotations

import contextlib
import pathlib
import tempfile
from collections.abc import Iterator

from worker.errors import ModelUnavailable


@contextlib.contextmanager
def local_model_path(location: str) -> Iterator[pathlib.Path]:
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
    import boto3  # only for a model on S3: a local run of the packaged model never loads it
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = location.removeprefix("s3://").partition("/")
    with tempfile.TemporaryDirectory(prefix="videoscan-model-") as temp_dir:
        try:
            path = _download(boto3.session.Session().client("s3"), bucket, key, pathlib.Path(temp_dir).resolve())
        except (BotoCoreError, ClientError) as error:
            raise ModelUnavailable(f"model {location} cannot be downloaded: {error}") from error
        yield path


def _download(s3, bucket: str, key: str, into: pathlib.Path) -> pathlib.Path:
    if key.endswith(".pb"):
        target = into / pathlib.PurePosixPath(key).name
        s3.download_file(bucket, key, str(target))
        return target
    prefix = key.rstrip("/") + "/" if key else ""
    found = False
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = (into / item["Key"][len(prefix):]).resolve()
            if item["Key"].endswith("/") or not target.is_relative_to(into):  # folder markers, keys escaping `into`
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            found = True
    if not found:
        raise ModelUnavailable(f"model s3://{bucket}/{key} has no objects")
    return into
