"""A job's outputs: rendered after its analysis from the spooled frames, then handed to a publisher
(S3 for the worker, the local disk for `videoscan analyze`), before the result document is written.

The result document is the commit point: every output is published first, under names fixed by
the job's output prefix, so a retried job overwrites only its own objects and a reader who sees
the result sees every output.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from worker.analysis.pipeline import VideoFacts
from worker.analysis.results import ResultWriter
from worker.options import JobOptions
from worker.outputs.render import RenderRequest, render

VIDEOS = ("annotated", "redacted")
THUMBNAILS = "thumbnails"

# publish(local_path, destination) puts one finished file at `destination` (a URI or a path).
Publisher = Callable[[str, str], None]


@dataclasses.dataclass
class JobOutputs:
    """Makes a job's outputs in `directory` (private to the job) and publishes them under `prefix`."""

    video_path: str
    options: JobOptions
    directory: str
    prefix: str
    publish: Publisher
    published: dict[str, str] = dataclasses.field(default_factory=dict)  # file name -> destination
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)  # the result's `outputs`
    video_seconds: float = 0.0  # seconds of output video made, for the job's metrics

    def __call__(self, writer: ResultWriter, facts: VideoFacts) -> dict[str, Any]:
        """Renders, publishes, and returns the document's `tracks` and `outputs`."""
        asked = set(self.options.outputs)
        local = {kind: os.path.join(self.directory, f"{kind}.mp4") for kind in VIDEOS if kind in asked}
        thumbnails_dir = os.path.join(self.directory, THUMBNAILS) if THUMBNAILS in asked else None
        request = RenderRequest(annotated=local.get("annotated"), redacted=local.get("redacted"),
                                redact_labels=self.options.redact, thumbnails_dir=thumbnails_dir)
        rendered = render(writer.spooled(), self.video_path, request, (facts.width, facts.height))
        outputs = self.outputs
        for kind, path in local.items():
            outputs[kind] = self._put(path, f"{kind}.mp4")
        self.video_seconds = len(local) * facts.duration_ms / 1000
        if thumbnails_dir is None:
            return {"tracks": writer.tracks_json(), "outputs": outputs}
        for track in rendered.tracks:
            if track.thumbnail:
                track.thumbnail = self._put(track.thumbnail, f"{THUMBNAILS}/{os.path.basename(track.thumbnail)}")
        outputs[THUMBNAILS] = self.prefix + f"{THUMBNAILS}/"
        return {"tracks": [track.to_json() for track in rendered.tracks], "outputs": outputs}

    def _put(self, path: str, name: str) -> str:
        destination = self.prefix + name
        self.publish(path, destination)
        self.published[name] = destination
        return destination


def content_type_of(name: str) -> str:
    return "image/jpeg" if name.endswith(".jpg") else "video/mp4"
