"""What bench/chaos.py found: the attempts and kills of a run, and the report a user would check."""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
from typing import TYPE_CHECKING

from tests.support.fault_proxy import DROPPED_AFTER, FaultProxy
from worker.aws.jobs import JobRecord

if TYPE_CHECKING:
    from chaos import Fleet

# A worker that found a job ended but its event not yet marked published, and published it.
EVENT_REPUBLISHED = "publishing the completion event a previous attempt did not"


@dataclasses.dataclass(frozen=True)
class Kill:
    worker: str
    signal: str
    at: float
    job_id: str | None  # the job in hand, if any


@dataclasses.dataclass(frozen=True)
class Attempt:
    job_id: str
    worker: str
    worker_id: str
    started: float
    ended: float
    outcome: str  # the reason of the message's outcome, or "killed" / "exited"

    def overlaps(self, other: "Attempt") -> float:
        """Seconds during which both attempts ran (0 if they never did at once)."""
        return max(0.0, min(self.ended, other.ended) - max(self.started, other.started))


def concurrent_runs(attempts: list[Attempt]) -> list[tuple[Attempt, Attempt, float]]:
    """Pairs of attempts at the same job, on two workers, that ran at the same time."""
    pairs = []
    by_job = collections.defaultdict(list)
    for attempt in attempts:
        by_job[attempt.job_id].append(attempt)
    for runs in by_job.values():
        for i, first in enumerate(runs):
            for second in runs[i + 1:]:
                if first.worker != second.worker and first.overlaps(second) > 0:
                    pairs.append((first, second, first.overlaps(second)))
    return pairs


def result_rewrites(clients, bucket: str, attempts: list[Attempt]) -> collections.Counter:
    """Result writes beyond the first, by cause, from the versions of each result object."""
    writers = collections.defaultdict(list)  # job -> (worker_id, started_at) of each version, the latest first
    pages = clients.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="results/")
    versions = [version for page in pages for version in page.get("Versions", [])]
    for version in sorted(versions, key=lambda v: not v["IsLatest"]):
        body = clients.s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])["Body"]
        document = json.loads(body.read())
        writers[document["job_id"]].append((document["worker_id"], document["started_at"]))
    outcome = {(a.job_id, a.worker_id): a.outcome for a in attempts}
    causes = collections.Counter()
    for job_id, written in writers.items():
        causes["the same document again (a PUT retried after its response was lost)"] += len(written) - len(set(written))
        for worker_id, _ in set(written) - {written[0]}:
            how = outcome.get((job_id, worker_id), "unknown")
            causes[f"rewritten by a later attempt; the earlier writer's attempt ended: {how}"] += 1
    return +causes


@dataclasses.dataclass
class Findings:
    job_ids: list[str]
    messages: int
    records: dict[str, JobRecord | None]
    attempts: list[Attempt]
    kills: list[Kill]
    fleet: Fleet
    events: list[dict]
    result_rewrites: collections.Counter
    dead_letters: int
    proxy: FaultProxy | None
    wall_s: float
    log_dir: pathlib.Path

    def lost(self) -> list[str]:
        return [job_id for job_id, r in self.records.items() if not r or not r.ended]

    def republished(self) -> tuple[collections.Counter, collections.Counter]:
        """Events published again, by job: by botocore after the proxy dropped a Publish's response,
        and by a worker that saw the job ended but its event not yet marked published."""
        faults = self.proxy.faults_of("sns", "Publish", DROPPED_AFTER) if self.proxy else []
        retried = collections.Counter(json.loads(f.call.params()["Message"])["job_id"] for f in faults)
        redelivered = collections.Counter(e["job_id"] for w in self.fleet.workers for e in w.entries
                                          if e["message"] == EVENT_REPUBLISHED)
        return retried, redelivered

    def kill_survived(self, kill: Kill) -> bool:
        """The job in hand still ended, and a SIGTERM ended the process with status 0."""
        worker = next(w for w in self.fleet.workers if w.name == kill.worker)
        exited_cleanly = kill.signal == "SIGKILL" or worker.process.returncode == 0
        return exited_cleanly and kill.job_id not in self.lost()


def report(run: Findings) -> bool:
    """Prints the figures; returns whether the run met the target."""
    statuses = collections.Counter(r.status for r in run.records.values() if r)
    lost = run.lost()
    events = collections.Counter(e["job_id"] for e in run.events)
    wrong_events = [e for e in run.events if getattr(run.records.get(e["job_id"]), "status", None) != e["status"]]
    retried, redelivered = run.republished()
    explained = retried + redelivered
    extra_events = {job_id: n - 1 for job_id, n in events.items() if n > 1}
    unexplained = {job_id: n - explained[job_id] for job_id, n in extra_events.items() if n > explained[job_id]}
    without_event = [job_id for job_id in run.job_ids if job_id not in lost and not events[job_id]]
    overlaps = concurrent_runs(run.attempts)
    survived = [k for k in run.kills if run.kill_survived(k)]
    signals = collections.Counter(k.signal for k in run.kills)
    sigterm_exits = [w.exited_at - w.signalled.at for w in run.fleet.workers
                     if w.signalled and w.signalled.signal == "SIGTERM" and w.exited_at]
    attempts = max((r.attempts for r in run.records.values() if r), default=0)

    print(f"jobs submitted:             {len(run.job_ids)} ({run.messages} messages, duplicates included)")
    print(f"SUCCEEDED / FAILED:         {statuses['SUCCEEDED']} / {statuses['FAILED']}")
    print(f"lost (no end state):        {len(lost)}{_listed(lost)} (dead-letter queue: {run.dead_letters})")
    print(f"duplicate result writes:    {sum(run.result_rewrites.values())}")
    for cause, n in run.result_rewrites.items():
        print(f"    {n}: {cause}")
    print(f"duplicate events:           {sum(extra_events.values())}{_listed(extra_events)}")
    print(f"    possible causes: a Publish retried after its response was lost {dict(retried)}; published by a "
          f"worker that found the event not yet marked published {dict(redelivered)}; unexplained: "
          f"{unexplained or 0}; with a wrong status: {len(wrong_events)}")
    print(f"jobs with no event:         {len(without_event)}{_listed(without_event)}")
    print(f"run by two workers at once: {len({first.job_id for first, _, _ in overlaps})}")
    for first, second, seconds in overlaps:
        print(f"    {first.job_id}: {first.worker} ({first.outcome}) and {second.worker} ({second.outcome}) "
              f"together for {seconds:.2f} s")
    print(f"maximum attempts:           {attempts} (attempts ended: "
          f"{dict(collections.Counter(a.outcome for a in run.attempts))})")
    print(f"kills survived:             {len(survived)}/{len(run.kills)} ({signals['SIGKILL']} SIGKILL, "
          f"{signals['SIGTERM']} SIGTERM; {sum(1 for k in run.kills if k.job_id)} mid-job; "
          f"slowest exit after SIGTERM {max(sigterm_exits, default=0):.1f} s)")
    print(f"worker crashes:             {len(run.fleet.crashes)}{_listed([w.name for w in run.fleet.crashes])}")
    if run.proxy:
        kinds = collections.Counter(f.kind for f in run.proxy.faults)
        services = collections.Counter(f.call.service for f in run.proxy.faults)
        print(f"faults injected:            {len(run.proxy.faults)} of {sum(run.proxy.requests.values())} "
              f"requests {dict(kinds)} {dict(services)}")
    print(f"wall time:                  {run.wall_s:.1f} s (worker logs: {run.log_dir})")
    return (not lost and not overlaps and not unexplained and not wrong_events
            and len(survived) == len(run.kills) and not run.fleet.crashes)


def _listed(items) -> str:
    return f" {dict(items) if isinstance(items, dict) else list(items)}" if items else ""


