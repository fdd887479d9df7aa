"""boto3 clients with the retry and timeout settings a long-running worker needs."""

from __future__ import annotations

import dataclasses

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling and 5xx; the read timeout outlasts
# SQS's 20-second long poll.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=60,
)


@dataclasses.dataclass(frozen=True)
class AwsClients:
    region: str
    sqs: object
    s3: object
    dynamodb: object
    sns: object

    @classmethod
    def create(cls, region: str, session: boto3.session.Session | None = None,
               endpoint_url: str | None = None) -> "AwsClients":
        """Clients for `region`, at `endpoint_url` if given (a local stack); else boto3's own
        choice, which honours AWS_ENDPOINT_URL."""
        session = session or boto3.session.Session()

        def make(service: str):
            return session.client(service, region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG)

        return cls(region=region, sqs=make("sqs"), s3=make("s3"), dynamodb=make("dynamodb"), sns=make("sns"))
