"""Fetches a detector's model from S3 with the worker's own clients (detectors/ has no AWS access)."""

from __future__ import annotations

import pathlib

from botocore.exceptions import BotoCoreError, ClientError

from detectors import ModelUnavailable


class S3ModelFetcher:
    """Downloads `s3://bucket/key.pb` (one frozen graph) or `s3://bucket/prefix` (a SavedModel directory)."""

    def __init__(self, s3):
        self._s3 = s3

    def __call__(self, location: str, into: pathlib.Path) -> pathlib.Path:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        try:
            return self._download(bucket, key, into)
        except (BotoCoreError, ClientError) as error:
            raise ModelUnavailable(f"model {location} cannot be downloaded: {error}") from error

    def _download(self, bucket: str, key: str, into: pathlib.Path) -> pathlib.Path:
        if key.endswith(".pb"):
            target = into / pathlib.PurePosixPath(key).name
            self._s3.download_file(bucket, key, str(target))
            return target
        prefix = key.rstrip("/") + "/" if key else ""
        found = False
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                target = (into / item["Key"][len(prefix):]).resolve()
                if item["Key"].endswith("/") or not target.is_relative_to(into):  # folder markers, keys escaping `into`
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                self._s3.download_file(bucket, item["Key"], str(target))
                found = True
        if not found:
            raise ModelUnavailable(f"model s3://{bucket}/{key} has no objects")
        return into
