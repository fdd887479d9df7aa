"""The `videoscan` commands that work on jobs and files: submit, status, results, analyze, render."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from detectors import Detector, build_detector
from worker.config import Settings
from worker.errors import JobFailure, VideoscanError
from worker.options import PipelineConfig

if TYPE_CHECKING:
    from worker.aws.job_record import JobRecord

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

# Control characters (C0, DEL, C1), which terminals obey: colours, window titles, cursor moves.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class UsageError(VideoscanError):
    """Bad usage or invalid input: exit status 2 with a one-line reason."""


def cmd_submit(args, settings: Settings) -> int:
    from worker.aws.clients import AwsClients
    from worker.aws.queue import JobQueue
    from worker.aws.jobs import JobStore
    from worker.message import job_id_of, parse_request
    from worker.aws.submit import submit

    settings.require("queue_url", "jobs_table")
    message = {
        "video": args.video,
        "detectors": _detector_entries(args),
        "sample_every": args.sample_every,
        "detect_every": args.detect_every,
        "min_confidence": args.min_confidence,
        "output": args.output,
        "tag": args.tag,
        "client_token": args.client_token,
        "outputs": args.outputs,
        "redact": args.redact,
    }
    message = {k: v for k, v in message.items() if v is not None}
    job_id = _as_usage_error(job_id_of, message, uuid.uuid4().hex)
    request = _as_usage_error(parse_request, message, job_id)
    clients = AwsClients.create(settings.region)
    submit(request, JobStore(clients.dynamodb, settings.jobs_table), JobQueue(clients.sqs, settings.queue_url))
    print(request.job_id)
    return EXIT_OK


def cmd_status(args, settings: Settings) -> int:
    from worker.progress import ProgressBar

    jobs = _job_store(settings)
    record = _get_record(jobs, args.job_id)
    if args.watch:
        bar = ProgressBar()
        while not record.ended:
            progress = record.progress or {}
            bar.update(progress.get("frames_done", 0), progress.get("frames_total", 0), _shown(record.status))
            time.sleep(args.interval)  # polling a remote record: there is no event to await
            record = _get_record(jobs, args.job_id)
        bar.close()
    print(json.dumps(record.as_json(), indent=2, sort_keys=True))
    return EXIT_OK if record.status != "FAILED" or not args.watch else EXIT_FAILURE


def cmd_results(args, settings: Settings) -> int:
    from worker.aws.clients import AwsClients
    from worker.aws.storage import Storage

    record = _get_record(_job_store(settings), args.job_id)
    if record.status != "SUCCEEDED":
        error = record.error or {}
        detail = f" ({error.get('code')}: {error.get('message')})" if error else ""
        print(_shown(f"videoscan: job {args.job_id} is {record.status}{detail}: no result"), file=sys.stderr)
        return EXIT_FAILURE
    storage = Storage(AwsClients.create(settings.region).s3, settings.max_video_bytes)
    document = storage.read_text(record.result_uri)
    _write_output(document if args.output else _shown(document, _CONTROLS_BUT_LAYOUT), args.output)
    return EXIT_OK


def cmd_analyze(args, settings: Settings, pipeline: PipelineConfig = PipelineConfig(),
                build: Callable[..., Detector] | None = None) -> int:
    """`pipeline` and `build` (the detectors' factory) let a benchmark vary one setting."""
    from worker.analysis.file import AnalysisJob, analyze_file
    from worker.analysis.detector_pool import DetectorPool
    from worker.identity import default_worker_id
    from worker.message import parse_options
    from worker.outputs.job import JobOutputs
    from worker.progress import ProgressBar
    from worker.workdir import private_workdir

    if not os.path.isfile(args.video):
        raise UsageError(f"{args.video}: no such file")
    flags = {"detectors": _detector_entries(args), "sample_every": args.sample_every,
             "detect_every": args.detect_every, "min_confidence": args.min_confidence,
             "outputs": args.outputs, "redact": args.redact}
    options = _as_usage_error(parse_options, {k: v for k, v in flags.items() if v is not None})
    options = dataclasses.replace(options, limits=settings.limits)
    models = [settings.human_model, *(spec.model for spec in options.detectors)]
    pool = DetectorPool(settings.human_model, build=build or build_detector, fetch_model=_model_fetcher(settings, models))
    detectors = pool.get(options.detectors)
    job = AnalysisJob(f"local-{uuid.uuid4().hex[:12]}", os.path.abspath(args.video), options, default_worker_id())
    if options.outputs and not args.output:
        raise UsageError("--outputs needs -o: the outputs are written beside the result")
    bar = ProgressBar()
    with private_workdir() as workdir:
        out_path = os.path.join(workdir, "detections.json")
        beside = os.path.join(os.path.dirname(os.path.abspath(args.output or ".")), "")
        outputs = JobOutputs(args.video, options, workdir, beside, _publish_locally) if options.outputs else None
        summary = analyze_file(args.video, out_path, job, detectors, pipeline, on_progress=bar.update,
                               make_outputs=outputs)
        bar.close()
        with open(out_path, encoding="utf-8") as result:
            _write_output(result.read(), args.output)
    if args.output:
        print(f"{summary['frames_analyzed']} frames analysed, found {summary['counts']}: {args.output}",
              file=sys.stderr)
        for kind, where in (outputs.outputs if outputs else {}).items():
            print(f"{kind}: {where}", file=sys.stderr)
    return EXIT_OK


def _publish_locally(path: str, destination: str) -> None:
    """`analyze --outputs`: each output beside the result, whole or not at all."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    partial = destination + ".part"
    shutil.copyfile(path, partial)
    os.replace(partial, destination)


def cmd_render(args, settings: Settings) -> int:
    from worker.outputs.render import render_command

    try:
        return render_command(args.result, args.video, args.output, args.redact, args.sheet)
    except ValueError as error:  # a missing file, or a result or video that cannot be read
        raise UsageError(str(error)) from None


def _detector_entries(args) -> list | None:
    """The `detectors` entries of the flags: `--tiles` goes to `human` (the default detector)."""
    if not args.tiles:
        return args.detectors
    entries = [entry if isinstance(entry, dict) else {"name": entry} for entry in args.detectors or ["human"]]
    if not any(entry["name"] == "human" for entry in entries):
        raise UsageError("--tiles is an option of the human detector, which --detectors does not name")
    return [{**entry, "tiles": args.tiles} if entry["name"] == "human" else entry for entry in entries]


def _model_fetcher(settings: Settings, models: list[str | None]):
    """S3 access for a model on S3; no AWS client otherwise (`analyze` needs none)."""
    if not any((model or "").startswith("s3://") for model in models):
        return None
    from worker.aws.clients import AwsClients
    from worker.aws.model_fetch import S3ModelFetcher

    return S3ModelFetcher(AwsClients.create(settings.region).s3)


def _job_store(settings: Settings):
    from worker.aws.clients import AwsClients
    from worker.aws.jobs import JobStore

    settings.require("jobs_table")
    return JobStore(AwsClients.create(settings.region).dynamodb, settings.jobs_table)


def _get_record(jobs, job_id: str) -> JobRecord:
    from worker.message import JOB_ID_PATTERN

    if not JOB_ID_PATTERN.fullmatch(job_id):
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


def _shown(text: str, controls: re.Pattern = _CONTROLS) -> str:
    """Stored text as it may reach a terminal: control characters as JSON escapes (the same
    JSON document, where they are inside its strings; one line, where layout is escaped too)."""
    return controls.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _write_output(text: str, path: str | None) -> None:
    if not path:
        sys.stdout.write(text)
        return
    # A new file under an unguessable name, created exclusively: nothing planted in advance (a
    # symlink to another file) is followed. The rename then shows it complete, never half-written.
    tmp = f"{path}.{uuid.uuid4().hex}.part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
