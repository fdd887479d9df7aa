"""The `videoscan` command line. Signals are handled here and only here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from detectors import detector_names
from detectors.views import TILINGS
from worker.commands import (EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, cmd_analyze, cmd_render, cmd_results,
                              cmd_status, cmd_submit)
from worker.config import Settings
from worker.errors import ConfigError, JobFailure
from worker.logs import configure_logging

log = logging.getLogger("videoscan")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the contract's exit 2 with a one-line reason)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load(**_setting_flags(args))
        configure_logging(settings.log_format, settings.log_level)
        # The worker's stream is what CloudWatch reads; only this process's own command line owns fd 2.
        if args.command is cmd_run and argv is None and settings.log_format == "json":
            from worker.native_log import capture_native_stderr

            capture_native_stderr()
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


def _setting_flags(args) -> dict:
    log_format = args.log_format
    if log_format is None and args.name == "demo" and not os.environ.get("VIDEOSCAN_LOG_FORMAT"):
        log_format = "text"  # the demo is read by a person at a terminal
    return {"log_format": log_format}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # also the digits beyond Python's int conversion limit
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text[:40]!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _detector_list(text: str) -> list[str | dict[str, str]]:
    """`NAME` or `NAME:MODEL` entries, comma-separated: as the message's `detectors` entries."""
    entries: list[str | dict[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, has_model, model = item.partition(":")
        if name not in detector_names():
            raise argparse.ArgumentTypeError(f"unknown detector {name[:40]!r}; known: {', '.join(detector_names())}")
        entries.append({"name": name, "model": model} if has_model else name)
    if not entries:
        raise argparse.ArgumentTypeError(f"no detector named; known: {', '.join(detector_names())}")
    return entries


def _comma_list(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="videoscan", description="Find people and faces in videos at scale on AWS.")
    parser.add_argument("--log-format", choices=["json", "text"], help="overrides VIDEOSCAN_LOG_FORMAT")
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    def command(name, function, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=function)
        return sub

    def job_options(sub):
        sub.add_argument("--detectors", type=_detector_list,
                         help="comma-separated NAME or NAME:MODEL, e.g. human,face:mtcnn or human:s3://models/people/")
        sub.add_argument("--sample-every", type=_positive_int, help="analyse frames 0, N, 2N, ...")
        sub.add_argument("--detect-every", type=_positive_int, help="run detectors on every Nth analysed frame")
        sub.add_argument("--min-confidence", type=float, help="in (0, 1]; default: each detector's own")
        sub.add_argument("--outputs", type=_comma_list, help="annotated,redacted,thumbnails: made beside the result")
        sub.add_argument("--redact", type=_comma_list, help="labels blurred in the redacted video; default face")
        sub.add_argument("--tiles", choices=list(TILINGS), help="views of a frame the human detector sees; default auto")

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

    render = command("render", cmd_render, "draw a result onto its video, or blur labels in it")
    render.add_argument("result", help="detections.json")
    render.add_argument("video", help="the video the result was made from")
    render.add_argument("-o", "--output", help="the MP4 to write (default: VIDEO-NAME.annotated.mp4 or .redacted.mp4)")
    render.add_argument("--redact", metavar="LABELS", help="blur these labels (e.g. face) instead of annotating")
    render.add_argument("--sheet", metavar="OUT.png", help="also write a contact sheet of every track")

    command("check-gpu", cmd_check_gpu, "report what NVML and TensorFlow see; exit 1 without a usable GPU")
    return parser
