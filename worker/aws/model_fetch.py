"""Fetches a detector's model from S3 with the worker's own clients (detectors/ has no AWS access).

With a cache directory, each model is downloaded once per worker and kept on local disk under
its objects' ETags: a job naming it again loads it from disk, and a replaced object (a new ETag)
is downloaded again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pathlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable

from botocore.exceptions import BotoCoreError, ClientError

from detectors import ModelUnavailable
from worker.aws.storage import DOWNLOAD_CHUNK_BYTES
from worker.errors import AccessDenied
from worker.workdir import TEMP_PREFIX

log = logging.getLogger(__name__)

# Larger than any detection model the worker is meant to load (SSD/EfficientDet SavedModels
# are tens to hundreds of MB); a bigger object is refused before it is downloaded.
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3

# (key, ETag, size) of each object a model is made of.
Manifest = list[tuple[str, str, int]]


class S3ModelFetcher:
    """Downloads `s3://bucket/key.pb` (one frozen graph) or `s3://bucket/prefix` (a SavedModel directory)."""

    def __init__(self, s3, cache: bool = False, max_bytes: int = DEFAULT_MAX_MODEL_BYTES,
                 bucket_allowed: Callable[[str], bool] = lambda bucket: True):
        """`cache`: keep each model on local disk by ETag (a worker); else it goes where it is asked."""
        self._s3 = s3
        self._cache = cache
        self._cache_dir: pathlib.Path | None = None
        self._max_bytes = max_bytes
        self._bucket_allowed = bucket_allowed
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, str], str] = {}  # (bucket, key) -> the digest of its copy on disk
        self.downloads = 0  # models downloaded (not found in the cache)

    def __call__(self, location: str, into: pathlib.Path) -> pathlib.Path:
        bucket, _, key = location.removeprefix("s3://").partition("/")
        if not self._bucket_allowed(bucket):
            raise AccessDenied(f"model {location}: bucket {bucket!r} is not in VIDEOSCAN_ALLOWED_BUCKETS")
        try:
            manifest = self._manifest(bucket, key, location)
            size = sum(item_size for _, _, item_size in manifest)
            if size > self._max_bytes:
                raise ModelUnavailable(f"model {location} is {size} bytes, over the limit of {self._max_bytes}")
            with self._lock:
                return self._fetch(bucket, key, manifest, into)
        except (BotoCoreError, ClientError) as error:
            raise ModelUnavailable(f"model {location} cannot be downloaded: {error}") from error

    def _manifest(self, bucket: str, key: str, location: str) -> Manifest:
        if key.endswith(".pb"):
            try:
                head = self._s3.head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    raise ModelUnavailable(f"model {location} does not exist") from error
                raise
            return [(key, head["ETag"], head["ContentLength"])]
        prefix = key.rstrip("/") + "/" if key else ""
        manifest = [(item["Key"], item["ETag"], item["Size"])
                    for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for item in page.get("Contents", []) if not item["Key"].endswith("/")]  # not folder markers
        if not manifest:
            raise ModelUnavailable(f"model {location} has no objects")
        return manifest

    def _fetch(self, bucket: str, key: str, manifest: Manifest, into: pathlib.Path) -> pathlib.Path:
        single = key.endswith(".pb")
        if not self._cache:
            return self._download(bucket, key, manifest, into, single)
        digest = hashlib.sha256(repr((bucket, key, sorted(manifest))).encode()).hexdigest()[:32]
        kept = self._directory() / digest
        if not kept.exists():
            # Downloaded beside, then renamed: a model in the cache is always complete.
            staging = pathlib.Path(tempfile.mkdtemp(dir=self._directory(), prefix="partial-"))
            try:
                self._download(bucket, key, manifest, staging, single)
                staging.rename(kept)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        replaced = self._kept.get((bucket, key))
        if replaced not in (None, digest):  # the objects changed: their old copy is never loaded again
            shutil.rmtree(self._directory() / replaced, ignore_errors=True)
        self._kept[(bucket, key)] = digest
        return kept / pathlib.PurePosixPath(key).name if single else kept

    def _download(self, bucket: str, key: str, manifest: Manifest, into: pathlib.Path, single: bool) -> pathlib.Path:
        started = time.monotonic()
        prefix = "" if single else (key.rstrip("/") + "/" if key else "")
        for item_key, etag, _ in manifest:
            name = pathlib.PurePosixPath(item_key).name if single else item_key[len(prefix):]
            target = (into / name).resolve()
            if not target.is_relative_to(into.resolve()):  # a key that would escape `into`
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            # Pinned to the listed ETag: an object replaced meanwhile fails rather than slipping past the size check.
            body = self._s3.get_object(Bucket=bucket, Key=item_key, IfMatch=etag)["Body"]
            with contextlib.closing(body), open(target, "xb") as out:
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    out.write(chunk)
        self.downloads += 1
        log.info("model downloaded", extra={"model": f"s3://{bucket}/{key}", "objects": len(manifest),
                                            "bytes": sum(size for _, _, size in manifest),
                                            "seconds": round(time.monotonic() - started, 3)})
        return into / pathlib.PurePosixPath(key).name if single else into

    def _directory(self) -> pathlib.Path:
        """The cache's private directory, made on first use (a worker's start removes its stale ones)."""
        if self._cache_dir is None or not self._cache_dir.is_dir():
            self._cache_dir = pathlib.Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-models-"))
        return self._cache_dir
