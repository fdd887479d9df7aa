"""Checks that a result document keeps every promise the contract makes about it."""

from __future__ import annotations

LANDMARKS = {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}


def assert_contract_result(result: dict, sample_every: int = 1) -> None:
    assert result["schema"] == "videoscan/detections@1"
    for key in ("job_id", "tag", "video", "detectors", "sample_every", "frames", "summary",
                "worker_id", "started_at", "finished_at"):
        assert key in result, key
    video = result["video"]
    assert set(video) == {"uri", "width", "height", "fps", "frame_count", "frames_skipped", "duration_ms", "codec"}
    assert video["frames_skipped"] >= 0
    assert video["width"] > 0 and video["height"] > 0 and video["fps"] > 0 and video["frame_count"] > 0
    labels = {d["label"] for d in result["detectors"]}
    for detector in result["detectors"]:
        assert set(detector) == {"name", "label", "model", "min_confidence"}

    frames = result["frames"]
    assert result["sample_every"] == sample_every
    assert [f["index"] for f in frames] == list(range(0, video["frame_count"], sample_every))
    timestamps = [f["timestamp_ms"] for f in frames]
    assert all(b > a for a, b in zip(timestamps, timestamps[1:])), "timestamps must increase"
    counts = dict.fromkeys(labels, 0)
    max_in_frame = dict.fromkeys(labels, 0)
    track_ids = {label: set() for label in labels}
    for frame in frames:
        per_label = dict.fromkeys(labels, 0)
        for detection in frame["detections"]:
            assert detection["label"] in labels
            assert 0 <= detection["confidence"] <= 1
            box = detection["box"]
            assert set(box) == {"left", "top", "width", "height"}
            assert all(0 <= box[k] <= 1 for k in box)
            assert box["left"] + box["width"] <= 1.0001 and box["top"] + box["height"] <= 1.0001
            assert isinstance(detection["track_id"], int) and detection["track_id"] >= 1
            assert detection["source"] in ("detector", "tracker")
            track_ids[detection["label"]].add(detection["track_id"])
            if detection["label"] == "face":
                assert set(detection["landmarks"]) == LANDMARKS
                assert all(0 <= c <= 1 for point in detection["landmarks"].values() for c in point)
            per_label[detection["label"]] += 1
        for label, count in per_label.items():
            counts[label] += count
            max_in_frame[label] = max(max_in_frame[label], count)
    tracks = {label: len(ids) for label, ids in track_ids.items()}
    assert result["summary"] == {"frames_analyzed": len(frames), "counts": counts, "max_in_frame": max_in_frame,
                                 "tracks": tracks}
