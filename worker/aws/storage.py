"""S3: checking and fetching videos, and publishing results."""

from __future__ import annotations

import os

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from worker.errors import AccessDenied, InvalidMessage, VideoNotFound, VideoTooLarge


_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
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

    def fetch_video(self, uri: str, directory: str) -> str:
        """Checks the object with HeadObject, then streams it to a private file in `directory`."""
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        size = self._head(bucket, key, uri)["ContentLength"]
        if size > self._max_video_bytes:
            raise VideoTooLarge(f"{uri} is {size} bytes, over the limit of {self._max_video_bytes}")
        path = os.path.join(directory, "video" + _safe_suffix(key))
        try:
            with open(path, "xb") as out:
                self._s3.download_fileobj(bucket, key, out)
        except ClientError as error:
            raise _translate(error, uri) from error
        return path

    def publish_result(self, path: str, uri: str) -> None:
        """Uploads the finished document; S3 makes an object visible only when it is complete."""
        bucket, key = split_s3_uri(uri)
        self.check_allowed(bucket)
        try:
            self._s3.upload_file(path, bucket, key, ExtraArgs={"ContentType": "application/json"})
        except (ClientError, S3UploadFailedError) as error:
            if "NoSuchBucket" in str(error):
                raise InvalidMessage(f"output: bucket {bucket!r} does not exist") from error
            if "AccessDenied" in str(error):
                raise AccessDenied(f"writing {uri} was denied") from error
            raise

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


def _translate(error: ClientError, uri: str) -> Exception:
    code = error.response.get("Error", {}).get("Code", "")
    if code in _NOT_FOUND:
        return VideoNotFound(f"{uri} does not exist")
    if code in _DENIED:
        return AccessDenied(f"access to {uri} was denied")
    return error


def _safe_suffix(key: str) -> str:
    """The key's extension, if it is a plain one: OpenCV picks demuxers partly by name."""
    suffix = os.path.splitext(key)[1].lower()
    return suffix if suffix[1:].isalnum() and len(suffix) <= 6 else ""
