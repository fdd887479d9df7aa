"""In json mode, what native code writes straight to file descriptor 2 becomes JSON lines too.

TensorFlow's C++ runtime (through absl, before anything can initialise absl's logging), CUDA and
FFmpeg write plain text to fd 2, and TF_CPP_MIN_LOG_LEVEL does not reach absl's early lines.
So fd 2 becomes a pipe to a small forwarding process, which passes JSON lines through, turns every
other line into a JSON record at the level its prefix names, and drops native lines below
TF_CPP_MIN_LOG_LEVEL. A process, not a thread: it still forwards the last words of a process
that aborts, and it exits when every writer has closed the pipe.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import signal
import subprocess
import sys

from worker.logs import JsonFormatter

# glog/absl prefix: severity letter, MMDD, time, thread id, file:line]
_NATIVE_PREFIX = re.compile(r"^([IWEF])\d{4} [\d:. ]+\s+\d+ ([^\]]+)\] ?")
_LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL}
# OpenCV's own log lines: "[ WARN:0@1.234] global cap.cpp:164 open ..."
_OPENCV_PREFIX = re.compile(r"^\[ ?(INFO|WARN|ERROR|FATAL):[^\]]*\] ?")
_OPENCV_LEVELS = {"INFO": logging.INFO, "WARN": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}
# absl's notice that it was not initialised: about the lines before it, which are filtered here.
_ABSL_PRE_INIT = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# TF_CPP_MIN_LOG_LEVEL: 0 everything, 1 no INFO, 2 no WARNING, 3 no ERROR.
_MIN_LEVELS = {0: logging.INFO, 1: logging.WARNING, 2: logging.ERROR, 3: logging.CRITICAL}
FORWARDER_EXIT_S = 5.0


def capture_native_stderr() -> None:
    """Routes fd 2 (and so sys.stderr) through the forwarding process, for the rest of this process."""
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    original = os.dup(2)
    forwarder = subprocess.Popen([sys.executable, "-m", "worker.native_log"], stdin=read_end, stdout=original,
                                 stderr=original, start_new_session=True)
    os.dup2(write_end, 2)
    for descriptor in (read_end, write_end, original):
        os.close(descriptor)
    atexit.register(_close, forwarder)


def _close(forwarder: subprocess.Popen) -> None:
    # A container ends when its main process does: the forwarder must have written everything by then.
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # the pipe's last write end here: the forwarder sees its end
    try:
        forwarder.wait(FORWARDER_EXIT_S)
    except subprocess.TimeoutExpired:  # another process still holds the pipe; its lines are its own
        pass


def json_line(line: str, min_level: int) -> str | None:
    """The line as one JSON object, or None when it is empty or a native log line below `min_level`."""
    text = line.rstrip("\n")
    if not text.strip():
        return None
    if text.startswith("{"):
        try:
            json.loads(text)
            return text
        except ValueError:
            pass
    # Other text: the command's own last words (its failures start with "videoscan: "), a Python
    # traceback, or a line nothing here can classify, which is worth a look.
    level = logging.ERROR if text.startswith(("videoscan: ", "Traceback")) else logging.WARNING
    logger = "stderr"
    native, opencv = _NATIVE_PREFIX.match(text), _OPENCV_PREFIX.match(text)
    if native:
        level, logger, text = _LEVELS[native.group(1)], f"native.{native.group(2)}", text[native.end():]
    elif text == _ABSL_PRE_INIT:
        level, logger = logging.INFO, "native.absl"
    elif opencv:
        level, logger, text = _OPENCV_LEVELS[opencv.group(1)], "native.opencv", text[opencv.end():]
    if logger != "stderr" and level < min_level:
        return None
    record = logging.LogRecord(logger, level, "", 0, text, None, None)
    return JsonFormatter().format(record)


def _min_level() -> int:
    try:
        return _MIN_LEVELS.get(int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0")), logging.CRITICAL)
    except ValueError:
        return logging.INFO


def _forward() -> None:
    # Ctrl-C and `docker stop` are for the worker; this process ends when the pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    min_level = _min_level()
    for line in sys.stdin:
        forwarded = json_line(line, min_level)
        if forwarded is not None:
            sys.stdout.write(forwarded + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    _forward()
