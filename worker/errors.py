"""One rooted error hierarchy; each job failure carries the contract's error code."""

import contextlib

import detectors.errors


class VideoscanError(Exception):
    """Root of every error videoscan raises on purpose."""


class JobFailure(VideoscanError):
    """A job cannot succeed; the job ends FAILED with `code` and the message is settled."""

    code = "INTERNAL"


class InvalidMessage(JobFailure):
    """The message is not a valid job (the text names the field)."""

    code = "INVALID_MESSAGE"


class MessageRefused(JobFailure):
    """A message that names a job but is not a valid one: that job ends FAILED with the failure's code.

    Carries the job it names (the SQS message id when it names none) and what of it may be reported.
    """

    def __init__(self, failure: JobFailure, job_id: str, tag: str | None = None, video: str | None = None):
        super().__init__(str(failure))
        self.code = failure.code
        self.job_id = job_id
        self.tag = tag
        self.video = video


class VideoNotFound(JobFailure):
    """The video's bucket or key does not exist."""

    code = "VIDEO_NOT_FOUND"


class AccessDenied(JobFailure):
    """The worker may not read or write the named location."""

    code = "ACCESS_DENIED"


class VideoUnreadable(JobFailure):
    """The object is empty, truncated beyond use, or not a video."""

    code = "VIDEO_UNREADABLE"


class VideoTooLarge(JobFailure):
    """The object or its frames exceed the configured limits."""

    code = "VIDEO_TOO_LARGE"


class VideoTooLong(JobFailure):
    """The video lasts longer than the configured limit."""

    code = "VIDEO_TOO_LONG"


class UnknownDetector(JobFailure):
    """A detector name is not in the registry."""

    code = "UNKNOWN_DETECTOR"


class OutputUnavailable(VideoscanError):
    """The results bucket the operator configured cannot be written: not the job's fault, so it is retried."""


class VideoChanged(VideoscanError):
    """The video was replaced between its check and its download; the job is retried, and checks it again."""


class NotAJob(VideoscanError):
    """The body cannot name a job at all; it is left for the dead-letter queue."""


class JobNotClaimable(VideoscanError):
    """Another worker holds the job, or it has already ended (a lost race, not a failure)."""

    def __init__(self, job_id: str, status: str | None, lease_until: float | None = None):
        super().__init__(f"job {job_id} is not claimable (status {status})")
        self.job_id = job_id
        self.status = status
        self.lease_until = lease_until  # epoch seconds, while another worker holds it

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED")


class LeaseLost(VideoscanError):
    """This worker no longer holds the job; it must stop without writing its end."""


class JobCancelled(VideoscanError):
    """The worker is shutting down; the job is released for another worker."""


class ConfigError(VideoscanError):
    """The worker's configuration is missing or invalid (exit status 2)."""


# The detectors' errors as the worker's: this is where they get the contract's codes. A model that
# cannot be loaded fails the job that names it, not the worker.
_FROM_DETECTORS = {detectors.errors.UnknownDetector: UnknownDetector,
                   detectors.errors.ModelUnavailable: UnknownDetector}


@contextlib.contextmanager
def detector_errors_as_ours():
    """Re-raises a detector's error as the worker's own error of that kind (an unexpected one as is)."""
    try:
        yield
    except detectors.errors.DetectorError as error:
        ours = _FROM_DETECTORS.get(type(error))
        if ours is None:
            raise
        raise ours(str(error)) from error
