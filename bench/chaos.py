"""Chaos benchmark: worker processes killed at random while they work through duplicated jobs.

Starts moto's server (behind the fault-injecting proxy with --faults) and N `python -m worker run`
processes, submits M jobs on short real videos (some sent two or three times), then every
--kill-interval seconds kills a busy worker with SIGKILL or SIGTERM and starts a replacement, as
ECS would, until every job has ended or the deadline passes. It reports what a user would
check: jobs lost, results written twice, events published twice, jobs run by two workers at once.

    .venv/bin/python bench/chaos.py --workers 3 --jobs 20 --kills 10 [--faults 0.1] [--seed 1]

Each worker's JSON log is kept in --log-dir; the attempts, their times and how each ended are
read from those logs ("job started" up to the line that logs its message's outcome, or the
process's death).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from chaos_findings import Attempt, Findings, Kill, report, result_rewrites  # noqa: E402
from tests.support.fault_proxy import FaultPlan, FaultProxy  # noqa: E402
from tests.support.helpers import (queue_depth, receive_events, send, subscribe_queue, upload,  # noqa: E402
                                   write_test_video)
from worker.aws.embedded import EmbeddedAws, create_resources  # noqa: E402
from worker.aws.jobs import FINAL_STATES, JobStore  # noqa: E402
from worker.logs import configure_logging  # noqa: E402

VISIBILITY_TIMEOUT_S = 5
# Each kill costs a job one receive; ten leave room for several kills of the same job (and
# for duplicates bouncing off a running one) before SQS would dead-letter anything.
MAX_RECEIVE_COUNT = 10
# Shorter than a job, so that some SIGTERMs release the job in hand rather than finish it.
STOP_GRACE_S = 2
VIDEO_SIZE, VIDEO_FPS = (1280, 720), 25.0
# The bench polls processes, logs and records: there is nothing to block on.
TICK_S = 0.2

ATTEMPT_STARTED = "job started"


class WorkerProcess:
    """One `python -m worker run` process, its JSON log, and what the log says it is doing."""

    def __init__(self, name: str, log_path: pathlib.Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "worker", "run"], cwd=REPO_ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        self.entries: list[dict] = []
        self.signalled: Kill | None = None
        self.exited_at: float | None = None
        self._offset = 0
        self._partial = b""

    @property
    def alive(self) -> bool:
        return self.exited_at is None

    def refresh(self) -> None:
        """Reads the log's new lines and notices the process's exit."""
        with open(self.log_path, "rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            if line.startswith(b"{"):  # tracebacks of a crash are not JSON
                self.entries.append(json.loads(line))
        if self.exited_at is None and self.process.poll() is not None:
            self.exited_at = time.time()

    def job_in_hand(self) -> str | None:
        for entry in reversed(self.entries):
            if entry["message"] == ATTEMPT_STARTED:
                return entry["job_id"]
            if "outcome" in entry:
                return None
        return None

    def attempts(self) -> list[Attempt]:
        worker_id = next((e["worker_id"] for e in self.entries if e["message"] == "worker started"), self.name)
        found, current = [], None
        for entry in self.entries:
            if entry["message"] == ATTEMPT_STARTED:
                current = (entry["job_id"], _epoch(entry))
            elif "outcome" in entry and current and entry.get("job_id") == current[0]:
                reason = entry["outcome"]["reason"]
                found.append(Attempt(current[0], self.name, worker_id, current[1], _epoch(entry), reason))
                current = None
        if current:  # it died with the job in hand
            killed = self.signalled and self.signalled.signal == "SIGKILL"
            ended = self.signalled.at if killed else (self.exited_at or time.time())
            found.append(Attempt(current[0], self.name, worker_id, current[1], ended, "killed" if killed else "exited"))
        return found


class Fleet:
    """N workers kept running: a killed or crashed one is replaced at once, as ECS would."""

    def __init__(self, size: int, env: dict[str, str], log_dir: pathlib.Path):
        self._env = env
        self._log_dir = log_dir
        self.workers: list[WorkerProcess] = []
        self.crashes: list[WorkerProcess] = []
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        name = f"worker-{len(self.workers) + 1:02d}"
        self.workers.append(WorkerProcess(name, self._log_dir / f"{name}.log", self._env))

    def refresh(self) -> None:
        for worker in self.workers:
            was_alive = worker.alive
            worker.refresh()
            if was_alive and not worker.alive and not worker.signalled:
                self.crashes.append(worker)
                self._start()

    def busy(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive and not w.signalled and w.job_in_hand()]

    def kill(self, worker: WorkerProcess, signum: signal.Signals) -> Kill:
        kill = Kill(worker.name, signum.name, time.time(), worker.job_in_hand())
        worker.process.send_signal(signum)
        worker.signalled = kill
        self._start()
        return kill

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM to all; a second one to any still waiting in a long poll; SIGKILL past the timeout."""
        running = [w for w in self.workers if w.process.poll() is None]
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for worker in running:
            try:
                worker.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                worker.process.send_signal(signal.SIGTERM)
                try:
                    worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    worker.process.kill()
                    worker.process.wait()
        for worker in self.workers:
            worker.refresh()


def _epoch(entry: dict) -> float:
    return datetime.datetime.fromisoformat(entry["time"]).timestamp()


# -- the run ---------------------------------------------------------------------------------

def submit_jobs(clients, resources, video: str, detectors: list[str], count: int, rng: random.Random
                ) -> tuple[list[str], int]:
    """Sends `count` jobs, a third of them two or three times, in shuffled order; returns their ids
    and how many messages were sent."""
    job_ids = [f"chaos-{n:03d}" for n in range(count)]
    messages = []
    for job_id in job_ids:
        copies = rng.choice((2, 3)) if rng.random() < 1 / 3 else 1
        messages += [{"video": video, "detectors": detectors, "job_id": job_id}] * copies
    rng.shuffle(messages)
    for message in messages:
        send(clients, resources, message)
    return job_ids, len(messages)


def all_ended(clients, table: str, job_ids: list[str]) -> bool:
    """Whether every job has a record in an end state (one consistent scan: the table holds only these jobs)."""
    pages = clients.dynamodb.get_paginator("scan").paginate(
        TableName=table, ConsistentRead=True, ProjectionExpression="job_id, #status",
        ExpressionAttributeNames={"#status": "status"})
    ended = {item["job_id"]["S"] for page in pages for item in page["Items"] if item["status"]["S"] in FINAL_STATES}
    return ended >= set(job_ids)


def unleash(fleet: Fleet, kills_wanted: int, interval_s: float, rng: random.Random, finished, deadline: float
            ) -> list[Kill]:
    """Kills a random busy worker every `interval_s` until `kills_wanted`, and waits for every job to end."""
    kills: list[Kill] = []
    next_kill = time.time() + interval_s
    while time.time() < deadline:
        fleet.refresh()
        if finished():
            break
        busy = fleet.busy()
        if len(kills) < kills_wanted and time.time() >= next_kill and busy:
            kills.append(fleet.kill(rng.choice(busy), rng.choice((signal.SIGKILL, signal.SIGTERM))))
            next_kill = time.time() + interval_s
        time.sleep(TICK_S)
    return kills


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--faults", type=float, default=0.0, help="share of AWS requests that fail (0.1: 10%%)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--detectors", default="stub", help="comma-separated, e.g. human,face (default: stub)")
    parser.add_argument("--video-seconds", type=float, default=10.0, help="length of the 1280x720 test video")
    parser.add_argument("--kill-interval", type=float, default=1.5, help="seconds between kills")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds before giving up on open jobs")
    parser.add_argument("--log-dir", type=pathlib.Path, help="where worker logs go (default: a new temp dir)")
    args = parser.parse_args()
    log_dir = args.log_dir or pathlib.Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    configure_logging("text", "WARNING")  # keeps moto's request log quiet
    rng = random.Random(args.seed)
    started = time.time()

    with EmbeddedAws() as aws:
        clients = aws.clients()
        name = f"chaos{uuid.uuid4().hex[:6]}"
        resources = create_resources(clients, name, VISIBILITY_TIMEOUT_S, MAX_RECEIVE_COUNT)
        clients.s3.put_bucket_versioning(Bucket=resources.results_bucket,
                                         VersioningConfiguration={"Status": "Enabled"})
        events_url = subscribe_queue(clients, resources.topic_arn, f"{name}-events")
        frames = int(args.video_seconds * VIDEO_FPS)
        video_path = write_test_video(log_dir / "video.mp4", frames, VIDEO_SIZE, VIDEO_FPS)
        video = upload(clients, resources.results_bucket, "in/video.mp4", video_path)
        job_ids, messages = submit_jobs(clients, resources, video, args.detectors.split(","), args.jobs, rng)

        proxy = FaultProxy(aws.endpoint_url, FaultPlan(args.faults, seed=args.seed)).start() if args.faults else None
        env = {**os.environ, **aws.environment(), **resources.environment(),
               "AWS_ENDPOINT_URL": proxy.url if proxy else aws.endpoint_url,
               "VIDEOSCAN_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S), "VIDEOSCAN_STOP_GRACE_S": str(STOP_GRACE_S),
               "VIDEOSCAN_LOG_FORMAT": "json", "VIDEOSCAN_LOG_LEVEL": "INFO"}
        fleet = Fleet(args.workers, env, log_dir)
        try:
            kills = unleash(fleet, args.kills, args.kill_interval, rng,
                            lambda: all_ended(clients, resources.jobs_table, job_ids), started + args.deadline)
        finally:
            fleet.stop()
            if proxy:
                proxy.stop()
        wall_s = time.time() - started
        jobs = JobStore(clients.dynamodb, resources.jobs_table)
        records = {job_id: jobs.get(job_id) for job_id in job_ids}
        attempts = [attempt for worker in fleet.workers for attempt in worker.attempts()]
        ok = report(Findings(
            job_ids, messages, records, attempts, kills, fleet, receive_events(clients, events_url),
            result_rewrites(clients, resources.results_bucket, attempts),
            queue_depth(clients, resources.dead_letter_queue_url), proxy, wall_s, log_dir,
        ))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
