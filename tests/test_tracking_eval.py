"""The tracking benchmark's scoring (bench/tracking.py): py-motmetrics' own published result on its TUD
sequences, HOTA's limits, and the SORT baseline reproducing the figures published for it."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import motmetrics
import numpy as np
import pandas as pd
import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
# py-motmetrics' tests and README score its own tracker output (test.txt, shipped with the package)
# against these two sequences' ground truth: (MOTA, IDF1, ID switches, false positives, misses).
MOTMETRICS_PUBLISHED = {
    "TUD-Campus": (0.526462, 0.557659, 7, 13, 150),
    "TUD-Stadtmitte": (0.564014, 0.644619, 7, 45, 452),
}
# Bewley et al. 2016, on the same public detections: (MOTA, ID switches).
SORT_PUBLISHED = {"TUD-Campus": (0.627, 6), "TUD-Stadtmitte": (0.717, 10)}


def _bench_module():
    sys.path.insert(0, str(BENCH))  # the bench scripts import their neighbours by name
    try:
        spec = importlib.util.spec_from_file_location("bench_tracking", BENCH / "tracking.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


bench = _bench_module()


@pytest.fixture
def truth(data_dir):
    return lambda sequence: motmetrics.io.loadtxt(str(data_dir / "mot15_dev" / sequence / "gt.txt"))


@pytest.mark.parametrize("sequence", list(MOTMETRICS_PUBLISHED))
def test_scoring_reproduces_py_motmetrics_published_result(sequence, truth):
    theirs = motmetrics.io.loadtxt(str(pathlib.Path(motmetrics.__file__).parent / "data" / sequence / "test.txt"))

    scores = bench.score(truth(sequence), theirs)

    mota, idf1, switches, false_positives, misses = MOTMETRICS_PUBLISHED[sequence]
    assert scores.mota == pytest.approx(mota, abs=1e-5)
    assert scores.idf1 == pytest.approx(idf1, abs=1e-5)
    assert (scores.switches, scores.false_positives, scores.misses) == (switches, false_positives, misses)
    assert 0.0 < scores.hota < 1.0


def test_hota_is_one_for_the_truth_itself_and_falls_when_an_identity_changes_half_way(truth):
    reference = truth("TUD-Campus")
    frames = reference.index.get_level_values("FrameId")
    ids = reference.index.get_level_values("Id").to_numpy().copy()
    ids[(frames > frames.max() // 2) & (ids == 3)] = 99  # person 3 is there from the first frame to the 63rd
    changed = reference.set_axis(pd.MultiIndex.from_arrays([frames, ids], names=reference.index.names))

    assert bench.score(reference, reference).hota == pytest.approx(1.0)
    assert bench.score(reference, changed).hota < 0.99
    assert bench.score(reference, changed).mota == pytest.approx(1.0 - 1 / len(reference))  # one switch


@pytest.mark.parametrize("sequence", list(SORT_PUBLISHED))
def test_the_sort_baseline_reproduces_its_published_figures(sequence, truth, data_dir, tmp_path):
    detections = np.loadtxt(data_dir / "mot15_dev" / sequence / "det.txt", delimiter=",")
    reference = truth(sequence)
    rows = bench.track_sort(detections, int(reference.index.get_level_values("FrameId").max()), every=1)
    # Through a MOTChallenge file, as the benchmark does: loadtxt shifts both files' 1-based pixels alike.
    scores = bench.score(reference, bench.mot_table(tmp_path / "sort.txt", rows))

    mota, switches = SORT_PUBLISHED[sequence]
    assert scores.mota == pytest.approx(mota, abs=0.0005)
    assert scores.switches == switches
