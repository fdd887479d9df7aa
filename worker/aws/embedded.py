"""An AWS-compatible stack on loopback (moto's server) and the resources a worker needs in it."""

from __future__ import annotations

import dataclasses
import json
import logging

import boto3

from worker.aws.clients import AwsClients

log = logging.getLogger(__name__)

FAKE_KEY = "embedded"


@dataclasses.dataclass(frozen=True)
class Resources:
    queue_url: str
    dead_letter_queue_url: str
    jobs_table: str
    results_bucket: str
    topic_arn: str

    def environment(self) -> dict[str, str]:
        """The VIDEOSCAN_* variables that point a worker at these resources."""
        return {
            "VIDEOSCAN_QUEUE_URL": self.queue_url,
            "VIDEOSCAN_JOBS_TABLE": self.jobs_table,
            "VIDEOSCAN_RESULTS_BUCKET": self.results_bucket,
            "VIDEOSCAN_NOTIFY_TOPIC_ARN": self.topic_arn,
        }


class EmbeddedAws:
    """Runs moto's server on 127.0.0.1; `clients()` talk to it, `environment()` points another process at it.

    Its credentials are fake, and it never touches this process's environment, so nothing
    made from the stack can reach a real account.
    """

    def __init__(self, region: str = "us-east-1"):
        self.region = region
        self._server = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> "EmbeddedAws":
        from moto.server import ThreadedMotoServer  # only the embedded stack needs moto

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        log.info("embedded AWS stack listening", extra={"endpoint": self.endpoint_url})
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def session(self) -> boto3.session.Session:
        return boto3.session.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY,
                                     region_name=self.region)

    def clients(self) -> AwsClients:
        return AwsClients.create(self.region, self.session(), endpoint_url=self.endpoint_url)

    def environment(self) -> dict[str, str]:
        """The variables that point another process (a worker, the AWS CLI) at the stack."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }

    def __enter__(self) -> "EmbeddedAws":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def create_resources(
    clients: AwsClients,
    name: str,
    visibility_timeout: int = 300,
    max_receive_count: int = 3,
) -> Resources:
    """Creates the queue with its dead-letter queue, the jobs table, the bucket and the topic."""
    dlq_url = clients.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = clients.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = clients.sqs.create_queue(
        QueueName=f"{name}-jobs",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}),
        },
    )["QueueUrl"]
    table = f"{name}-jobs"
    clients.dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clients.dynamodb.get_waiter("table_exists").wait(TableName=table)
    bucket = f"{name}-results"
    location = {} if clients.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": clients.region}}
    clients.s3.create_bucket(Bucket=bucket, **location)
    topic_arn = clients.sns.create_topic(Name=f"{name}-events")["TopicArn"]
    return Resources(queue_url, dlq_url, table, bucket, topic_arn)
