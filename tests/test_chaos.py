"""The chaos harness as a test: worker processes killed at random while they work through duplicated jobs.

Off by default (`pytest -m chaos` runs it); `bench/chaos.py` runs the same harness longer, with its figures.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.chaos
@pytest.mark.parametrize("faults", ["0", "0.1"], ids=["reliable-aws", "a-tenth-of-aws-requests-fail"])
def test_killed_workers_lose_no_job_and_never_run_one_twice_at_once(tmp_path, faults):
    # given three workers on six jobs (some sent more than once), four of them killed mid-run
    command = [sys.executable, "bench/chaos.py", "--workers", "3", "--jobs", "6", "--kills", "4",
               "--video-seconds", "4", "--faults", faults, "--seed", "3", "--log-dir", str(tmp_path)]

    # when the harness has run them until every job ended
    run = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)

    # then it found no lost job, no concurrent run, no unexplained event and no crash
    assert run.returncode == 0, run.stdout + run.stderr
