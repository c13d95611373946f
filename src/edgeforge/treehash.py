"""Tree hashes: one digest over what a source extracts to, whichever URL it came from.

A source's archives differ between URLs (a GitHub tarball, a Debian orig repack, a member of a
bigger archive), so their sha256s cannot agree; the trees they extract to must. The hash is
taken after strip-components, member selection and the source's ``exclude`` globs, before
patches. It covers regular files and symbolic links, in sorted order of their relative POSIX
paths; directories are implied by their contents (git archives have no empty directories,
and an excluded file must not leave a trace). Per entry:

    file <mode> <path>\\0<sha256 of the contents>\\n    mode 644 or 755 (the executable bit)
    link <path>\\0<link target>\\n

and the tree hash is ``sha256:`` + the sha256 of those lines. Anything else in the tree (a
device, a fifo) is refused: extraction never creates one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from .errors import FetchError
from .fsutil import sha256_file

PREFIX = "sha256:"
_PIN = re.compile(r"^sha256:[0-9a-f]{64}$")
IGNORED = frozenset({".complete"})  # the cache's own marker, written after the check


def is_tree_pin(value: str) -> bool:
    return bool(_PIN.match(value))


def excluded(rel: PurePosixPath, patterns: Sequence[str]) -> bool:
    """True if ``rel`` or one of its parent directories matches one of the globs.

    Globs are matched against the whole relative path (``*`` also crosses ``/``), the way
    Debian's ``Files-Excluded`` is read: ``docs/*.png``, ``*/gradle-wrapper.jar``, ``third_party``.
    """
    if not patterns:
        return False
    candidates = [rel.as_posix(), *(p.as_posix() for p in rel.parents if p.parts)]
    return any(fnmatch.fnmatchcase(c, pat) for c in candidates for pat in patterns)


def _entries(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        names = list(filenames)
        for d in list(dirnames):  # os.walk lists symlinks to directories as directories
            if (base / d).is_symlink():
                dirnames.remove(d)
                names.append(d)
        for name in names:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if rel in IGNORED:
                continue
            yield rel, path


def tree_lines(root: Path) -> Iterator[bytes]:
    """The hashed records of ``root``, in order (for a maintainer diffing two trees)."""
    for rel, path in sorted(_entries(root), key=lambda e: e[0].encode()):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            yield b"link " + rel.encode() + b"\0" + os.readlink(path).encode() + b"\n"
        elif stat.S_ISREG(mode):
            perm = b"755" if mode & stat.S_IXUSR else b"644"
            yield (b"file " + perm + b" " + rel.encode() + b"\0" +
                   sha256_file(path).encode() + b"\n")
        else:
            raise FetchError(f"{path}: neither a file nor a symbolic link; cannot hash the tree")


def tree_hash(root: Path) -> str:
    """``sha256:<hex>`` over the files and links under ``root``."""
    h = hashlib.sha256()
    for line in tree_lines(root):
        h.update(line)
    return PREFIX + h.hexdigest()
