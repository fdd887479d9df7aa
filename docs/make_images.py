"""Makes the README's pictures from a result of short_hamilton_clip.mp4: one frame of the
annotated video and the contact sheet, as small palette PNGs.

    .venv/bin/videoscan analyze ../shared/data/short_hamilton_clip.mp4 --detectors human,face -o /tmp/hamilton.json
    .venv/bin/python docs/make_images.py /tmp/hamilton.json ../shared/data/short_hamilton_clip.mp4
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import av
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from worker.outputs.render import RenderRequest, render_result  # noqa: E402

DOCS = pathlib.Path(__file__).resolve().parent
FRAME = 250  # the audience: faces and people, one carried by the tracker


def small_png(image: Image.Image, path: pathlib.Path) -> None:
    image.convert("RGB").quantize(colors=128).save(path, optimize=True)
    print(f"{path}: {path.stat().st_size // 1024} KB")


def main(result: str, video: str) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        annotated, sheet = f"{workdir}/annotated.mp4", f"{workdir}/tracks.png"
        render_result(result, video, RenderRequest(annotated=annotated, sheet=sheet))
        with av.open(annotated) as container:
            frame = next(f for i, f in enumerate(container.decode(video=0)) if i == FRAME)
        small_png(frame.to_image(), DOCS / "annotated-frame.png")
        small_png(Image.open(sheet), DOCS / "tracks.png")


if __name__ == "__main__":
    main(*sys.argv[1:3])
