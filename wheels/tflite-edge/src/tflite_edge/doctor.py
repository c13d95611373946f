"""``python -m tflite_edge doctor``: what this machine is, what pip sees, what gets loaded."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import struct
import sys
import sysconfig
from collections.abc import Iterator

from . import __version__
from ._library import ENV_VAR, LibraryNotFoundError, _Missing, find_library, load_library
from ._shim import load_shim
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


def free_threading() -> str:
    """Whether this is a free-threaded CPython build, and whether the GIL is on now."""
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "no (the GIL serializes Python code)"
    enabled = getattr(sys, "_is_gil_enabled", lambda: True)()
    return "yes, GIL " + ("re-enabled (an extension asked for it)" if enabled else "disabled")


def libc() -> str:
    """``glibc 2.36``, ``musl 1.2`` or what Python says."""
    name, version = platform.libc_ver()
    if name:
        return f"{name} {version}".rstrip()
    if sys.platform.startswith("linux"):
        musl = _musl_version()
        if musl:
            return f"musl {musl[0]}.{musl[1]}"
    return "unknown"


def _numpy() -> str:
    try:
        import numpy
    except ImportError as exc:
        return f"not importable ({exc})"
    return f"{numpy.__version__} ({os.path.dirname(numpy.__file__)})"


def _build_id(path: str) -> str | None:
    """The GNU build-id of an ELF file (hex), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    at = data.find(b"GNU\0")  # NT_GNU_BUILD_ID note: namesz 4, descsz, type 3, "GNU\0", id
    while at >= 12:
        descsz, ntype = struct.unpack_from("<II", data, at - 8)
        if ntype == 3 and 0 < descsz <= 64:
            return data[at + 4 : at + 4 + descsz].hex()
        at = data.find(b"GNU\0", at + 4)
    return None


def _build_info(path: str) -> list[str]:
    """What the library file says about its build: size, sha256, build-id, the tag of the
    tflite-edge-lib wheel it came with."""
    lines = []
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        lines.append(f"  file: {size} bytes, sha256 {digest}")
    except OSError as exc:
        lines.append(f"  file: unreadable ({exc})")
    build_id = _build_id(path)
    if build_id:
        lines.append(f"  GNU build-id: {build_id}")
    tags = _wheel_tags("tflite-edge-lib")
    if tags:
        lines.append(f"  tflite-edge-lib wheel tag: {'.'.join(tags)}")
    return lines


def _wheel_tags(name: str) -> list[str]:
    from importlib import metadata

    try:
        text = metadata.distribution(name).read_text("WHEEL") or ""
    except metadata.PackageNotFoundError:
        return []
    return [line.split(":", 1)[1].strip() for line in text.splitlines()
            if line.startswith("Tag:")]


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
    lines.append(f"  free-threaded: {free_threading()}")
    lines.append(f"numpy: {_numpy()}")
    lines.append(
        f"platform: {platform.system()} {platform.release()}, kernel machine "
        f"{platform.machine()}, userland {_userland_arch()}, libc {libc()}"
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
        xnnpack = not isinstance(lib.api.TfLiteXNNPackDelegateCreate, _Missing)
        lines.append(f"  XNNPACK delegate: {'built in' if xnnpack else 'absent'}")
        lines.extend(_build_info(lib.path))
        shim = load_shim(lib)
        lines.append(f"  exception shim: {shim.path}" if shim.problem is None
                     else f"  exception shim: none ({shim.problem})")
    plugins = installed_plugins()
    lines.append(f"delegate plugins (entry points 'tflite_edge.delegates'): {len(plugins)}")
    lines.extend(f"  {line}" for line in describe_plugins(plugins))
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    lines, ok = report()
    print("\n".join(lines))
    return 0 if ok else 1
