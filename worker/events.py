"""Completion events on SNS, one per job that ends, when a topic is configured."""

from __future__ import annotations

import json
import logging

log = logging.getLogger(__name__)


def completion_event(job_id: str, status: str, tag: str | None, video: str | None,
                     result_uri: str | None = None, error: dict | None = None) -> dict:
    return {"job_id": job_id, "status": status, "tag": tag, "video": video, "result_uri": result_uri, "error": error}


class Notifier:
    def __init__(self, sns, topic_arn: str | None):
        self._sns = sns
        self._topic_arn = topic_arn

    def publish(self, event: dict) -> None:
        """Publishes the event; a failure is logged, since the job's end is already recorded."""
        if not self._topic_arn:
            return
        try:
            self._sns.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(event),
                MessageAttributes={"status": {"DataType": "String", "StringValue": event["status"]}},
            )
        except Exception:
            log.error("could not publish the completion event", exc_info=True)
