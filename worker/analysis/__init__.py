"""The analysis side: one video file in, one result document out. It never imports boto3."""
