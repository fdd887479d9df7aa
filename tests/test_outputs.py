"""The outputs (issue: outputs) on real encoded videos: read back, checked against the result."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from detectors import Box, Detection
from detectors.stub import StubDetector
from support.helpers import videoscan, write_test_video
from worker.analysis.file import AnalysisJob, analyze_file
from worker.options import JobOptions
from worker.outputs import frames as frames_module
from worker.outputs.frames import FrameDetections, ResultFrames
from worker.outputs.redact import Redactor, blur_regions
from worker.outputs.render import RenderRequest, render, render_result
from worker.outputs.tracks import MIN_FRAMES

SIZE, FPS, FRAMES = (160, 120), 12, 36


def write_video_with_audio(path) -> str:
    """A real H.264 + AAC MP4 made with PyAV: a bright square sliding over a brightening background,
    and a 440 Hz tone."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        audio = container.add_stream("aac", rate=44100, layout="mono")
        for i in range(FRAMES):
            image = np.full((SIZE[1], SIZE[0], 3), 20 + 6 * i, np.uint8)
            x = 10 + 3 * i
            image[40:80, x:x + 40] = 240
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        samples = FRAMES * 44100 // FPS
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return str(path)


def stub_result(video: str, out, sample_every: int = 1, min_confidence: float = 0.3) -> dict:
    """The real pipeline's result for `video` with the model-free detector: one centred box on
    frames bright enough, tracked."""
    analyze_file(video, str(out), AnalysisJob("j", str(video), JobOptions(sample_every=sample_every), "w"),
                 [StubDetector(min_confidence=min_confidence)])
    return json.loads(out.read_text())


def audio_packets(path) -> list[tuple[bytes, float]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(bytes(p), float(p.pts * p.time_base)) for p in container.demux(stream) if p.size]


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def test_annotated_and_redacted_videos_are_h264_mp4_with_every_frame_and_the_audio_copied(tmp_path):
    # given a real H.264 + AAC source and the pipeline's result for it
    source = write_video_with_audio(tmp_path / "source.mp4")
    stub_result(source, tmp_path / "result.json")

    # when both videos are rendered
    request = RenderRequest(annotated=str(tmp_path / "a.mp4"), redacted=str(tmp_path / "r.mp4"),
                            redact_labels=["object"])
    rendered = render_result(str(tmp_path / "result.json"), source, request)

    # then each is H.264 yuv420p in MP4 at the source's size, rate and frame times, with its audio unchanged
    assert rendered.frames == FRAMES
    for name in ("a.mp4", "r.mp4"):
        with av.open(str(tmp_path / name)) as container:
            assert container.format.name.startswith("mov,mp4")
            video = container.streams.video[0]
            assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
            assert (video.width, video.height) == SIZE and video.average_rate == Fraction(FPS)
            assert sum(1 for _ in container.decode(video)) == FRAMES
        assert audio_packets(tmp_path / name) == audio_packets(source)
    assert not list(tmp_path.glob("*.part"))


def test_frame_times_follow_the_source(tmp_path):
    # given a source and its result; when rendered; then every frame keeps its presentation time
    source = write_video_with_audio(tmp_path / "source.mp4")
    stub_result(source, tmp_path / "result.json")
    render_result(str(tmp_path / "result.json"), source, RenderRequest(annotated=str(tmp_path / "a.mp4")))
    def times(path):
        with av.open(str(path)) as container:
            return [float(f.time) for f in container.decode(video=0)]
    assert times(tmp_path / "a.mp4") == pytest.approx(times(source), abs=1e-4)


def test_a_source_without_audio_gives_videos_without_audio(small_video, tmp_path):
    stub_result(small_video, tmp_path / "result.json")
    render_result(str(tmp_path / "result.json"), small_video, RenderRequest(annotated=str(tmp_path / "a.mp4")))
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert not container.streams.audio and container.streams.video[0].frames == 24


def test_redaction_blurs_the_boxes_with_a_margin_and_leaves_the_rest(tmp_path):
    # given a source whose bright square is the object found on every frame
    source = write_video_with_audio(tmp_path / "source.mp4")
    result = stub_result(source, tmp_path / "result.json", min_confidence=0.0)
    render_result(str(tmp_path / "result.json"), source,
                  RenderRequest(redacted=str(tmp_path / "r.mp4"), redact_labels=["object"]))
    original, redacted = decoded(source), decoded(tmp_path / "r.mp4")
    width, height = SIZE
    for index in (2, 8, 14):  # the square still stands out from the background
        box = result["frames"][index]["detections"][0]["box"]
        x1, y1 = int(box["left"] * width), int(box["top"] * height)
        x2, y2 = int((box["left"] + box["width"]) * width), int((box["top"] + box["height"]) * height)
        # then the detail inside the box is gone (the square's sharp edge flattened) ...
        edges = lambda image: cv2.Laplacian(cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_32F)
        assert np.abs(edges(redacted[index])).max() < 0.2 * np.abs(edges(original[index])).max()
        # ... and a strip a frame's edge away from the box and its margin is as it was (up to encoding)
        assert np.abs(redacted[index][:, :8].astype(int) - original[index][:, :8]).mean() < 3


def _frame(index: int, boxes: list[tuple[int, Box]], weak: list[Box] = ()) -> FrameDetections:
    return FrameDetections(index, index * 40.0,
                           [Detection("face", 0.95, box, track_id=track) for track, box in boxes],
                           [Detection("face", 0.5, box) for box in weak])


def test_redactor_carries_boxes_between_samples_holds_lost_tracks_and_blurs_weak_boxes():
    redactor = Redactor(["face"], hold_frames=3)
    a, b, weak = Box(0.1, 0.1, 0.1, 0.1), Box(0.3, 0.1, 0.1, 0.1), Box(0.6, 0.6, 0.1, 0.1)
    first, second = _frame(0, [(1, a)], [weak]), _frame(4, [(1, b)])
    # an analysed frame: its track and its weak box
    assert sorted(redactor.regions(0, first, second)) == sorted([(0.1, 0.1, 0.2, 0.2), (0.6, 0.6, 0.7, 0.7)])
    # a frame between samples: the track over both its positions (the weak box still held)
    assert (0.1, 0.1, 0.4, 0.2) in redactor.regions(2, first, second)
    # the track lost on the next analysed frame keeps its last box for hold_frames frames, then goes
    empty = _frame(8, [])
    assert redactor.regions(4, second, empty) == [(0.3, 0.1, 0.4, 0.2)]
    assert redactor.regions(7, second, empty) == [(0.3, 0.1, 0.4, 0.2)]
    assert redactor.regions(8, empty, None) == []


def test_blur_leaves_no_trace_of_a_pattern():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)
    before = image.copy()
    blur_regions(image, [(0.3, 0.3, 0.7, 0.7)])
    inside = image[30:70, 30:70].astype(float)
    assert np.corrcoef(inside.ravel(), before[30:70, 30:70].ravel())[0, 1] < 0.2
    assert np.array_equal(image[:15], before[:15])


def test_tracks_and_thumbnails_agree_with_the_per_frame_detections(tmp_path):
    # given a result with tracks of every length, sampled every 2nd frame
    source = write_video_with_audio(tmp_path / "source.mp4")
    result = stub_result(source, tmp_path / "result.json", sample_every=2, min_confidence=0.3)
    rendered = render_result(str(tmp_path / "result.json"), source,
                             RenderRequest(thumbnails_dir=str(tmp_path / "thumbs"), sheet=str(tmp_path / "s.png")))
    seen: dict[tuple, list] = {}
    for frame in result["frames"]:
        for d in frame["detections"]:
            seen.setdefault((d["label"], d["track_id"]), []).append((frame["index"], frame["timestamp_ms"], d))
    listed = {(t.label, t.track_id): t for t in rendered.tracks}
    # then every track seen on MIN_FRAMES frames or more is listed, and only those
    assert set(listed) == {key for key, hits in seen.items() if len(hits) >= MIN_FRAMES} and listed
    images = decoded(source)
    for key, track in listed.items():
        hits = seen[key]
        assert (track.first_index, track.first_ms) == hits[0][:2] and (track.last_index, track.last_ms) == hits[-1][:2]
        assert track.frames == len(hits)
        best = max(hits, key=lambda h: (h[2]["source"] == "detector", h[2]["confidence"]))
        assert track.best_index == best[0] and track.max_confidence == pytest.approx(best[2]["confidence"])
        # the thumbnail is the best box's pixels with a margin, from the frame it was found on
        thumbnail = cv2.imread(track.thumbnail)
        box = best[2]["box"]
        x1, y1 = int((box["left"] - 0.2 * box["width"]) * SIZE[0]), int((box["top"] - 0.2 * box["height"]) * SIZE[1])
        expected = images[best[0]][max(y1, 0):, max(x1, 0):][:thumbnail.shape[0], :thumbnail.shape[1]]
        assert np.abs(thumbnail.astype(int) - expected).mean() < 6
        assert track.to_json()["best"]["index"] == best[0]
    sheet = cv2.imread(str(tmp_path / "s.png"))
    assert sheet is not None and sheet.shape[0] >= 160


def test_the_result_is_read_as_a_stream_with_the_same_frames(tmp_path, monkeypatch, small_video):
    result = stub_result(small_video, tmp_path / "result.json")
    monkeypatch.setattr(frames_module, "_CHUNK", 7)  # values split across many reads
    with open(tmp_path / "result.json", encoding="utf-8") as stream:
        reader = ResultFrames(stream)
        streamed = list(reader)
    assert [(f.index, f.timestamp_ms, len(f.detections)) for f in streamed] == \
        [(f["index"], f["timestamp_ms"], len(f["detections"])) for f in result["frames"]]
    assert reader.header["video"] == result["video"]


def test_a_failed_render_leaves_nothing_behind(tmp_path, small_video):
    # given frames out of order half-way through the video
    frames = [_frame(0, []), _frame(10, []), _frame(5, [])]
    with pytest.raises(ValueError, match="out of order"):
        render(frames, small_video, RenderRequest(annotated=str(tmp_path / "a.mp4"), redacted=str(tmp_path / "r.mp4")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.mp4"]


def test_render_command_bad_input_exits_2_with_a_reason(tmp_path, small_video):
    (tmp_path / "other.json").write_text('{"hello": 1}')
    missing = videoscan("render", str(tmp_path / "nope.json"), small_video)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    wrong = videoscan("render", str(tmp_path / "other.json"), small_video, "-o", str(tmp_path / "o.mp4"))
    assert wrong.returncode == 2 and "not a videoscan" in wrong.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_render_refuses_a_result_of_another_video(tmp_path, small_video):
    stub_result(small_video, tmp_path / "result.json")
    other = write_test_video(tmp_path / "other.mp4", size=(320, 240))
    with pytest.raises(ValueError, match="160x120 video"):
        render_result(str(tmp_path / "result.json"), other, RenderRequest(annotated=str(tmp_path / "a.mp4")))


def test_audio_mp4_cannot_hold_is_re_encoded_to_aac(tmp_path):
    # given an AVI with PCM audio (which MP4 cannot carry as it is)
    path = tmp_path / "pcm.avi"
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=FPS)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        audio = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        for i in range(FRAMES):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.full((SIZE[1], SIZE[0], 3), 7 * i, np.uint8),
                                                                  format="bgr24")))
        samples = (3000 * np.sin(np.arange(FRAMES * 16000 // FPS) / 5)).astype(np.int16)
        chunk = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        chunk.sample_rate, chunk.pts = 16000, 0
        container.mux(audio.encode(chunk))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    stub_result(str(path), tmp_path / "result.json")
    # when rendered; then the video has AAC audio lasting as long as the source's
    render_result(str(tmp_path / "result.json"), str(path), RenderRequest(annotated=str(tmp_path / "a.mp4")))
    with av.open(str(tmp_path / "a.mp4")) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        seconds = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert seconds == pytest.approx(FRAMES / FPS, abs=0.15)
