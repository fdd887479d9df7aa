"""The boundary the layout shows: the analysis side and the detectors never reach AWS."""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def modules_in(package: str) -> list[str]:
    folder = REPO_ROOT / package.replace(".", "/")
    return [f"{package}.{path.stem}" for path in sorted(folder.glob("*.py")) if path.stem != "__init__"]


def test_the_analysis_side_and_the_detectors_never_import_boto3():
    # given every module of worker/analysis/ and detectors/ (the real detectors, TensorFlow included)
    modules = modules_in("worker.analysis") + modules_in("detectors")
    assert "worker.analysis.pipeline" in modules and "detectors.human" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "aws = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore') or m.startswith('worker.aws'))\n"
        "print(' '.join(aws))\n"
    )

    # when they are all imported in a fresh interpreter
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    # then nothing of AWS was loaded
    assert run.stdout.strip() == ""


def test_the_detectors_never_import_the_worker():
    modules = modules_in("detectors")
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'worker')))\n"
    )

    run = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    assert run.stdout.strip() == ""
