"""What people look at, made from a result and its video: tracks with time ranges and
thumbnails, an annotated video, a redacted video and a contact sheet (`videoscan render`).

How a job makes them (the worker's side, to be wired):
1. While analysing, for every analysed frame in index order, keep a `FrameDetections`:
   `index`, `timestamp_ms`, `detections` (the reported ones, with `track_id` and `source`, as in
   the result) and `weak` (the frame's detections under `min_confidence` that the tracker saw,
   `Findings.weak`, at least those of the `redact` labels; they are not in the result, so spool
   them beside the result writer's frames file, e.g. one JSON line a frame).
2. After the analysis, with the source video still on disk, call
   `render.render(frames, video_path, RenderRequest(annotated=..., redacted=..., redact_labels=...,
   thumbnails_dir=...))`: one more pass that decodes every frame (not only the sampled ones) and
   encodes the asked-for videos. It returns the frame count and the `tracks` (`Track.to_json()`).
3. Upload the videos and thumbnails under the job's output prefix, set each track's `thumbnail`
   to its URI, and write `detections.json` (with `tracks` and `outputs`) last: a reader who sees
   the result sees every output. A job with no outputs asked can still feed `tracks.TrackBook`
   frame by frame (no images, no second pass) to fill `tracks`.
"""
