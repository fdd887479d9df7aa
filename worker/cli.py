"""The `videoscan` command line. Signals are handled here and only here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable

from detectors import Detector, build_detector, detector_names
from worker.config import Settings
from worker.errors import ConfigError, JobFailure, VideoscanError
from worker.logs import configure_logging
from worker.options import PipelineConfig

log = logging.getLogger("videoscan")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(VideoscanError):
    """Bad usage or invalid input: exit status 2 with a one-line reason."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(**_setting_flags(args))
        configure_logging(settings.log_format, settings.log_level)
        return args.command(args, settings) or EXIT_OK
    except (UsageError, ConfigError) as error:
        print(f"videoscan: {error}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailure as failure:
        print(f"videoscan: {failure.code}: {failure}", file=sys.stderr)
        return EXIT_USAGE if failure.code != "INTERNAL" else EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # anything else is a failure, reported in one line
        log.debug("command failed", exc_info=True)
        print(f"videoscan: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILURE


# -- commands ------------------------------------------------------------------------------

def cmd_run(args, settings: Settings) -> int:
    from worker.aws.clients import AwsClients
    from worker.worker import Worker

    if settings.require_gpu:
        _require_gpu()
    worker = Worker(settings, AwsClients.create(settings.region))
    install_stop_handlers(worker, settings.stop_grace_s)
    worker.run(drain=args.drain, max_jobs=args.max_jobs)
    return EXIT_OK


def cmd_submit(args, settings: Settings) -> int:
    from worker.aws.clients import AwsClients
    from worker.aws.queue import JobQueue
    from worker.aws.jobs import JobStore
    from worker.message import job_id_for_token, parse_request
    from worker.aws.submit import submit

    settings.require("queue_url", "jobs_table")
    message = {
        "video": args.video,
        "detectors": args.detectors,
        "sample_every": args.sample_every,
        "detect_every": args.detect_every,
        "min_confidence": args.min_confidence,
        "output": args.output,
        "tag": args.tag,
        "client_token": args.client_token,
    }
    message = {k: v for k, v in message.items() if v is not None}
    job_id = job_id_for_token(args.client_token) if args.client_token else uuid.uuid4().hex
    request = _as_usage_error(parse_request, message, job_id)
    clients = AwsClients.create(settings.region)
    submit(request, JobStore(clients.dynamodb, settings.jobs_table), JobQueue(clients.sqs, settings.queue_url))
    print(request.job_id)
    return EXIT_OK


def cmd_status(args, settings: Settings) -> int:
    from worker.aws.jobs import FINAL_STATES
    from worker.progress import ProgressBar

    jobs = _job_store(settings)
    record = _get_record(jobs, args.job_id)
    if args.watch:
        bar = ProgressBar()
        while record["status"] not in FINAL_STATES:
            progress = record.get("progress") or {}
            bar.update(progress.get("frames_done", 0), progress.get("frames_total", 0), record["status"])
            time.sleep(args.interval)  # polling a remote record: there is no event to await
            record = _get_record(jobs, args.job_id)
        bar.close()
    print(json.dumps(record, indent=2, sort_keys=True))
    return EXIT_OK if record["status"] != "FAILED" or not args.watch else EXIT_FAILURE


def cmd_results(args, settings: Settings) -> int:
    from worker.aws.clients import AwsClients
    from worker.aws.storage import Storage

    record = _get_record(_job_store(settings), args.job_id)
    if record["status"] != "SUCCEEDED":
        error = record.get("error") or {}
        detail = f" ({error.get('code')}: {error.get('message')})" if error else ""
        print(f"videoscan: job {args.job_id} is {record['status']}{detail}: no result", file=sys.stderr)
        return EXIT_FAILURE
    storage = Storage(AwsClients.create(settings.region).s3, settings.max_video_bytes)
    _write_output(storage.read_text(record["result_uri"]), args.output)
    return EXIT_OK


def cmd_analyze(args, settings: Settings, pipeline: PipelineConfig = PipelineConfig(),
                build: Callable[..., Detector] | None = None) -> int:
    """`pipeline` and `build` (the detectors' factory) let a benchmark vary one setting."""
    from worker.analysis.file import AnalysisJob, analyze_file
    from worker.analysis.detector_pool import DetectorPool
    from worker.identity import default_worker_id
    from worker.message import parse_options
    from worker.progress import ProgressBar
    from worker.workdir import private_workdir

    if not os.path.isfile(args.video):
        raise UsageError(f"{args.video}: no such file")
    flags = {"detectors": args.detectors, "sample_every": args.sample_every,
             "detect_every": args.detect_every, "min_confidence": args.min_confidence}
    options = _as_usage_error(parse_options, {k: v for k, v in flags.items() if v is not None})
    options = dataclasses.replace(options, limits=settings.limits)
    pool = DetectorPool(settings.human_model, build=build or build_detector, fetch_model=_model_fetcher(settings))
    detectors = pool.get(options.detectors)
    job = AnalysisJob(f"local-{uuid.uuid4().hex[:12]}", os.path.abspath(args.video), options, default_worker_id())
    bar = ProgressBar()
    with private_workdir() as workdir:
        out_path = os.path.join(workdir, "detections.json")
        summary = analyze_file(args.video, out_path, job, detectors, pipeline, on_progress=bar.update)
        bar.close()
        with open(out_path, encoding="utf-8") as result:
            _write_output(result.read(), args.output)
    if args.output:
        print(f"{summary['frames_analyzed']} frames analysed, found {summary['counts']}: {args.output}",
              file=sys.stderr)
    return EXIT_OK


def cmd_check_gpu(args, settings: Settings) -> int:
    from worker.gpu import check_gpu

    report = check_gpu()
    print("\n".join(report.lines()))
    return EXIT_OK if report.usable else EXIT_FAILURE


def cmd_demo(args, settings: Settings) -> int:
    from worker.demo import run_demo

    return run_demo(args.directory)


# -- helpers -------------------------------------------------------------------------------

def install_stop_handlers(worker, grace_s: float) -> None:
    """First SIGTERM/SIGINT: stop polling and let the job in hand end, releasing it if it
    is still running after `grace_s`. Second: release it now and exit."""
    def handle(signum, frame):
        name = signal.Signals(signum).name
        if worker.running and not worker.stopping:
            log.info("signal received: finishing the job in hand, then exiting",
                     extra={"signal": name, "grace_s": grace_s})
            worker.stop()
            timer = threading.Timer(grace_s, worker.abort)
            timer.daemon = True
            timer.start()
        else:
            log.info("second signal: releasing the job in hand and exiting", extra={"signal": name})
            worker.abort()
            if not worker.busy:
                raise SystemExit(EXIT_OK)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _require_gpu() -> None:
    from worker.gpu import check_gpu

    report = check_gpu()
    if not report.usable:
        raise RuntimeError("VIDEOSCAN_REQUIRE_GPU=1 but no usable GPU: " + "; ".join(report.lines()))


def _model_fetcher(settings: Settings):
    """S3 access for a human model on S3; no AWS client otherwise (`analyze` needs none)."""
    if not (settings.human_model or "").startswith("s3://"):
        return None
    from worker.aws.clients import AwsClients
    from worker.aws.model_fetch import S3ModelFetcher

    return S3ModelFetcher(AwsClients.create(settings.region).s3)


def _job_store(settings: Settings):
    from worker.aws.clients import AwsClients
    from worker.aws.jobs import JobStore

    settings.require("jobs_table")
    return JobStore(AwsClients.create(settings.region).dynamodb, settings.jobs_table)


def _get_record(jobs, job_id: str) -> dict:
    from worker.message import JOB_ID_PATTERN

    if not JOB_ID_PATTERN.match(job_id):
        raise UsageError(f"{job_id!r} is not a valid job id")
    record = jobs.get(job_id)
    if record is None:
        raise LookupError(f"job {job_id} not found")
    return record


def _as_usage_error(function, *args):
    try:
        return function(*args)
    except JobFailure as failure:
        raise UsageError(str(failure)) from None


def _write_output(text: str, path: str | None) -> None:
    if path:
        tmp = f"{path}.part"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)  # a reader never sees half a file
    else:
        sys.stdout.write(text)


def _setting_flags(args) -> dict:
    log_format = args.log_format
    if log_format is None and args.name == "demo" and not os.environ.get("VIDEOSCAN_LOG_FORMAT"):
        log_format = "text"  # the demo is read by a person at a terminal
    return {"log_format": log_format}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _detector_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in detector_names()]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown detector(s) {unknown}; known: {', '.join(detector_names())}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videoscan", description="Find people and faces in videos at scale on AWS.")
    parser.add_argument("--log-format", choices=["json", "text"], help="overrides VIDEOSCAN_LOG_FORMAT")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    def command(name, function, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=function)
        return sub

    def job_options(sub):
        sub.add_argument("--detectors", type=_detector_list, help="comma-separated, e.g. human,face")
        sub.add_argument("--sample-every", type=_positive_int, help="analyse frames 0, N, 2N, ...")
        sub.add_argument("--detect-every", type=_positive_int, help="run detectors on every Nth analysed frame")
        sub.add_argument("--min-confidence", type=float, help="in (0, 1]; default: each detector's own")

    demo = command("demo", cmd_demo, "run the whole system on this machine, no AWS account needed")
    demo.add_argument("--directory", default="videoscan-demo", help="where to leave the video and its result")

    run = command("run", cmd_run, "the worker: long-poll the queue and process jobs")
    run.add_argument("--drain", action="store_true", help="stop when the queue is empty")
    run.add_argument("--max-jobs", type=_positive_int, help="stop after this many messages")

    sub = command("submit", cmd_submit, "record a job and send its message; prints the job id")
    sub.add_argument("video", help="s3://bucket/key of the video")
    job_options(sub)
    sub.add_argument("--output", help="s3:// prefix for detections.json")
    sub.add_argument("--tag", help="free text echoed in the record and the completion event")
    sub.add_argument("--client-token", help="submitting again with the same token starts no second job")

    status = command("status", cmd_status, "print a job's record")
    status.add_argument("job_id")
    status.add_argument("--watch", action="store_true", help="follow the job with a progress bar until it ends")
    status.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)

    results = command("results", cmd_results, "fetch a job's detections.json")
    results.add_argument("job_id")
    results.add_argument("-o", "--output", help="file to write (default: stdout)")

    analyze = command("analyze", cmd_analyze, "run the pipeline on a local file, no AWS at all")
    analyze.add_argument("video")
    analyze.add_argument("-o", "--output", help="file to write (default: stdout)")
    job_options(analyze)

    command("check-gpu", cmd_check_gpu, "report what NVML and TensorFlow see; exit 1 without a usable GPU")
    return parser
