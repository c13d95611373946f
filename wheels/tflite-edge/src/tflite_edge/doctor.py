"""``python -m tflite_edge doctor``: what this machine is, what pip sees, what gets loaded."""

from __future__ import annotations

import os
import platform
import re
import sys
import sysconfig
from collections.abc import Iterator

from . import __version__
from ._library import ENV_VAR, LibraryNotFoundError, find_library, load_library
from .delegates import describe_plugins, installed_plugins


def _userland_arch() -> str:
    """The architecture of this Python, not of the kernel: a 32-bit Raspberry Pi OS on a
    64-bit kernel reports machine() == 'aarch64' but runs armv7l binaries."""
    plat = sysconfig.get_platform()  # e.g. linux-x86_64, linux-armv7l, macosx-11.0-arm64
    arch = plat.split("-")[-1].replace(".", "_")
    if arch == "aarch64" and sys.maxsize <= 2**32:
        return "armv7l"
    if arch == "x86_64" and sys.maxsize <= 2**32:
        return "i686"
    return arch


def _fallback_platform_tags() -> Iterator[str]:
    """A small stand-in for packaging.tags' platform tags (linux glibc/musl only)."""
    arch = _userland_arch()
    if not sys.platform.startswith("linux"):
        yield sysconfig.get_platform().replace("-", "_").replace(".", "_")
        return
    libc, version = platform.libc_ver()
    m = re.match(r"(\d+)\.(\d+)", version or "")
    if libc == "glibc" and m:
        major, minor = int(m.group(1)), int(m.group(2))
        for n in range(minor, 16, -1):
            yield f"manylinux_{major}_{n}_{arch}"
            if n == 17:
                yield f"manylinux2014_{arch}"
    else:
        musl = _musl_version()
        if musl:
            for n in range(musl[1], -1, -1):
                yield f"musllinux_{musl[0]}_{n}_{arch}"
    yield f"linux_{arch}"


def _musl_version() -> tuple[int, int] | None:
    import subprocess

    for loader in sorted(p for p in os.listdir("/lib") if p.startswith("ld-musl-")):
        try:
            out = subprocess.run([os.path.join("/lib", loader)], capture_output=True,
                                 text=True, timeout=5).stderr
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.search(r"Version (\d+)\.(\d+)", out)
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def supported_tags(limit: int = 12) -> tuple[str, list[str], int]:
    """(how the tags were computed, the first ``limit`` tags, how many there are)."""
    try:
        from packaging import tags
    except ImportError:
        plats = list(_fallback_platform_tags())
        all_tags = [f"py3-none-{p}" for p in plats] + ["py3-none-any"]
        return "fallback (packaging is not installed)", all_tags[:limit], len(all_tags)
    all_tags = [str(t) for t in tags.sys_tags()]
    # The tags a py3-none-<platform> wheel such as tflite-edge-lib's is matched against.
    binary = [t for t in all_tags if t.startswith("py3-none-")]
    return "packaging.tags", binary[:limit], len(all_tags)


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def report() -> tuple[list[str], bool]:
    """The doctor's lines, and whether a usable library was found."""
    lines = [f"tflite-edge {__version__}"]
    lines.append(
        f"python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable}), {'64' if sys.maxsize > 2**32 else '32'}-bit"
    )
    libc, libc_version = platform.libc_ver()
    lines.append(
        f"platform: {platform.system()} {platform.release()}, kernel machine "
        f"{platform.machine()}, userland {_userland_arch()}, "
        f"libc {libc or 'unknown'} {libc_version}".rstrip()
    )
    how, tags, total = supported_tags()
    lines.append(f"pip tags for binary wheels ({how}; {total} tags in all), best first:")
    lines.extend(f"  {t}" for t in tags)
    lib_version = _dist_version("tflite-edge-lib")
    lines.append(f"tflite-edge-lib: {lib_version or 'not installed'}")
    override = os.environ.get(ENV_VAR)
    lines.append(f"{ENV_VAR}: {override if override is not None else '(not set)'}")
    candidate = find_library()
    ok = False
    try:
        lib = load_library()
    except LibraryNotFoundError as exc:
        lines.append(f"library: NOT LOADED ({candidate.source}): {exc}")
    else:
        ok = True
        lines.append(f"library: {lib.path}")
        lines.append(f"  loaded from: {lib.source}")
        lines.append(f"  TfLiteVersion(): {lib.version}")
        lines.append(f"  TfLiteSchemaVersion(): {lib.api.TfLiteSchemaVersion()}")
    plugins = installed_plugins()
    lines.append(f"delegate plugins (entry points 'tflite_edge.delegates'): {len(plugins)}")
    lines.extend(f"  {line}" for line in describe_plugins(plugins))
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1
