"""File-system primitives every step shares: atomic writes, inter-process locks, file hashes.

Many edgeforge processes may share one cache (two matrix cells on one runner, two pip
self-builds). The rules that keep them from corrupting each other:

- A file appears under its final name only complete: it is written to a temporary name that is
  unique to the process and the call (``mkstemp`` in the same directory), then renamed.
- Work on a shared directory (a build directory, a download) happens under an exclusive
  ``flock`` on a lock file beside it. The lock file records the holder's pid, so a process that
  has to wait says whom it waits for. ``flock`` locks die with their process: a killed build
  never leaves a lock that blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_path(final: Path, suffix: str = ".tmp") -> Path:
    """A fresh, process-unique temporary file next to ``final`` (created empty, with the
    permissions a plain ``open()`` would give it: 0o666 minus the umask, not mkstemp's 0o600)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(name)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(final: Path, suffix: str = ".tmp", durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``final``, on any error
    (or interrupt) it is removed and ``final`` is left as it was. ``durable`` also syncs the
    file before the rename and the directory after it (a crash keeps the old or the new file,
    never an empty one)."""
    tmp = temp_path(final, suffix)
    try:
        yield tmp
        if durable:
            fsync_path(tmp)
        os.replace(tmp, final)
        if durable:
            fsync_path(final.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(final: Path, data: bytes, mode: int | None = None) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
        if mode is not None:
            tmp.chmod(mode)


def atomic_write_text(final: Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(final, text.encode(), mode)


def atomic_copy(src: Path, final: Path, durable: bool = False) -> None:
    with atomic_path(final, durable=durable) as tmp:
        shutil.copy2(src, tmp)


@contextlib.contextmanager
def atomic_directory(final: Path, mode: int = 0o755) -> Iterator[Path]:
    """Yield a fresh, process-unique directory next to ``final`` to fill; on success it takes
    ``final``'s place (an old ``final`` is renamed aside first, then removed), on any error it
    is removed and ``final`` is left as it was. ``final`` never holds a partial tree."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(mode)  # mkdtemp makes it 0700
    try:
        yield tmp
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old",
                                        dir=final.parent))
            os.replace(final, old)  # rename(2) onto an empty directory replaces it
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _holder(lock_file: Path) -> str:
    try:
        text = lock_file.read_text().strip()
    except OSError:
        return "another process"
    return f"process {text}" if text else "another process"


@contextlib.contextmanager
def file_lock(lock_file: Path, what: str, say: Callable[[str], None] | None = None,
              poll: float = 0.5) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` for the ``with`` block.

    If another process holds it, ``say`` is told once (with the holder's pid) and the call
    waits until the holder finishes or dies.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say is not None:
                say(f"waiting for {what}: {_holder(lock_file)} holds {lock_file}")
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if say is not None:
                say(f"got {what} after {time.monotonic() - start:.0f}s")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing releases the flock
