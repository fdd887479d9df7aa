"""S3: checking and fetching videos, and publishing results."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from worker.errors import AccessDenied, InvalidMessage, OutputUnavailable, VideoChanged, VideoNotFound, VideoTooLarge

DOWNLOAD_CHUNK_BYTES = 1024 * 1024

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
# Object metadata naming the job that wrote a result: no other job writes over it.
OWNER_METADATA = "videoscan-job-id"
_DENIED = {"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise InvalidMessage(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


class Storage:
    def __init__(self, s3, max_video_bytes: int, bucket_allowed=lambda bucket: True):
        self._s3 = s3
        self._max_video_bytes = max_video_bytes
        self._bucket_allowed = bucket_allowed

    def check_allowed(self, bucket: str) -> None:
        if not self._bucket_allowed(bucket):
            raise AccessDenied(f"bucket {bucket!r} is not in VIDEOSCAN_ALLOWED_BUCKETS")

    def fetch_video(self, uri: str, directory: str, check_continue: Callable[[], None] = lambda: None) -> str:
        """Checks the object with HeadObject, then streams that same object to a private file in
        `directory`: the download is pinned to the checked ETag (and version, in a versioned
        bucket), so replacing the object in between cannot slip a larger one past the check,
        and it stops at the limit whatever the answer's size. `check_continue` runs before each
        chunk, so a stop (or a lost lease) ends a long download at once."""
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        head = self._head(bucket, key, uri)
        if head["ContentLength"] > self._max_video_bytes:
            raise VideoTooLarge(f"{uri} is {head['ContentLength']} bytes, over the limit of {self._max_video_bytes}")
        pinned = {"IfMatch": head["ETag"], **({"VersionId": head["VersionId"]} if head.get("VersionId") else {})}
        path = os.path.join(directory, "video" + _safe_suffix(key))
        try:
            body = self._s3.get_object(Bucket=bucket, Key=key, **pinned)["Body"]
            with contextlib.closing(body), open(path, "xb") as out:
                received = 0
                for chunk in body.iter_chunks(DOWNLOAD_CHUNK_BYTES):
                    check_continue()
                    received += len(chunk)
                    if received > self._max_video_bytes:
                        raise VideoTooLarge(f"{uri} is over the limit of {self._max_video_bytes} bytes")
                    out.write(chunk)
        except ClientError as error:
            if _error_code(error) == "PreconditionFailed":
                # Not the job's fault: its next attempt checks the new object.
                raise VideoChanged(f"{uri} changed between its check and its download") from error
            raise _translate(error, uri) from error
        return path

    def check_output(self, uri: str, job_id: str, configured: bool = False) -> None:
        """Before the analysis: the output's bucket exists and `uri` holds no other job's result.

        `configured`: the bucket is the operator's VIDEOSCAN_RESULTS_BUCKET, so a missing one is
        a misconfiguration (OutputUnavailable, retried), not the message's fault.
        """
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        try:
            self._s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            raise _unwritable(error, uri, configured) from error
        owner, _ = self._owner(bucket, key, uri)
        if owner not in (None, job_id):
            raise AccessDenied(f"output {uri} holds another job's result")

    def publish_result(self, path: str, uri: str, job_id: str, configured: bool = False) -> None:
        """Uploads the finished document in one request (S3 shows an object only once complete),
        only where no object is, or where this same job wrote one (its earlier attempt)."""
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        try:
            self._put(path, bucket, key, job_id, IfNoneMatch="*")
            return
        except ClientError as error:
            if _error_code(error) != "PreconditionFailed":
                raise _unwritable(error, uri, configured) from error
        owner, etag = self._owner(bucket, key, uri)
        if owner != job_id:
            raise AccessDenied(f"output {uri} holds another job's result")
        # Replace exactly the object that attempt wrote: a write in between fails this one.
        self._put(path, bucket, key, job_id, IfMatch=etag)

    def _put(self, path: str, bucket: str, key: str, job_id: str, **condition: str) -> None:
        with open(path, "rb") as body:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json",
                                Metadata={OWNER_METADATA: job_id}, **condition)

    def _owner(self, bucket: str, key: str, uri: str) -> tuple[str | None, str | None]:
        """The job that wrote the object at `key` ("" if not videoscan) and its ETag; (None, None) if none is."""
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in _NOT_FOUND:
                return None, None
            raise _translate(error, uri) from error
        return head.get("Metadata", {}).get(OWNER_METADATA, ""), head["ETag"]

    def publish_file(self, path: str, uri: str, content_type: str) -> None:
        """Uploads one finished file (a result, or one of a job's outputs) as one object."""
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        try:
            self._s3.upload_file(path, bucket, key, ExtraArgs={"ContentType": content_type})
        except (ClientError, S3UploadFailedError) as error:
            code = _error_code(error)
            if code == "NoSuchBucket":
                raise InvalidMessage(f"output: bucket {bucket!r} does not exist") from error
            if code in _DENIED:
                raise AccessDenied(f"writing {uri} was denied") from error
            raise

    def delete(self, uri: str) -> None:
        bucket, key = split_s3_uri(uri)
        self._s3.delete_object(Bucket=bucket, Key=key)

    def read_text(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except ClientError as error:
            raise _translate(error, uri) from error

    def _head(self, bucket: str, key: str, uri: str) -> dict:
        try:
            return self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            raise _translate(error, uri) from error


def _error_code(error: ClientError) -> str:
    """S3's error code, never the message text (which quotes the bucket and key, any text)."""
    return error.response.get("Error", {}).get("Code", "")


def _unwritable(error: ClientError, uri: str, configured: bool) -> Exception:
    """Why the output cannot be written: the message's fault for its own `output`, else the operator's."""
    bucket, _ = split_s3_uri(uri)
    code = _error_code(error)
    if code in _NOT_FOUND:
        if configured:
            return OutputUnavailable(f"VIDEOSCAN_RESULTS_BUCKET {bucket!r} does not exist")
        return InvalidMessage(f"output: bucket {bucket!r} does not exist")
    if code in _DENIED:
        if configured:
            return OutputUnavailable(f"writing to VIDEOSCAN_RESULTS_BUCKET {bucket!r} was denied")
        return AccessDenied(f"writing {uri} was denied")
    return error


def _translate(error: ClientError, uri: str) -> Exception:
    code = _error_code(error)
    if code in _NOT_FOUND:
        return VideoNotFound(f"{uri} does not exist")
    if code in _DENIED:
        return AccessDenied(f"access to {uri} was denied")
    return error


def _safe_suffix(key: str) -> str:
    """The key's extension, if it is a plain one: OpenCV picks demuxers partly by name."""
    suffix = os.path.splitext(key)[1].lower()
    return suffix if suffix[1:].isalnum() and len(suffix) <= 6 else ""
