"""Run target programs from a Debian root: under qemu-user, or natively with the root's loader.

Foreign targets: ``qemu-<arch>-static -L ROOT ROOT/usr/bin/python3.X ...``. QEMU maps the ELF
interpreter and every absolute path the guest opens into ROOT when the file exists there and
falls back to the host path otherwise; the root carries its own loader and libraries (checked
when it is built, and it has an empty /etc/ld.so.cache so the host's is never read), so the
fallback only serves host paths we pass on purpose (the root itself, the wheel directory).

Host targets (x86_64 wheels, amd64 root): the root's own ``ld-linux-x86-64.so.2`` runs the root's
``python3.X`` with ``--inhibit-cache --library-path <root libs>``, so the root's Python, libc and
numpy are used, not the host's. No chroot (needs no privileges). Programs that Python itself
spawns would use the host's loader; a smoke script does not spawn any.

In both cases PYTHONHOME is ROOT/usr, so the stdlib comes from the root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingToolError, SmokeError
from ..log import Logger
from ..toolchain import Toolchain
from .roots import (
    DEFAULT_PYTHON_PACKAGES,
    DebianRoot,
    ensure_musl_root,
    ensure_root,
    python_env,
    target_argv,
)


def qemu_command(toolchain: Toolchain) -> list[str]:
    """The command prefix that runs the target's binaries: ``[]`` natively, else ``[qemu]``."""
    name = toolchain.smoke.qemu
    if name is None:
        return []
    found = shutil.which(name)
    if found is None:
        raise MissingToolError(
            f"{name} not found: the {toolchain.name} smoke test runs its binaries under "
            "qemu-user. Install it with: apt-get install qemu-user-static"
        )
    return [found]


def ensure_smoke_root(toolchain: Toolchain, cache_dir: Path, logger: Logger, *,
                      packages: Sequence[str] = DEFAULT_PYTHON_PACKAGES,
                      refresh: bool = False) -> DebianRoot:
    """The root the toolchain's smoke runs in: a Python root, or musl's loader (``c-driver``)."""
    smoke = toolchain.smoke
    emulator = qemu_command(toolchain)
    # toolchain.py requires debian-arch for the runners that have a root (python, c-driver)
    assert smoke.debian_arch is not None, f"{toolchain.name}: no root for {smoke.runner}"
    if smoke.runner == "c-driver":
        return ensure_musl_root(smoke.debian_arch, smoke.debian_suite, cache_dir, logger,
                                refresh=refresh)
    return ensure_root(smoke.debian_arch, smoke.debian_suite, packages, cache_dir, logger,
                       refresh=refresh, emulator=emulator)


def run_in_root(
    root: DebianRoot,
    toolchain: Toolchain,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with the root's libc; ``argv[0]`` is a path inside it (``root.python``) or,
    if the root has no such file, a host program such as a C driver.

    ``env`` is added to a clean environment (the host's is not inherited; PYTHONPATH,
    LD_LIBRARY_PATH, ... pass through ``env``). Output is captured as text; a non-zero exit is
    returned, not raised. A timeout raises SmokeError.
    """
    if not argv:
        raise SmokeError("run_in_root needs a program to run")
    emulator = qemu_command(toolchain)
    full_env = {**python_env(root), **(env or {})}
    library_path: list[str] = []
    if not emulator and full_env.get("LD_LIBRARY_PATH"):
        # ld.so --library-path replaces LD_LIBRARY_PATH: carry it over, first.
        library_path = [p for p in full_env.pop("LD_LIBRARY_PATH").split(":") if p]
    command = target_argv(root, emulator, [str(a) for a in argv], library_path)
    try:
        return subprocess.run(command, env=full_env, cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SmokeError(f"{argv[0]} in {root.path.name} did not finish in {timeout:.0f}s "
                         f"under {' '.join(command[:1]) or 'the root loader'}") from exc
    except OSError as exc:
        raise SmokeError(f"could not start {command[0]}: {exc}") from exc


def install_wheels(root: DebianRoot, wheels: Sequence[Path], platform_tags: Sequence[str],
                   dest: Path) -> Path:
    """Install wheels for the root's Python into ``dest`` with the host's pip; returns ``dest``.

    ``pip install --no-deps --only-binary=:all: --platform TAG... --python-version X.Y
    --implementation cp --target dest``. Pass *all* of the toolchain's tags: pip does not alias
    ``manylinux2014_aarch64`` to ``manylinux_2_17_aarch64`` outside x86. Put ``dest`` on the
    target Python's PYTHONPATH.
    """
    if root.python_version is None:
        raise SmokeError(f"{root.path.name} has no Python to install wheels for")
    if not wheels:
        raise SmokeError("install_wheels needs at least one wheel")
    if not platform_tags:
        raise SmokeError("install_wheels needs the target's platform tags")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
            "--only-binary=:all:", "--disable-pip-version-check", "--no-input", "--upgrade"]
    for tag in platform_tags:
        argv += ["--platform", tag]
    argv += ["--python-version", root.python_version, "--implementation", "cp",
             "--target", str(dest), *(str(w) for w in wheels)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        names = ", ".join(Path(w).name for w in wheels)
        raise SmokeError(
            f"pip could not install {names} for Python {root.python_version} on "
            f"{', '.join(platform_tags)}:\n{tail}\n"
            "Check that each wheel's platform tag is one of those (dual tags need both) and "
            "that its python tag accepts that Python version."
        )
    return dest


@dataclass(frozen=True)
class RootInstall:
    """What the root's own pip did: the wheels it chose and where it put them."""

    chosen: tuple[str, ...]  # file names of the wheels pip installed, in its order
    site_dirs: tuple[Path, ...]  # host paths to put on the root Python's PYTHONPATH
    output: str


# pip's line for each file it takes: "Processing /dir/x.whl", newer pips add " (from req)".
_PROCESSING = re.compile(r"^\s*Processing \S*?([^/\s]+\.whl)(?: \(from [^)]*\))?\s*$",
                         re.MULTILINE)


def install_with_root_pip(root: DebianRoot, toolchain: Toolchain, requirements: Sequence[str],
                          find_links: Path, prefix: Path, *, python: str | None = None,
                          timeout: float = 900.0) -> RootInstall:
    """Install ``requirements`` with the root's own pip (its ``python -m pip``, Debian's
    python3-pip), offline from ``find_links``: no ``--platform``, so the root interpreter's
    own tag logic (its glibc, its machine, its implementation) picks each wheel.

    ``python`` is the interpreter inside the root (default ``root.python``; e.g.
    ``/usr/bin/pypy3``, which sees Debian's pip in /usr/lib/python3/dist-packages).
    ``--prefix`` keeps the root's own packages (Debian's numpy) visible to the resolver and
    skips PEP 668's externally-managed refusal, which guards the system's site, not a prefix
    (``--target`` would reinstall every dependency). No configuration file is read (the
    host's would add its indexes: the root's Python sees the host's /etc).
    """
    python = python or (None if root.python is None else str(root.python))
    if python is None:
        raise SmokeError(f"{root.path.name} has no Python to run pip with")
    argv = _own_pip_argv(python, requirements, find_links, prefix)
    proc = run_in_root(root, toolchain, argv, env={"PIP_CONFIG_FILE": os.devnull},
                       timeout=timeout)
    return _own_pip_result(proc, f"{python} -m pip in {root.path.name}", requirements,
                           find_links, prefix)


def install_with_own_pip(python: Path, requirements: Sequence[str], find_links: Path,
                         prefix: Path, *, timeout: float = 900.0) -> RootInstall:
    """The same install by a host interpreter that is no Debian root's (the free-threaded
    CPython built into the cache): its own pip and tag logic, offline, a clean environment."""
    argv = _own_pip_argv(str(python), requirements, find_links, prefix)
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONNOUSERSITE": "1",
           "PIP_CONFIG_FILE": os.devnull}
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise SmokeError(f"{python} -m pip did not finish in {timeout:.0f}s") from exc
    return _own_pip_result(proc, f"{python} -m pip", requirements, find_links, prefix)


def _own_pip_argv(python: str, requirements: Sequence[str], find_links: Path,
                  prefix: Path) -> list[str]:
    if not requirements:
        raise SmokeError("an install with the userland's own pip needs a requirement")
    return [python, "-m", "pip", "install", "--no-index", "--find-links", str(find_links),
            "--prefix", str(prefix), "--no-cache-dir", "--disable-pip-version-check",
            "--no-warn-script-location", "--no-compile", *requirements]


def _own_pip_result(proc: subprocess.CompletedProcess[str], who: str,
                    requirements: Sequence[str], find_links: Path, prefix: Path) -> RootInstall:
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-20:])
        raise SmokeError(
            f"{who} could not install {' '.join(requirements)} from {find_links} (exit "
            f"{proc.returncode}):\n{tail}\n"
            "pip accepts only wheels whose tags its interpreter supports: check the wheel "
            "directory holds one for this userland (its machine, glibc and Python).")
    site_dirs = sorted({d.parent for d in Path(prefix).rglob("*.dist-info") if d.is_dir()})
    return RootInstall(tuple(_PROCESSING.findall(output)), tuple(site_dirs), output)
