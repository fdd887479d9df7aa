"""What people look at, made from a result and its video: tracks with time ranges and
thumbnails, an annotated video, a redacted video and a contact sheet (`videoscan render`).

The renderer takes the per-frame detections as `FrameDetections` (see `frames.py`) in index
order, so the same code serves a result document on disk and, later, a job in progress.
"""
