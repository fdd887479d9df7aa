"""Completion events on SNS, one per job that ends, when a topic is configured."""

from __future__ import annotations

import json

from worker.aws.job_record import JobRecord


def completion_event(job_id: str, status: str, tag: str | None, video: str | None,
                     result_uri: str | None = None, error: dict | None = None,
                     outputs: dict[str, str] | None = None) -> dict:
    event = {"job_id": job_id, "status": status, "tag": tag, "video": video, "result_uri": result_uri, "error": error}
    if outputs:
        event["outputs"] = outputs
    return event


def event_from_record(record: JobRecord, video: str | None = None) -> dict:
    """The completion event of an ended job, rebuilt from its record."""
    return completion_event(record.job_id, record.status, record.tag, record.request.get("video", video),
                            record.result_uri, record.error)


class Notifier:
    def __init__(self, sns, topic_arn: str | None):
        self._sns = sns
        self.topic_arn = topic_arn

    def publish(self, event: dict) -> None:
        """Publishes the event on the topic, if one is configured; raises if SNS refuses it."""
        if not self.topic_arn:
            return
        self._sns.publish(
            TopicArn=self.topic_arn,
            Message=json.dumps(event),
            MessageAttributes={"status": {"DataType": "String", "StringValue": event["status"]}},
        )
