"""Job records: every transition is a conditional write, and lost races are domain errors."""

from __future__ import annotations

import pytest

from worker.errors import JobNotClaimable, LeaseLost
from worker.idempotency import IdempotencyMismatch
from worker.aws.jobs import JobStore
from worker.message import parse_request


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def jobs(clients, resources, clock):
    return JobStore(clients.dynamodb, resources.jobs_table, clock=clock)


def request(job_id="job-1", **fields):
    return parse_request({"video": "s3://bucket/v.mp4", "detectors": ["stub"], **fields}, job_id)


def test_create_is_idempotent_for_the_same_request_and_refuses_a_different_one(jobs):
    record, created = jobs.create(request(tag="first"))
    again, created_again = jobs.create(request(tag="first"))
    assert (created, created_again, again) == (True, False, record)
    assert again.status == "QUEUED" and again.tag == "first" and again.request["tag"] == "first"
    assert again.attempts == 0 and again.created_at.endswith("Z")
    for different in (request(tag="second"), request(tag="first", sample_every=2)):
        with pytest.raises(IdempotencyMismatch):  # any field but version
            jobs.create(different)
    assert jobs.get("job-1") == record


def test_claim_progress_succeed(jobs):
    jobs.create(request())
    lease = jobs.claim("job-1", "worker-a", lease_s=60)
    claimed = jobs.get("job-1")
    assert (claimed.status, claimed.worker_id, claimed.attempts, lease.attempt) == \
        ("RUNNING", "worker-a", 1, 1)
    assert claimed.attempt_id == lease.attempt_id and lease.attempt_id.startswith("worker-a/")
    jobs.progress(lease, 10, 40, lease_s=60)
    assert jobs.get("job-1").progress == {"frames_done": 10, "frames_total": 40}
    jobs.succeed(lease, "s3://out/detections.json", frames_done=41)
    record = jobs.get("job-1")
    assert record.status == "SUCCEEDED"
    assert record.result_uri == "s3://out/detections.json"
    assert record.progress == {"frames_done": 41, "frames_total": 41}
    assert record.lease_until is None and record.finished_at >= record.started_at


def test_a_held_job_cannot_be_claimed_until_its_lease_lapses(jobs, clock):
    jobs.create(request())
    first = jobs.claim("job-1", "worker-a", lease_s=60)
    with pytest.raises(JobNotClaimable) as taken:
        jobs.claim("job-1", "worker-b", lease_s=60)
    assert taken.value.status == "RUNNING" and not taken.value.finished
    assert taken.value.lease_until == int(clock.now + 60)

    clock.now += 61 + jobs.clock_skew_s  # worker-a died: its lease lapses, by more than the skew tolerated
    second = jobs.claim("job-1", "worker-b", lease_s=60)
    assert (jobs.get("job-1").worker_id, second.attempt) == ("worker-b", 2)
    # the old holder can no longer write progress or an end
    with pytest.raises(LeaseLost):
        jobs.progress(first, 5, 40, lease_s=60)
    with pytest.raises(LeaseLost):
        jobs.succeed(first, "s3://out/detections.json", 40)


def test_nothing_moves_a_job_out_of_an_end_state(jobs, clock):
    jobs.create(request())
    lease = jobs.claim("job-1", "worker-a", lease_s=60)
    jobs.fail(lease, "VIDEO_UNREADABLE", "no frame could be decoded")
    clock.now += 3600
    with pytest.raises(JobNotClaimable) as taken:
        jobs.claim("job-1", "worker-b", lease_s=60)
    assert taken.value.finished
    with pytest.raises(LeaseLost):
        jobs.succeed(lease, "s3://out/detections.json", 1)
    with pytest.raises(IdempotencyMismatch):  # an invalid message under its id is not this job
        jobs.fail_unclaimed("job-1", "other-attempt", "refused:x", "INVALID_MESSAGE", "late duplicate")
    record = jobs.get("job-1")
    assert record.status == "FAILED"
    assert record.error == {"code": "VIDEO_UNREADABLE", "message": "no frame could be decoded"}


def test_a_worker_whose_clock_runs_ahead_within_the_tolerated_skew_does_not_take_a_live_job(
        clients, resources, jobs, clock):
    jobs.create(request())
    jobs.claim("job-1", "worker-a", lease_s=60)
    ahead = Clock(clock.now + 60 + 25)  # its clock is past the lease, by less than the skew tolerated
    fast = JobStore(clients.dynamodb, resources.jobs_table, clock=ahead, clock_skew_s=30)

    with pytest.raises(JobNotClaimable):
        fast.claim("job-1", "worker-b", lease_s=60)

    ahead.now += 6  # now lapsed by more than the tolerance, on any clock within it: worker-a is gone
    assert fast.claim("job-1", "worker-b", lease_s=60).attempt == 2


def test_release_puts_the_job_back_for_the_next_worker(jobs):
    jobs.create(request())
    lease = jobs.claim("job-1", "worker-a", lease_s=600)
    jobs.release(lease, "worker shut down")
    record = jobs.get("job-1")
    assert record.status == "QUEUED" and record.worker_id is None
    assert jobs.claim("job-1", "worker-b", lease_s=600).attempt == 2


def test_fail_unclaimed_records_an_invalid_message_that_has_no_record(jobs):
    assert jobs.fail_unclaimed("msg-1", "attempt-1", "refused:x", "INVALID_MESSAGE", "video is required",
                               tag="cam") is True
    record = jobs.get("msg-1")
    assert (record.status, record.error["code"], record.tag, record.attempts) == \
        ("FAILED", "INVALID_MESSAGE", "cam", 0)
    # its redelivery (another receipt) is the same refused job; another invalid message is not
    assert jobs.fail_unclaimed("msg-1", "attempt-2", "refused:x", "INVALID_MESSAGE", "video is required") is False
    with pytest.raises(IdempotencyMismatch):
        jobs.fail_unclaimed("msg-1", "attempt-3", "refused:y", "INVALID_MESSAGE", "video is required")
    assert jobs.get("msg-1") == record

