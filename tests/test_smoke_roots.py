"""Debian smoke roots and running them under qemu-user: real apt, real .debs, real QEMU.

The first run downloads and unpacks each root (about 20 s each, riscv64 longer); later runs
reuse them from the real cache.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from edgeforge.errors import FetchError, MissingToolError, SmokeError
from edgeforge.log import Logger
from edgeforge.smoke import (
    DEFAULT_PYTHON_PACKAGES,
    DebianRoot,
    debian_mirror,
    ensure_musl_root,
    ensure_root,
    ensure_smoke_root,
    install_wheels,
    musl_loader,
    qemu_command,
    run_in_root,
)
from edgeforge.smoke.roots import read_interpreter
from edgeforge.toolchain import Toolchain, resolve_target

PROBE = ("import numpy, platform; "
         "print(platform.machine(), numpy.__version__, numpy.arange(5).sum())")


def _logger() -> Logger:
    return Logger(stream=sys.stderr)


def _python_root(target: str, cache: Path) -> tuple[Toolchain, DebianRoot]:
    toolchain = resolve_target(target)
    root = ensure_smoke_root(toolchain, cache, _logger())
    assert root.python is not None and root.host_python is not None
    assert root.host_python.is_file()
    return toolchain, root


def _check_numpy(target: str, machine: str, cache: Path) -> DebianRoot:
    toolchain, root = _python_root(target, cache)
    proc = run_in_root(root, toolchain, [str(root.python), "-c", PROBE], timeout=300)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert words[0] == machine, proc.stdout
    assert words[2] == "10", proc.stdout
    return root


def test_arm64_python_numpy_under_qemu(edgeforge_cache: Path) -> None:
    root = _check_numpy("linux-aarch64", "aarch64", edgeforge_cache)
    assert (root.suite, root.debian_arch, root.python_version) == ("bookworm", "arm64", "3.11")
    assert root.info()["bytecode"] == "host"
    # The loader QEMU uses is the root's own (merged /usr, relative links only).
    assert (root.path / "lib" / "ld-linux-aarch64.so.1").exists()
    assert read_interpreter(root.host_python) == "/lib/ld-linux-aarch64.so.1"  # type: ignore[arg-type]


def test_armhf_python_numpy_under_qemu(edgeforge_cache: Path) -> None:
    root = _check_numpy("linux-armv7l", "armv7l", edgeforge_cache)
    assert root.debian_arch == "armhf"


@pytest.mark.slow
def test_riscv64_python_numpy_from_trixie(edgeforge_cache: Path) -> None:
    root = _check_numpy("linux-riscv64", "riscv64", edgeforge_cache)
    assert root.suite == "trixie"
    assert root.python_version not in (None, "3.11")  # trixie has 3.13
    # Host Python (3.11) cannot compile 3.13 .pyc: compiled under QEMU by the root's Python,
    # or natively by an amd64 trixie root's 3.13 when the cache had one first.
    how = root.info()["bytecode"]
    assert how == "target" or str(how).startswith("native:trixie-amd64-"), how
    tag = "cpython-" + root.python_version.replace(".", "")  # type: ignore[union-attr]
    stdlib = root.path / "usr" / "lib" / f"python{root.python_version}"
    assert (stdlib / "__pycache__" / f"os.{tag}.pyc").is_file()
    assert len(list(stdlib.rglob(f"*.{tag}.pyc"))) > 500


# Under the root's Python: is each module's .pyc valid for this interpreter and its source?
PYC_CHECK = """
import email.parser, importlib.util, json, os, platform, struct
def valid(module):
    source = module.__file__
    with open(importlib.util.cache_from_source(source), "rb") as f:
        head = f.read(16)
    st = os.stat(source)
    return head[:4] == importlib.util.MAGIC_NUMBER and struct.unpack("<4xIII", head)[1:] == (
        int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
print(platform.machine(), *(valid(m) for m in (os, json, email.parser)))
"""


@pytest.mark.slow
def test_foreign_bytecode_is_compiled_by_a_native_root_of_the_same_python(
        tmp_path: Path) -> None:
    # A private, cold cache: the trixie amd64 root first, then arm64 (Python 3.13 both; the
    # host has 3.11). The arm64 .pyc come from the amd64 Python, natively, and are valid
    # for the arm64 Python under QEMU.
    if platform.machine() != "x86_64":
        pytest.skip("the native root here is amd64")
    packages = ["python3-minimal"]
    native = ensure_root("amd64", "trixie", packages, tmp_path, _logger(), emulator=[])
    assert native.python_version == "3.13", native
    toolchain = resolve_target("linux-aarch64")
    foreign = ensure_root("arm64", "trixie", packages, tmp_path, _logger(),
                          emulator=qemu_command(toolchain))
    assert foreign.info()["bytecode"] == f"native:{native.path.name}"
    proc = run_in_root(foreign, toolchain, [str(foreign.python), "-c", PYC_CHECK], timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["aarch64", "True", "True", "True"], proc.stdout


def test_amd64_native_runs_the_roots_python_and_libc(edgeforge_cache: Path) -> None:
    toolchain, root = _python_root("linux-x86_64", edgeforge_cache)
    assert qemu_command(toolchain) == []
    code = ("import sys, numpy; libc = [l.split()[-1] for l in open('/proc/self/maps') "
            "if 'libc.so' in l]; print(sys.prefix, numpy.__file__, libc[0])")
    proc = run_in_root(root, toolchain, [str(root.python), "-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr
    prefix, numpy_file, libc = proc.stdout.split()
    for path in (prefix, numpy_file, libc):
        assert Path(path).resolve().is_relative_to(root.path.resolve()), proc.stdout


def test_second_call_is_cached_and_offline(edgeforge_cache: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = ensure_root("arm64", "bookworm", DEFAULT_PYTHON_PACKAGES, edgeforge_cache, _logger())
    # An unreachable mirror: any apt run would fail, so success proves no network was used.
    monkeypatch.setenv("EDGEFORGE_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
    start = time.monotonic()
    again = ensure_root("arm64", "bookworm", list(reversed(DEFAULT_PYTHON_PACKAGES)),
                        edgeforge_cache, _logger())
    elapsed = time.monotonic() - start
    assert again == first
    assert elapsed < 0.5, elapsed


def test_missing_qemu_binary_is_one_clear_error(edgeforge_cache: Path) -> None:
    toolchain = resolve_target("linux-aarch64")
    broken = dataclasses.replace(
        toolchain, smoke=dataclasses.replace(toolchain.smoke, qemu="qemu-nonexistent-static"))
    with pytest.raises(MissingToolError, match="apt-get install qemu-user-static") as info:
        qemu_command(broken)
    assert "qemu-nonexistent-static" in str(info.value)
    root = ensure_root("arm64", "bookworm", DEFAULT_PYTHON_PACKAGES, edgeforge_cache, _logger())
    with pytest.raises(MissingToolError):
        run_in_root(root, broken, [str(root.python), "-c", "pass"], timeout=60)


def test_musl_root_runs_a_dynamic_musl_program(edgeforge_cache: Path, tmp_path: Path) -> None:
    toolchain = resolve_target("musllinux-aarch64")
    root = ensure_musl_root("arm64", "bookworm", edgeforge_cache, _logger())
    assert root.python is None and root.python_version is None
    loader = musl_loader(root)
    assert loader == Path("/lib/ld-musl-aarch64.so.1")
    assert root.host_path(loader).exists()
    assert not loader.exists()  # the host has none: QEMU can only have used the root's

    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\n#include <math.h>\n'
                      'int main(void) { printf("musl %.3f\\n", sqrt(2.0)); return 0; }\n')
    program = tmp_path / "hello"
    # zig links musl statically by default; -dynamic asks for ld-musl as the interpreter.
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-musl",
                    "-dynamic", "-O2", str(source), "-o", str(program)], check=True)
    assert read_interpreter(program) == "/lib/ld-musl-aarch64.so.1"
    proc = run_in_root(root, toolchain, [str(program)], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "musl 1.414"


def _write_wheel(directory: Path, tags: list[str]) -> Path:
    """A minimal py3-none-<platform> wheel holding one module."""
    name, version = "edgeforge_smoke_probe", "1.0"
    files = {
        f"{name}/__init__.py": b"VALUE = 42\n",
        f"{name}-{version}.dist-info/METADATA":
            f"Metadata-Version: 2.1\nName: edgeforge-smoke-probe\nVersion: {version}\n".encode(),
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: edgeforge-tests\nRoot-Is-Purelib: false\n"
            + "".join(f"Tag: py3-none-{t}\n" for t in tags)).encode(),
    }
    record_name = f"{name}-{version}.dist-info/RECORD"
    rows = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    files[record_name] = ("\n".join([*rows, f"{record_name},,"]) + "\n").encode()
    wheel = directory / f"{name}-{version}-py3-none-{'.'.join(tags)}.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def test_install_wheels_with_dual_tags_and_import_under_qemu(edgeforge_cache: Path,
                                                             tmp_path: Path) -> None:
    toolchain, root = _python_root("linux-aarch64", edgeforge_cache)
    wheel = _write_wheel(tmp_path, list(toolchain.wheel_tags))
    site = install_wheels(root, [wheel], toolchain.wheel_tags, tmp_path / "site")
    proc = run_in_root(root, toolchain,
                       [str(root.python), "-c", "import edgeforge_smoke_probe as p; "
                        "print(p.VALUE, p.__file__)"],
                       env={"PYTHONPATH": str(site)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    value, where = proc.stdout.split()
    assert value == "42" and Path(where).is_relative_to(site)


def test_install_wheels_needs_the_exact_tag(edgeforge_cache: Path, tmp_path: Path) -> None:
    # pip does not alias manylinux2014_aarch64 to manylinux_2_17_aarch64 outside x86.
    _toolchain, root = _python_root("linux-aarch64", edgeforge_cache)
    wheel = _write_wheel(tmp_path, ["manylinux_2_17_aarch64"])
    with pytest.raises(SmokeError, match="manylinux2014_aarch64"):
        install_wheels(root, [wheel], ["manylinux2014_aarch64"], tmp_path / "site")


def test_apt_failure_shows_apts_message(edgeforge_cache: Path) -> None:
    with pytest.raises(FetchError, match=r"(?s)Unable to locate package.*Check that"):
        ensure_root("arm64", "bookworm", ["edgeforge-no-such-package"], edgeforge_cache,
                    _logger())


def test_mirror_from_apt_sources(tmp_path: Path) -> None:
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n\n"
        "Types: deb deb-src\nURIs: http://archive.example/debian/\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n")
    assert debian_mirror({}, etc) == "http://archive.example/debian"
    assert debian_mirror({"EDGEFORGE_DEBIAN_MIRROR": "file:///srv/debian/"}, etc) \
        == "file:///srv/debian"
    (etc / "sources.list").write_text(
        "# comment\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://oneline.example/debian bookworm main\n")
    assert debian_mirror({}, etc) == "http://oneline.example/debian"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FetchError, match="EDGEFORGE_DEBIAN_MIRROR"):
        debian_mirror({}, empty)


def test_host_has_the_mirror() -> None:
    # The machine's own apt sources name an archive (or the override does).
    uri = debian_mirror(os.environ)
    assert uri.split(":", 1)[0] in ("http", "https", "file")
