"""Run a long build command with its whole output kept in a log file.

The user sees progress (ninja's ``[n/N]`` lines become a progress bar or a few log lines);
on failure the error carries the log's tail and its path. The command runs in a process group
of its own that never outlives edgeforge: an interrupt stops the group, and Linux sends the
command SIGTERM if edgeforge is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..errors import BuildError
from ..log import Logger

_NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")
TAIL_LINES = 40
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_GRACE_SECONDS = 30.0


def run_logged(argv: Sequence[str], *, log_path: Path, logger: Logger, what: str,
               env: Mapping[str, str] | None = None, cwd: Path | None = None) -> float:
    """Run ``argv``, appending its output to ``log_path``; returns the wall time in seconds."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    full_env = {**os.environ, **(env or {})}
    start = time.monotonic()
    last_report = 0.0
    with log_path.open("a", buffering=1) as log:  # line by line: others watch the log
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        # A session of its own: the build's processes are stopped as one group when edgeforge
        # is interrupted (Ctrl-C, SIGTERM), instead of running on in a work directory whose
        # lock edgeforge has let go.
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=full_env, cwd=cwd, text=True, errors="replace",
                                start_new_session=True, preexec_fn=_die_with_parent())
        assert proc.stdout is not None
        try:
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
        except BaseException:
            _stop_group(proc)
            log.write(f"edgeforge: {what} stopped (interrupted)\n")
            raise
    elapsed = time.monotonic() - start
    if code != 0:
        shown = "\n".join(f"    {line}" for line in tail)
        raise BuildError(f"{what} failed (exit {code}). Last {len(tail)} lines of the log:\n"
                         f"{shown}\n  Full log: {log_path}")
    return elapsed


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send the child SIGTERM when edgeforge dies, however it
    dies (a SIGKILL, the OOM killer): an orphaned build must not run on in a work directory
    whose lock is free. None where there is no ``prctl``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # edgeforge died before prctl took effect
            os._exit(1)

    return preexec


def _stop_group(proc: subprocess.Popen[str], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the command's process group (ninja stops its jobs and removes the outputs they
    were writing) and wait until the whole group is gone; SIGKILL what is left after
    ``grace`` seconds. A second Ctrl-C or SIGTERM meanwhile waits until the group is gone."""
    interrupts = {signal.SIGINT, signal.SIGTERM}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, interrupts)
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _group_alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _group_alive(proc: subprocess.Popen[str]) -> bool:
    """Whether a process of ``proc``'s group still runs. Zombies do not count: once orphaned
    they wait for an init that may never reap them (as in some containers)."""
    proc.poll()
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # no procfs: ask the kernel (zombies count there)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat_file in proc_dir.glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == proc.pid and state not in ("Z", "X"):
            return True
    return False
