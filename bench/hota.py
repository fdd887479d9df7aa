"""HOTA (Luiten et al., "HOTA: A Higher Order Metric for Evaluating Multi-Object Tracking", IJCV 2021).

The installed py-motmetrics (1.4) has no HOTA, so it is computed here from the paper's definition,
as the MOTChallenge evaluation computes it: for each localisation threshold alpha in 0.05 .. 0.95,
frame by frame the ground-truth and tracker boxes are matched one to one, maximising IoU weighted by
how well the two ids align over the whole sequence; matches with IoU >= alpha count. DetA =
TP / (TP + FN + FP); AssA = the mean, over the true positives, of their id pair's alignment
TPA / (TPA + FNA + FPA); HOTA(alpha) = sqrt(DetA * AssA); HOTA is the mean over alpha.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from worker.analysis.association import iou_matrix

ALPHAS = np.arange(0.05, 0.96, 0.05)
Frames = dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (ids (n,), boxes (n, 4) left/top/width/height)


def hota(truth: Frames, tracks: Frames) -> dict[str, float]:
    """HOTA, DetA and AssA (fractions) of `tracks` against `truth`, over the frames of `truth`."""
    truth_ids = _dense_ids(truth)
    track_ids = _dense_ids(tracks)
    empty = (np.zeros(0, int), np.zeros((0, 4)))
    frames = [(truth_ids[0][f], track_ids[0].get(f, empty[0]), truth[f][1], tracks.get(f, empty)[1])
              for f in sorted(truth)]
    n_truth, n_tracks = truth_ids[1], track_ids[1]
    # How well each pair of ids aligns overall: IoU-weighted co-occurrence over the union of their frames.
    potential = np.zeros((n_truth, n_tracks))
    truth_count, track_count = np.zeros(n_truth), np.zeros(n_tracks)
    similarities = []
    for t_ids, p_ids, t_boxes, p_boxes in frames:
        similarity = _iou(t_boxes, p_boxes)
        similarities.append(similarity)
        denominator = similarity.sum(0, keepdims=True) + similarity.sum(1, keepdims=True) - similarity
        potential[np.ix_(t_ids, p_ids)] += np.divide(similarity, denominator, out=np.zeros_like(similarity),
                                                     where=denominator > np.finfo(float).eps)
        truth_count[t_ids] += 1
        track_count[p_ids] += 1
    alignment = potential / np.maximum(truth_count[:, None] + track_count[None, :] - potential, np.finfo(float).eps)
    tp, fn, fp = np.zeros(len(ALPHAS)), np.zeros(len(ALPHAS)), np.zeros(len(ALPHAS))
    matches = np.zeros((len(ALPHAS), n_truth, n_tracks))
    for (t_ids, p_ids, _, _), similarity in zip(frames, similarities):
        rows, columns = linear_sum_assignment(-(alignment[np.ix_(t_ids, p_ids)] * similarity))
        for a, alpha in enumerate(ALPHAS):
            kept = similarity[rows, columns] >= alpha - np.finfo(float).eps
            tp[a] += kept.sum()
            fn[a] += len(t_ids) - kept.sum()
            fp[a] += len(p_ids) - kept.sum()
            matches[a, t_ids[rows[kept]], p_ids[columns[kept]]] += 1
    association = matches / np.maximum(1, truth_count[None, :, None] + track_count[None, None, :] - matches)
    ass_a = (matches * association).sum(axis=(1, 2)) / np.maximum(1, tp)
    det_a = tp / np.maximum(1, tp + fn + fp)
    return {"hota": float(np.sqrt(det_a * ass_a).mean()), "deta": float(det_a.mean()), "assa": float(ass_a.mean())}


def _dense_ids(frames: Frames) -> tuple[dict[int, np.ndarray], int]:
    """Each frame's ids renumbered 0 .. n-1 over the sequence, and n."""
    numbering: dict[int, int] = {}
    dense = {f: np.array([numbering.setdefault(int(i), len(numbering)) for i in ids], int)
             for f, (ids, _) in sorted(frames.items())}
    return dense, len(numbering)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every left/top/width/height box in `a` with every one in `b`."""
    return iou_matrix(_centre_size(a), _centre_size(b))


def _centre_size(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:]], axis=1)
