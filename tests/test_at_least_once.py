"""At-least-once delivery made safe: kills, duplicates, long jobs, takeovers and poison jobs."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from detectors.stub import StubDetector
from support.helpers import drain_until, queue_depth, receive_events, send, subscribe_queue, upload, wait_for
from support.doubles import GatedDetector
from worker.config import MIN_VISIBILITY_TIMEOUT_S, Settings
from worker.analysis.detector_pool import DetectorPool
from worker.aws.embedded import create_resources
from worker.errors import LeaseLost
from worker.aws.heartbeat import Heartbeat
from worker.aws.jobs import JobStore
from worker.outcome import Outcome, Reason
from worker.message import parse_request
from worker.aws.task_protection import TaskProtection
from worker.workdir import TEMP_PREFIX
from worker.worker import Worker


@pytest.fixture
def fast_resources(clients, monkeypatch):
    """Resources with a 2-second visibility timeout (the worker's too), so redeliveries come quickly."""
    created = create_resources(clients, f"fast{os.urandom(4).hex()}", visibility_timeout=2, max_receive_count=5)
    for name, value in {**created.environment(), "VIDEOSCAN_VISIBILITY_TIMEOUT": "2"}.items():
        monkeypatch.setenv(name, value)
    clients.s3.put_bucket_versioning(Bucket=created.results_bucket, VersioningConfiguration={"Status": "Enabled"})
    return created


def worker_with(clients, detector, **overrides) -> Worker:
    return Worker(Settings.load(**overrides), clients, pool=DetectorPool(build=lambda name, **options: detector))


def result_versions(clients, resources, job_id: str) -> int:
    versions = clients.s3.list_object_versions(Bucket=resources.results_bucket, Prefix=f"results/{job_id}/")
    return len(versions.get("Versions", []))


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_taken_over_and_the_job_ends_once(
        clients, fast_resources, make_worker, data_dir):
    # given a real job (persons in vtest.avi) running in a worker process
    events = subscribe_queue(clients, fast_resources.topic_arn, fast_resources.jobs_table + "-events")
    video = upload(clients, fast_resources.results_bucket, "in/vtest.avi", str(data_dir / "vtest.avi"))
    send(clients, fast_resources, {"video": video, "detectors": ["human"], "sample_every": 2, "job_id": "killed"})
    jobs = JobStore(clients.dynamodb, fast_resources.jobs_table)
    victim = subprocess.Popen([sys.executable, "-m", "worker", "run"], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (getattr(jobs.get("killed"), "progress", None) or {}).get("frames_done"), 120, "progress")
    finally:
        # when the instance is lost mid-job
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert jobs.get("killed").status == "RUNNING"

    # then the next worker takes the job over once its lease lapses, and finishes it
    successor = make_worker()
    drain_until(successor, lambda: jobs.get("killed").status == "SUCCEEDED", timeout_s=180)
    record = jobs.get("killed")
    assert record.attempts == 2 and record.worker_id == successor.worker_id
    assert result_versions(clients, fast_resources, "killed") == 1
    assert [e["status"] for e in receive_events(clients, events)] == ["SUCCEEDED"]
    assert queue_depth(clients, fast_resources.queue_url) == 0
    # and the dead worker's work directory is gone
    assert not [d for d in os.listdir("/tmp") if d.startswith(f"{TEMP_PREFIX}{victim.pid}-")]


def test_duplicate_deliveries_to_several_workers_run_the_job_once(clients, fast_resources, small_video):
    # given one job delivered three times, and three workers polling at once
    events = subscribe_queue(clients, fast_resources.topic_arn, fast_resources.jobs_table + "-events")
    video = upload(clients, fast_resources.results_bucket, "in/small.mp4", small_video)
    for _ in range(3):
        send(clients, fast_resources, {"video": video, "detectors": ["stub"], "job_id": "dup"})
    jobs = JobStore(clients.dynamodb, fast_resources.jobs_table)
    reasons: list[Reason] = []

    class Recording(Worker):
        def handle(self, message):
            outcome = super().handle(message)
            reasons.append(outcome.reason)
            return outcome

    def work():
        worker = Recording(Settings.load(), clients, pool=DetectorPool())
        drain_until(worker, lambda: queue_depth(clients, fast_resources.queue_url) == 0, timeout_s=60)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then it ran once: one success, the duplicates settled without work, one result, one event
    assert reasons.count(Reason.SUCCEEDED) == 1
    assert set(reasons) <= {Reason.SUCCEEDED, Reason.DUPLICATE, Reason.BUSY} and reasons.count(Reason.DUPLICATE) == 2
    assert jobs.get("dup").attempts == 1
    assert result_versions(clients, fast_resources, "dup") == 1
    assert [e["job_id"] for e in receive_events(clients, events)] == ["dup"]


def test_a_job_lasting_many_visibility_timeouts_is_never_handed_to_another_worker(
        clients, fast_resources, small_video):
    # given a job that runs for five visibility timeouts (2 s each)
    video = upload(clients, fast_resources.results_bucket, "in/small.mp4", small_video)
    send(clients, fast_resources, {"video": video, "detectors": ["stub"], "job_id": "long"})
    gated = GatedDetector()
    worker = worker_with(clients, gated)
    running = threading.Thread(target=worker.run, kwargs={"drain": True})
    running.start()
    gated.started.wait(timeout=30)
    jobs = JobStore(clients.dynamodb, fast_resources.jobs_table)
    first = jobs.get("long")

    # when another consumer polls the queue all that time, it never receives the message,
    # and the job stays held by the same attempt under a lease that never lapses
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stolen = clients.sqs.receive_message(QueueUrl=fast_resources.queue_url, WaitTimeSeconds=1)
        assert "Messages" not in stolen, "the message became visible while its job ran"
        held = jobs.get("long")
        assert (held.status, held.attempt_id) == ("RUNNING", first.attempt_id)
        assert held.lease_until >= time.time() - 1, "the lease lapsed while its job ran"
    gated.proceed.set()
    running.join()

    # then the job ran once, and its lease was renewed while it ran
    assert held.lease_until >= first.lease_until + 5
    record = jobs.get("long")
    assert record.status == "SUCCEEDED" and record.attempts == 1


def test_a_worker_that_lost_its_lease_stops_without_writing_anything(clients, fast_resources, small_video):
    # given a job whose worker stalls long enough for another worker to take it over
    video = upload(clients, fast_resources.results_bucket, "in/small.mp4", small_video)
    send(clients, fast_resources, {"video": video, "detectors": ["stub"], "job_id": "taken"})
    gated = GatedDetector()
    worker = worker_with(clients, gated)
    outcome: list[Outcome] = []
    running = threading.Thread(target=lambda: outcome.append(worker.handle(worker.queue.receive(1, 2))))
    running.start()
    gated.started.wait(timeout=30)
    later = JobStore(clients.dynamodb, fast_resources.jobs_table, clock=lambda: time.time() + 3600)
    new_owner = later.claim("taken", "worker-b", lease_s=3600)

    # when the first worker resumes
    gated.proceed.set()
    running.join()

    # then it stops: no result, and the record still belongs to the new owner
    assert outcome == [Outcome.leave(Reason.LOST)]
    record = JobStore(clients.dynamodb, fast_resources.jobs_table).get("taken")
    assert (record.status, record.attempt_id, record.attempts) == ("RUNNING", new_owner.attempt_id, 2)
    assert result_versions(clients, fast_resources, "taken") == 0


class ExplodingDetector(StubDetector):
    def detect(self, frames):
        raise RuntimeError("kaboom")


def test_a_poison_job_fails_on_its_last_attempt_and_ends_in_the_dead_letter_queue(clients, small_video, monkeypatch):
    # given a job that hits a bug on every attempt, on a queue that dead-letters after 2 receives
    resources = create_resources(clients, f"poison{os.urandom(4).hex()}", visibility_timeout=MIN_VISIBILITY_TIMEOUT_S,
                                 max_receive_count=2)
    for name, value in {**resources.environment(), "VIDEOSCAN_VISIBILITY_TIMEOUT": str(MIN_VISIBILITY_TIMEOUT_S)}.items():
        monkeypatch.setenv(name, value)
    events = subscribe_queue(clients, resources.topic_arn, resources.jobs_table + "-events")
    video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
    send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "poison"})
    jobs = JobStore(clients.dynamodb, resources.jobs_table)

    ended = lambda: getattr(jobs.get("poison"), "status", None) == "FAILED"  # noqa: E731
    drain_until(worker_with(clients, ExplodingDetector()), ended, timeout_s=60)

    # then the record ended FAILED with INTERNAL on the second (last) attempt, never left RUNNING
    record = jobs.get("poison")
    assert record.attempts == 2
    assert record.error == {"code": "INTERNAL", "message": "RuntimeError: kaboom"}
    assert [e["status"] for e in receive_events(clients, events)] == ["FAILED"]
    # and SQS moves the message to the dead-letter queue at its next receive
    assert "Messages" not in clients.sqs.receive_message(QueueUrl=resources.queue_url, WaitTimeSeconds=2)
    moved = clients.sqs.receive_message(QueueUrl=resources.dead_letter_queue_url, WaitTimeSeconds=2)["Messages"]
    assert json.loads(moved[0]["Body"])["job_id"] == "poison"


class AgentEndpoint(http.server.ThreadingHTTPServer):
    """The ECS agent's task-protection endpoint on loopback, recording each call."""

    def __init__(self, status: int = 200):
        self.calls: list[tuple[str, str, dict]] = []
        self.status = status
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.calls.append(("PUT", self.path, body))
                self.send_response(server.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.mark.parametrize("status", [200, 500])
def test_scale_in_protection_is_on_only_while_a_job_runs(clients, resources, small_video, status):
    agent = AgentEndpoint(status)
    try:
        video = upload(clients, resources.results_bucket, "in/small.mp4", small_video)
        send(clients, resources, {"video": video, "detectors": ["stub"], "job_id": "protected"})
        worker = Worker(Settings.load(), clients, pool=DetectorPool(), protection=TaskProtection(agent.uri))

        worker.run(drain=True)
    finally:
        agent.shutdown()
        agent.server_close()

    # the endpoint was asked to protect the task for the job and to drop protection after it;
    # an endpoint that fails changes nothing for the job
    assert agent.calls == [
        ("PUT", "/v1/task-protection/v1/state", {"ProtectionEnabled": True, "ExpiresInMinutes": 60}),
        ("PUT", "/v1/task-protection/v1/state", {"ProtectionEnabled": False}),
    ]
    assert JobStore(clients.dynamodb, resources.jobs_table).get("protected").status == "SUCCEEDED"


def test_an_event_lost_after_the_job_ended_is_published_by_the_next_delivery(clients, fast_resources, small_video):
    # given a worker whose completion event cannot be published (its topic is gone)
    events = subscribe_queue(clients, fast_resources.topic_arn, fast_resources.jobs_table + "-events")
    gone = clients.sns.create_topic(Name=f"{fast_resources.jobs_table}-gone")["TopicArn"]
    clients.sns.delete_topic(TopicArn=gone)
    video = upload(clients, fast_resources.results_bucket, "in/small.mp4", small_video)
    send(clients, fast_resources, {"video": video, "detectors": ["stub"], "job_id": "unannounced", "tag": "t"})
    jobs = JobStore(clients.dynamodb, fast_resources.jobs_table)

    Worker(Settings.load(notify_topic_arn=gone), clients, pool=DetectorPool()).run(drain=True)

    # then the job has ended, unannounced, and its message was kept for a redelivery
    record = jobs.get("unannounced")
    assert record.status == "SUCCEEDED" and record.notified_at is None
    assert queue_depth(clients, fast_resources.queue_url) == 1

    # when the message comes back to a worker that can publish
    healthy = Worker(Settings.load(), clients, pool=DetectorPool())
    drain_until(healthy, lambda: queue_depth(clients, fast_resources.queue_url) == 0, timeout_s=30)

    # then the job was not run again, and its one event went out
    record = jobs.get("unannounced")
    assert record.attempts == 1 and record.notified_at is not None
    assert result_versions(clients, fast_resources, "unannounced") == 1
    assert receive_events(clients, events) == [{
        "job_id": "unannounced", "status": "SUCCEEDED", "tag": "t", "video": video,
        "result_uri": record.result_uri, "error": None}]


def test_a_worker_paused_longer_than_its_lease_stops_the_job_on_resuming(clients, fast_resources, small_video):
    # given a job held by a worker whose process then freezes (SIGSTOP, a stalled VM) for 3 s
    video = upload(clients, fast_resources.results_bucket, "in/small.mp4", small_video)
    send(clients, fast_resources, {"video": video, "detectors": ["stub"], "job_id": "frozen"})
    worker = Worker(Settings.load(), clients, pool=DetectorPool())
    message = worker.queue.receive(1, 2)
    jobs = JobStore(clients.dynamodb, fast_resources.jobs_table)
    jobs.create(parse_request(json.loads(message.body), "frozen"))
    lease = jobs.claim("frozen", worker.worker_id, lease_s=2)
    now = [time.time()]
    heartbeat = Heartbeat(worker.queue, jobs, message, lease, visibility_timeout=2, clock=lambda: now[0])
    heartbeat.check()  # fresh lease: fine

    now[0] += 3  # the freeze: no renewal for longer than the lease

    # then, before even writing again, the worker knows the job may be another's now
    with pytest.raises(LeaseLost, match="not renewed"):
        heartbeat.check()
