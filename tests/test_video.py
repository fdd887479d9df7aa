"""Reading real video files: true frame counts, presentation times, sampling, and broken files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from support.helpers import write_test_video
from worker.errors import VideoTooLarge, VideoTooLong, VideoUnreadable
from detectors.cores import usable_cores
from worker.analysis.video import VideoReader, decode_threads


def test_vtest_decodes_341_frames_although_the_container_claims_682(data_dir):
    with VideoReader(str(data_dir / "vtest.avi")) as reader:
        assert reader.info.frame_count == 682 and reader.info.fps == 50.0  # the container's claims
        frames = list(reader.frames())
        assert len(frames) == reader.frames_decoded == 341
        assert (reader.info.width, reader.info.height, reader.info.codec) == (1280, 720, "h264")
        assert reader.measured_fps == 25.0 and reader.duration_ms == 13640.0
        timestamps = [f.timestamp_ms for f in frames]
        assert timestamps[:3] == [0.0, 40.0, 80.0]
        assert all(b > a for a, b in zip(timestamps, timestamps[1:]))
        assert frames[0].image.shape == (720, 1280, 3)


def test_sampling_keeps_exact_indexes_and_times(data_dir):
    with VideoReader(str(data_dir / "short_hamilton_clip.mp4")) as reader:
        frames = list(reader.frames(sample_every=10))
        assert [f.index for f in frames] == list(range(0, 275, 10))
        assert reader.frames_decoded == 275
        assert frames[1].timestamp_ms == pytest.approx(10 * 1000 / 29.97, abs=0.01)
        assert reader.measured_fps == pytest.approx(29.97, abs=0.01)


@pytest.mark.parametrize("content", [b"", b"hello, not a video\n" * 100])
@pytest.mark.parametrize("threads", [None, 2])
def test_files_that_are_not_video_are_unreadable(tmp_path, content, threads):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoUnreadable):
        list(VideoReader(str(path), decode_threads=threads).frames())


def test_decoding_threads_change_nothing_decoded(data_dir):
    def decoded(threads):
        with VideoReader(str(data_dir / "short_hamilton_clip.mp4"), decode_threads=threads) as reader:
            return [(frame.index, frame.timestamp_ms, frame.image.sum()) for frame in reader.frames(sample_every=25)]

    assert decoded(1) == decoded(4) == decoded(None)


def test_a_gpu_gets_every_usable_core_for_decoding_and_a_cpu_two_at_most():
    assert decode_threads(for_gpu=True) == usable_cores()
    assert decode_threads(for_gpu=False) == min(2, usable_cores())


def test_a_truncated_mp4_is_unreadable(tmp_path, data_dir):
    path = tmp_path / "head.mp4"
    path.write_bytes((data_dir / "short_hamilton_clip.mp4").read_bytes()[:4096])
    with pytest.raises(VideoUnreadable):
        list(VideoReader(str(path)).frames())


def test_limits_are_checked_before_decoding(tmp_path):
    path = write_test_video(tmp_path / "v.mp4", frames=24, size=(160, 120), fps=12.0)
    with pytest.raises(VideoTooLarge, match="160x120"):
        VideoReader(path, max_frame_pixels=160 * 120 - 1)
    with pytest.raises(VideoTooLong):
        VideoReader(path, max_duration_s=1.5)  # 2 s of video
    assert len(list(VideoReader(path, max_frame_pixels=160 * 120, max_duration_s=2.5).frames())) == 24


def hls_playlist(segment: str) -> str:
    return f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n"


@pytest.mark.parametrize("name, content", [
    ("list.m3u8", lambda video: hls_playlist(video)),  # a bare local path
    ("list.m3u8", lambda video: hls_playlist(f"file://{video}")),
    ("list.mp4", lambda video: hls_playlist(video)),
    ("list.ffconcat", lambda video: "ffconcat version 1.0\nfile 'secret.mp4'\n"),
    ("list.mp4", lambda video: "ffconcat version 1.0\nfile 'secret.mp4'\n"),
], ids=["hls-path", "hls-file-url", "hls-named-mp4", "concat", "concat-named-mp4"])
def test_playlists_and_concat_lists_are_unreadable_whatever_their_suffix(tmp_path, name, content):
    # given a real video that a playlist or concat list next to it names
    secret = write_test_video(tmp_path / "secret.mp4")
    listing = tmp_path / name
    listing.write_text(content(secret))
    with pytest.raises(VideoUnreadable):
        VideoReader(str(listing))


@pytest.mark.parametrize("name", ["frame%03d.png", "frame001.png", "still.mp4"])
def test_images_and_image_sequences_are_unreadable(tmp_path, name):
    for index in (1, 2):
        cv2.imwrite(str(tmp_path / f"frame{index:03d}.png"), np.full((48, 64, 3), 100, np.uint8))
    (tmp_path / "still.mp4").write_bytes((tmp_path / "frame001.png").read_bytes())
    with pytest.raises(VideoUnreadable):
        VideoReader(str(tmp_path / name))
