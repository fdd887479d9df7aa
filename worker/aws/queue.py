"""The SQS job queue: long-poll one message, settle it, extend or reset its visibility."""

from __future__ import annotations

import dataclasses
import json
import time

from botocore.exceptions import ClientError

from worker.errors import LeaseLost

# SQS's cap on how long a message can stay hidden after it is received.
MAX_VISIBILITY_S = 12 * 3600
_STALE_RECEIPT = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight",
                  "AWS.SimpleQueueService.MessageNotInflight"}


@dataclasses.dataclass(frozen=True)
class Message:
    message_id: str
    body: str
    receipt_handle: str
    receive_count: int
    sent_at: float  # epoch seconds
    received_at: float


class JobQueue:
    def __init__(self, sqs, url: str):
        self._sqs = sqs
        self.url = url

    def receive(self, wait_s: int, visibility_timeout: int) -> Message | None:
        """Long-polls for one message (a GPU worker holds one job at a time)."""
        messages = self.receive_many(1, wait_s, visibility_timeout)
        return messages[0] if messages else None

    def receive_many(self, count: int, wait_s: int, visibility_timeout: int) -> list[Message]:
        response = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        )
        return [_message(raw) for raw in response.get("Messages", [])]

    def send(self, body: dict, delay_s: int = 0) -> str:
        return self._sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps(body), DelaySeconds=delay_s)["MessageId"]

    def delete(self, message: Message) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)

    def set_visibility(self, message: Message, seconds: int) -> None:
        """Hides the message for `seconds` from now (0 hands it to the next receiver)."""
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=max(0, int(seconds)),
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _STALE_RECEIPT:
                raise LeaseLost(f"message {message.message_id} is no longer ours: {error}") from None
            raise

    def max_receive_count(self) -> int | None:
        """Receives after which SQS moves a message to the dead-letter queue (None: no redrive policy)."""
        policy = self._redrive_policy()
        return int(policy["maxReceiveCount"]) if policy else None

    def dead_letter_queue(self) -> JobQueue | None:
        """The queue SQS moves this one's messages to after their last receive (None: no redrive policy)."""
        policy = self._redrive_policy()
        if not policy:
            return None
        _, _, _, _, account, name = policy["deadLetterTargetArn"].split(":", 5)
        return JobQueue(self._sqs, self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def _redrive_policy(self) -> dict | None:
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        return json.loads(policy) if policy else None


def _message(raw: dict) -> Message:
    attributes = raw.get("Attributes", {})
    return Message(
        message_id=raw["MessageId"],
        body=raw.get("Body", ""),
        receipt_handle=raw["ReceiptHandle"],
        receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
        sent_at=int(attributes.get("SentTimestamp", 0)) / 1000.0,
        received_at=time.time(),
    )
