"""zig at one path per release, in the cache.

zig's own cache (the libc, libc++ and compiler-rt it builds per target) is keyed by the path
of its ``lib`` directory, and the compiler cache hashes the wrapper scripts, which name zig's
path. A ziglang installed into a fresh venv, or into pip's build isolation (a new temporary
directory every time), would start both caches cold: several minutes for libc++ alone, the
whole TFLite build for ccache. So builds run zig from ``<cache>/zig-install/<version>-<hash>``,
a copy of the ziglang package (hard links where the file system allows), made once per
release and shared by every environment that installs the same zig.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..fsutil import file_lock, sha256_file


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def stable_zig(zig: Path, cache_dir: Path, version: str) -> Path:
    """The zig executable of the package ``zig`` lives in, at its stable path in the cache."""
    package = zig.parent
    digest = sha256_file(zig)[:16]
    home = cache_dir / "zig-install"
    dest = home / f"{version}-{digest}"
    if (dest / zig.name).is_file():
        return dest / zig.name
    with file_lock(home / f"{dest.name}.lock", f"the zig {version} install"):
        if not (dest / zig.name).is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=home))
            try:
                shutil.copytree(package, tmp / "zig", copy_function=_link_or_copy,
                                ignore=shutil.ignore_patterns("__pycache__", "*.py"))
                os.replace(tmp / "zig", dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest / zig.name
