"""Run a long build command with its whole output kept in a log file.

The user sees progress (ninja's ``[n/N]`` lines become a progress bar or a few log lines);
on failure the error carries the log's tail and its path.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import BuildError
from ..log import Logger

_NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")
TAIL_LINES = 40


def run_logged(argv: Sequence[str], *, log_path: Path, logger: Logger, what: str,
               env: Mapping[str, str] | None = None, cwd: Path | None = None) -> float:
    """Run ``argv``, appending its output to ``log_path``; returns the wall time in seconds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    full_env = {**os.environ, **(env or {})}
    start = time.monotonic()
    last_report = 0.0
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=full_env, cwd=cwd, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
            match = _NINJA_PROGRESS.match(line)
            now = time.monotonic()
            if match and (now - last_report > 30 or match.group(1) == match.group(2)):
                last_report = now
                done, total = int(match.group(1)), int(match.group(2))
                logger.info(f"{what}: [{done}/{total}] {100 * done // total}% "
                            f"({now - start:.0f}s)")
        code = proc.wait()
    elapsed = time.monotonic() - start
    if code != 0:
        shown = "\n".join(f"    {line}" for line in tail)
        raise BuildError(f"{what} failed (exit {code}). Last {len(tail)} lines of the log:\n"
                         f"{shown}\n  Full log: {log_path}")
    return elapsed
