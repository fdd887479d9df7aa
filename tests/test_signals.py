"""SIGTERM/SIGINT as ECS sends them: the first stops polling and lets the job end, the second releases it."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from support.doubles import GatedDetector
from support.helpers import send, upload
from worker.cli import install_stop_handlers
from worker.config import Settings
from worker.analysis.detector_pool import DetectorPool
from worker.aws.jobs import JobStore
from worker.aws.storage import DOWNLOAD_CHUNK_BYTES
from worker.outcome import Reason
from worker.worker import Worker


@pytest.fixture
def gated():
    return GatedDetector()


@pytest.fixture
def make_signalled_worker(settings, clients, gated):
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def make(grace_s: float = 90.0) -> Worker:
        worker = Worker(settings, clients, pool=DetectorPool(build=lambda name, **options: gated))
        install_stop_handlers(worker, grace_s)
        return worker
    yield make
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def signal_mid_job(gated: GatedDetector, *signals: int, then_proceed: bool = True) -> threading.Thread:
    def send_signals():
        gated.started.wait(timeout=30)
        for signum in signals:
            os.kill(os.getpid(), signum)
        if then_proceed:
            gated.proceed.set()
    thread = threading.Thread(target=send_signals)
    thread.start()
    return thread


def queue_two_jobs(clients, resources, small_video):
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "first"})
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "second"})


def test_first_sigterm_finishes_the_job_in_hand_and_takes_no_other(
        clients, resources, small_video, make_signalled_worker, gated):
    queue_two_jobs(clients, resources, small_video)
    sender = signal_mid_job(gated, signal.SIGTERM)

    handled = make_signalled_worker().run()  # no --drain: only the signal ends it
    sender.join()

    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    assert handled == 1
    assert jobs.get("first").status == "SUCCEEDED"
    assert jobs.get("second") is None  # never received: still waiting on the queue for another worker
    visible = clients.sqs.get_queue_attributes(QueueUrl=resources.queue_url,
                                               AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert visible["ApproximateNumberOfMessages"] == "1"


@pytest.mark.parametrize("second_signal, grace_s", [(True, 90.0), (False, 0.0)], ids=["second-signal", "grace-over"])
def test_the_job_is_released_for_another_worker_on_a_second_signal_or_after_the_grace(
        clients, resources, small_video, make_signalled_worker, gated, second_signal, grace_s):
    queue_two_jobs(clients, resources, small_video)
    signals = (signal.SIGTERM, signal.SIGINT) if second_signal else (signal.SIGTERM,)
    worker = make_signalled_worker(grace_s)
    if not second_signal:  # the job stays blocked until the grace timer gives up on it
        give_up = worker.abort
        worker.abort = lambda: (give_up(), gated.proceed.set())
    sender = signal_mid_job(gated, *signals, then_proceed=second_signal)

    worker.run()
    sender.join()

    # the job in hand went back to QUEUED, and its message is visible again right away
    jobs = JobStore(clients.dynamodb, resources.jobs_table)
    released = [job_id for job_id in ("first", "second") if jobs.get(job_id)]
    assert len(released) == 1
    record = jobs.get(released[0])
    assert record.status == "QUEUED" and record.attempts == 1 and record.worker_id is None
    assert record.last_error == "worker shut down"
    # and another worker picks it up immediately and finishes it
    other = Worker(Settings.load(), clients, pool=DetectorPool())
    other.run(drain=True)
    assert jobs.get(released[0]).status == "SUCCEEDED"
    assert jobs.get(released[0]).attempts == 2


def test_a_stop_during_the_download_releases_the_job_at_the_next_chunk(clients, resources, make_worker):
    # an object of several download chunks, that would fail VIDEO_UNREADABLE if it were read to its end
    clients.s3.put_object(Bucket=resources.results_bucket, Key="in/big.mp4", Body=os.urandom(4 * DOWNLOAD_CHUNK_BYTES))
    send(clients, resources, {"video": f"s3://{resources.results_bucket}/in/big.mp4", "job_id": "downloading",
                              "detectors": ["stub"]})
    worker = make_worker()
    message = worker.queue.receive(1, 30)
    worker.abort()  # as when the stop grace runs out, or a second SIGTERM comes, during the download

    outcome = worker.handle(message)

    record = JobStore(clients.dynamodb, resources.jobs_table).get("downloading")
    assert (record.status, record.last_error, record.error) == ("QUEUED", "worker shut down", None)
    assert outcome.reason is Reason.RELEASED
