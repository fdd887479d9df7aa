"""What Dockerfile.gpu installs, read from the Dockerfile and setup.cfg, and resolved by pip
for the image's platform without Docker (`pip install --dry-run --report`: metadata only)."""

from __future__ import annotations

import configparser
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "Dockerfile.gpu"
SETUP_CFG = REPO_ROOT / "setup.cfg"

# glibc of each Debian release a python:*-slim image is built on: the newest manylinux tag
# its pip accepts. pip's --platform takes exact tags, so every older one is listed too.
DEBIAN_GLIBC_MINOR = {"bookworm": 36, "trixie": 41}


def dockerfile_instructions(text: str = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def arg_defaults() -> dict[str, set[str]]:
    """Each ARG's default values (a multi-stage file declares an ARG once per stage)."""
    defaults: dict[str, set[str]] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ARG" and "=" in arguments:
            name, value = arguments.split("=", 1)
            defaults.setdefault(name, set()).add(value)
    return defaults


def single_default(name: str) -> str:
    [value] = arg_defaults()[name]
    return value


def base_image() -> str:
    """The Python image both stages start from (FROM ${PYTHON_IMAGE})."""
    return single_default("PYTHON_IMAGE")


def pip_install_arguments() -> list[str]:
    """What the image's `pip install` lines name, with ARGs substituted."""
    arguments = []
    for keyword, line in dockerfile_instructions():
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;", line):
            if "pip install" not in command:
                continue
            words = shlex.split(command)
            start = words.index("install") + 1
            for word in words[start:]:
                arguments.append(re.sub(r"\$\{(\w+)\}", lambda m: single_default(m.group(1)), word))
    return arguments


def copied_project_path() -> str:
    """Where the build stage puts the source tree (COPY . <path>)."""
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and arguments.split()[0] == ".":
            return arguments.split()[1]
    raise AssertionError("Dockerfile.gpu copies no source tree")


def install_requires() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    return [line for line in parser["options"]["install_requires"].splitlines() if line and not line.startswith("#")]


def extras() -> dict[str, list[str]]:
    parser = configparser.ConfigParser()
    parser.read(SETUP_CFG)
    section = parser["options.extras_require"]
    return {name: [line for line in section[name].splitlines() if line] for name in section}


def image_requirements() -> list[str]:
    """The requirement strings the image resolves: its pip lines, the project as install_requires.

    Anything else on the pip line (an option, another path) would change what pip does in a way
    this resolution does not model, so it is refused.
    """
    project = copied_project_path()
    requirements = []
    for argument in pip_install_arguments():
        if argument.rstrip("/") == project.rstrip("/"):
            requirements.extend(install_requires())
        elif argument.startswith("-") or "/" in argument:
            raise AssertionError(f"Dockerfile.gpu's pip install has {argument!r}, which the recipe test cannot model")
        else:
            requirements.append(argument)
    return requirements


def platform_options(image: str) -> list[str]:
    """pip's target options for a python:X.Y-slim-<debian> image on x86_64."""
    match = re.fullmatch(r"python:(\d+)\.(\d+)-slim-(\w+)", image)
    assert match, f"base image {image!r} is not python:X.Y-slim-<debian release>"
    major, minor, release = match.groups()
    options = ["--python-version", f"{major}.{minor}", "--implementation", "cp", "--abi", f"cp{major}{minor}"]
    for glibc_minor in range(17, DEBIAN_GLIBC_MINOR[release] + 1):
        options += ["--platform", f"manylinux_2_{glibc_minor}_x86_64"]
    return options + ["--platform", "manylinux2014_x86_64", "--only-binary=:all:"]


def pip_environment() -> dict[str, str]:
    """This machine's pip settings less the ones a `docker build` would not have (local wheel
    folders, constraint files, extra indexes): the image resolves against the index alone."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"}
    }
    environment["PIP_CONFIG_FILE"] = os.devnull
    return environment


def resolve(requirements: list[str], image: str) -> dict:
    """pip's installation report for the requirements on the image's platform."""
    with tempfile.TemporaryDirectory() as work:
        report = pathlib.Path(work) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--report", str(report), *platform_options(image), *requirements,
        ]
        run = subprocess.run(command, env=pip_environment(), capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise AssertionError(f"pip could not resolve the image's packages:\n{' '.join(command)}\n{run.stderr}")
        return json.loads(report.read_text())
