"""The AWS side: SQS queue, DynamoDB job records, S3 storage, SNS events, heartbeat, task protection,
metrics, the clients and the embedded stack. The analysis side never imports this package."""
