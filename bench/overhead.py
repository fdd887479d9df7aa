"""The queue path against `videoscan analyze` on the 8x copy of vtest.avi (human): wall-time ratio.

The queue path runs against moto's server on loopback (worker.aws.embedded). The video is uploaded
once; each round sends a job message with boto3 and runs `videoscan run --drain` in a new process,
which receives it, claims the job in DynamoDB, downloads the video from S3, analyses it writing
progress to DynamoDB, uploads detections.json, records the end, and then polls the queue once more
(an empty 2 s receive) before exiting.

Three figures for the queue path:
- whole process: `run --drain` from start to exit;
- until the job ended (judged): from the process's start to the record's `finished_at`, so
  everything a job costs, start-up included, but not the drain's last empty poll;
- job record: `started_at` to `finished_at` (from the claim; no interpreter start, no receive).

    .venv/bin/python bench/overhead.py [--quick] [--rounds N]
"""

from __future__ import annotations

import json
import logging
import pathlib
import tempfile
import time
import uuid

from common import (VTEST, arguments, footer, header, interleaved, median, paired_ratio, run_process, verdict,
                    video_copy, videoscan)
from worker.aws.embedded import EmbeddedAws, create_resources
from worker.aws.jobs import JobStore

TARGET = 1.05  # queue path against analyze, same video


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0])
    header("overhead: the queue path against videoscan analyze", args)
    video = video_copy(VTEST, copies=2 if args.quick else 8)
    print(f"video: {video.name} ({video.stat().st_size / 1e6:.0f} MB)")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server would log every request
    with EmbeddedAws() as stack, tempfile.TemporaryDirectory() as workdir:
        clients = stack.clients()
        resources = create_resources(clients, f"bench{uuid.uuid4().hex[:8]}")
        jobs = JobStore(clients.dynamodb, resources.jobs_table)
        clients.s3.upload_file(str(video), resources.results_bucket, f"videos/{video.name}")
        video_uri = f"s3://{resources.results_bucket}/videos/{video.name}"

        def queue_path() -> dict:
            job_id = f"bench-{uuid.uuid4().hex[:12]}"
            clients.sqs.send_message(QueueUrl=resources.queue_url, MessageBody=json.dumps(
                {"video": video_uri, "detectors": ["human"], "job_id": job_id}))
            started = time.time()
            run = run_process(videoscan("run", "--drain"), env={**stack.environment(), **resources.environment()})
            record = jobs.get(job_id)
            if record is None or record.status != "SUCCEEDED":
                raise RuntimeError(f"job {job_id} did not succeed: {record}")
            finished = record.finished_epoch()
            return {"whole": run.wall_s, "until job ended": finished - started,
                    "job record": finished - record.started_epoch()}

        def analyze() -> dict:
            run = run_process(videoscan("analyze", video, "-o", pathlib.Path(workdir) / "detections.json",
                                        "--detectors", "human"))
            return {"whole": run.wall_s}

        runs = interleaved({"analyze": analyze, "queue path": queue_path}, args.rounds)

    analyze_s = [r["whole"] for r in runs["analyze"]]
    print(f"analyze, whole process: {median(analyze_s):.2f} s (median of {args.rounds})")
    for figure in ("whole", "until job ended", "job record"):
        seconds = [r[figure] for r in runs["queue path"]]
        print(f"queue path, {figure}: {median(seconds):.2f} s, {paired_ratio(seconds, analyze_s):.3f}x analyze "
              f"(median of the rounds' ratios)")
    judged = paired_ratio([r["until job ended"] for r in runs["queue path"]], analyze_s)
    print(verdict("queue path (until the job ended) / analyze", judged, TARGET, at_least=False))
    footer()


if __name__ == "__main__":
    main()
