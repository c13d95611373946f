"""Conan 2: the staged TFLite C library of every built target as one recipe's binaries, and
Conan profiles made from the toolchains.

``export`` reads the pipeline's ``tflite_edge_lib`` wheels (their library, headers and
licenses, byte for byte: nothing is compiled) and runs ``conan export-pkg`` once per wheel with
the shipped recipe (``conan-recipe/conanfile.py``) and a ``conandata.yml`` that lists every
target on the search path, so all binaries share one recipe revision. A binary's package id is
os, arch and libc with its floor, never the consumer's compiler.

``write_profiles`` turns a toolchain into a Conan profile: the target's settings, edgeforge's
compiler wrappers (zig with the target and CPU flags baked in) as
``tools.build:compiler_executables`` and ``[buildenv]``, and the ``libc`` option.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from . import resources
from .archs import ARCHS_FILE, arch_info
from .builders.compilers import Compilers, write_compilers
from .errors import ConanError, ConfigError, MissingToolError
from .fsutil import atomic_write_text
from .log import Logger
from .toolchain import Toolchain, available_targets, load_toolchain

RECIPE_DIR = resources.shipped("conan-recipe")
PACKAGE_NAME = "tflite-edge-c"
LIBRARY = "libtensorflowlite_c.so"
WHEEL_DISTRIBUTION = "tflite-edge-lib"
WHEEL_PACKAGE = "tflite_edge_lib"

CONAN_OS = {"Linux": "Linux"}  # CMake's system name -> Conan's os; the arch: archs.toml


@dataclass(frozen=True)
class ConanTarget:
    """What tells one binary of the recipe from another."""

    name: str  # the edgeforge target, e.g. linux-aarch64
    os: str  # Conan's os setting
    arch: str  # Conan's arch setting
    libc: str  # glibc or musl: the recipe's `libc` option
    libc_version: str  # the floor the binary needs (glibc 2.17, musl 1.2)

    def data(self) -> dict[str, str]:
        return {"os": self.os, "arch": self.arch, "libc": self.libc,
                "libc_version": self.libc_version}


def _nameable(toolchain: Toolchain) -> bool:
    return (toolchain.cmake_system_name in CONAN_OS
            and arch_info(toolchain.arch).conan_arch is not None)


def conan_target(toolchain: Toolchain) -> ConanTarget:
    if not _nameable(toolchain):
        raise ConfigError(f"no Conan package for {toolchain.name} "
                          f"({toolchain.cmake_system_name}/{toolchain.arch}): edgeforge conan "
                          f"makes them for {', '.join(CONAN_OS)} targets whose arch has a "
                          f"`conan-arch` in {ARCHS_FILE}", path=toolchain.path)
    return ConanTarget(name=toolchain.name, os=CONAN_OS[toolchain.cmake_system_name],
                       arch=str(arch_info(toolchain.arch).conan_arch), libc=toolchain.libc,
                       libc_version=toolchain.libc_version)


def load_targets(directories: Sequence[Path]) -> dict[str, Toolchain]:
    """Every target on the search path, by target name."""
    return {name: load_toolchain(path) for name, path in available_targets(directories).items()}


def conandata(toolchains: Iterable[Toolchain]) -> dict[str, dict[str, dict[str, str]]]:
    """The recipe's conandata.yml: target name -> os, arch, libc, libc floor, for every target
    Conan can name (Linux). Two targets with the same os/arch/libc would be one binary to
    Conan: refused."""
    targets: dict[str, dict[str, str]] = {}
    seen: dict[tuple[str, str, str], str] = {}
    for t in sorted(filter(_nameable, toolchains), key=lambda t: t.name):
        ct = conan_target(t)
        key = (ct.os, ct.arch, ct.libc)
        if key in seen:
            raise ConfigError(f"targets {seen[key]} and {t.name} are both os={ct.os} "
                              f"arch={ct.arch} libc={ct.libc}: Conan cannot tell their "
                              "binaries apart", path=t.path)
        seen[key] = t.name
        targets[t.name] = ct.data()
    return {"targets": targets}


# --------------------------------------------------------------------------- the binaries


@dataclass(frozen=True)
class LibraryWheel:
    """A tflite-edge-lib wheel and the target whose wheel tags it carries."""

    path: Path
    version: str
    target: Toolchain


def find_wheels(inputs: Sequence[Path]) -> list[Path]:
    """The tflite_edge_lib wheels among files and directories (a release or dist directory)."""
    found: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found += sorted(p.glob(f"{WHEEL_PACKAGE}-*.whl"))
        elif p.is_file():
            found.append(p)
        else:
            raise ConfigError(f"{p}: no such file or directory (give tflite_edge_lib wheels or "
                              "a directory of them, e.g. a release directory)")
    if not found:
        raise ConfigError(f"no {WHEEL_PACKAGE}-*.whl in {', '.join(map(str, inputs))}: build "
                          "them first (edgeforge build tflite --target ...)")
    return found


def identify(wheel: Path, targets: Mapping[str, Toolchain]) -> LibraryWheel:
    """Which target a wheel was built for, from its platform tags."""
    try:
        name, version, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise ConfigError(f"{wheel}: not a wheel file name ({exc})") from None
    if name != WHEEL_DISTRIBUTION:
        raise ConfigError(f"{wheel.name} is a {name} wheel; Conan packages are made from "
                          f"{WHEEL_DISTRIBUTION} wheels")
    platforms = {t.platform for t in tags}
    for t in targets.values():
        if platforms == set(t.wheel_tags):
            return LibraryWheel(path=wheel, version=str(version), target=t)
    known = ", ".join(f"{n} ({t.platform_tag})" for n, t in targets.items())
    raise ConfigError(f"{wheel.name}: its platform tags {'.'.join(sorted(platforms))} are no "
                      f"target's (default compiler backend): {known}")


def unpack_stage(wheel: Path, stage: Path) -> Path:
    """The wheel's library, headers and licenses as the recipe's ``stage/`` tree:
    ``include/``, ``lib/libtensorflowlite_c.so``, ``licenses/``. Returns the library."""
    include = PurePosixPath(WHEEL_PACKAGE, "include")
    library = PurePosixPath(WHEEL_PACKAGE, "lib", LIBRARY)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            member = PurePosixPath(info.filename)
            if info.is_dir() or ".." in member.parts:
                continue
            if member.is_relative_to(include) and member.suffix == ".h":
                dest = stage / "include" / member.relative_to(include)
            elif member == library:
                dest = stage / "lib" / LIBRARY
            elif len(member.parts) > 2 and member.parts[0].endswith(".dist-info") \
                    and member.parts[1] == "licenses":
                dest = stage / "licenses" / PurePosixPath(*member.parts[2:])
            else:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
    if not (stage / "lib" / LIBRARY).is_file():
        raise ConfigError(f"{wheel.name} has no {library}")
    return stage / "lib" / LIBRARY


@dataclass(frozen=True)
class Exported:
    target: str
    version: str
    reference: str  # name/version#rrev:package_id
    wheel: Path


def conan_executable() -> Path:
    """``conan`` from edgeforge's own environment, else from PATH."""
    beside = Path(sys.executable).parent / "conan"
    found = str(beside) if beside.is_file() else shutil.which("conan")
    if found is None:
        raise MissingToolError("conan is missing: pip install 'edgeforge[conan]' (or conan>=2)")
    return Path(found)


def run_conan(args: Sequence[str], *, cwd: Path | None = None,
              env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One conan command; a failure raises ConanError with its output's tail."""
    argv = [str(conan_executable()), *args]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip()[-4000:]
        raise ConanError(f"`conan {' '.join(args)}` failed ({proc.returncode}):\n{tail}")
    return proc


def _settings_profile(target: ConanTarget) -> str:
    """The profile export-pkg needs: only what the package id reads."""
    return (f"[settings]\nos={target.os}\narch={target.arch}\n"
            f"[options]\n{PACKAGE_NAME}/*:libc={target.libc}\n")


def export(wheels: Sequence[Path], targets: Mapping[str, Toolchain], logger: Logger,
           env: Mapping[str, str] | None = None) -> list[Exported]:
    """Each wheel as a binary of ``tflite-edge-c/<version>`` in the local Conan cache
    (``$CONAN_HOME``). All wheels must have one version."""
    found = [identify(w, targets) for w in wheels]
    versions = {w.version for w in found}
    if len(versions) != 1:
        raise ConfigError(f"the wheels have versions {sorted(versions)}: export one at a time")
    by_target: dict[str, Path] = {}
    for w in found:
        if w.target.name in by_target:
            raise ConfigError(f"two wheels for {w.target.name}: {by_target[w.target.name]} and "
                              f"{w.path}; one binary per target, give one of them")
        by_target[w.target.name] = w.path
    data = json.dumps(conandata(targets.values()), indent=1, sort_keys=True) + "\n"
    exported = []
    with tempfile.TemporaryDirectory(prefix="edgeforge-conan-") as tmp:
        for w in found:
            target = conan_target(w.target)
            folder = Path(tmp) / w.target.name
            folder.mkdir()
            shutil.copyfile(RECIPE_DIR / "conanfile.py", folder / "conanfile.py")
            (folder / "conandata.yml").write_text(data)  # JSON is YAML: no yaml writer needed
            unpack_stage(w.path, folder / "stage")
            profile = folder / "profile"
            profile.write_text(_settings_profile(target))
            proc = run_conan(["export-pkg", str(folder), "--version", w.version,
                              "-pr:h", str(profile), "-pr:b", str(profile),
                              "--output-folder", str(folder / "out"), "--format", "json"],
                             env=env)
            reference = _package_reference(proc.stdout)
            logger.info(f"{w.target.name}: {w.path.name} -> {reference}")
            exported.append(Exported(target=w.target.name, version=w.version, reference=reference,
                                     wheel=w.path))
    return exported


def _package_reference(graph_json: str) -> str:
    """``name/version#rrev:package_id`` of the root node of export-pkg's JSON graph."""
    graph = json.loads(graph_json)
    node = graph["graph"]["nodes"]["0"]
    return f"{node['ref']}:{node['package_id']}"


def upload(version: str, remote: str, env: Mapping[str, str] | None = None) -> None:
    """The recipe and every binary of ``tflite-edge-c/<version>`` to a Conan remote."""
    run_conan(["upload", f"{PACKAGE_NAME}/{version}", "-r", remote, "--confirm"], env=env)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    target: str
    path: Path


def _compiler_settings(compilers: Compilers) -> list[str]:
    """compiler, compiler.version and compiler.libcxx of the wrapper ``cc``."""
    out = subprocess.run([str(compilers.cc), "--version"], capture_output=True, text=True,
                         check=False, env={**os.environ, **compilers.env})
    clang = re.search(r"clang version (\d+)", out.stdout)
    if clang:  # zig cc (its libc++ statically linked)
        return ["compiler=clang", f"compiler.version={clang.group(1)}",
                "compiler.libcxx=libc++"]
    version = subprocess.run([str(compilers.cc), "-dumpfullversion"], capture_output=True,
                             text=True, check=False).stdout.strip()
    if not version:
        raise ConanError(f"{compilers.cc} says neither its clang nor its gcc version: "
                         f"{out.stdout.strip()[:200]}")
    return ["compiler=gcc", f"compiler.version={version.split('.')[0]}",
            "compiler.libcxx=libstdc++11"]


def profile_text(toolchain: Toolchain, compilers: Compilers) -> str:
    target = conan_target(toolchain)
    executables = json.dumps({"c": str(compilers.cc), "cpp": str(compilers.cxx)})
    lines = [
        f"# edgeforge: {toolchain.name}, {compilers.description}",
        f"# made from {toolchain.path.name} by `edgeforge conan profiles`",
        "[settings]",
        f"os={target.os}",
        f"arch={target.arch}",
        *_compiler_settings(compilers),
        "build_type=Release",
        "[options]",
        f"{PACKAGE_NAME}/*:libc={target.libc}",
        "[conf]",
        f"tools.build:compiler_executables={executables}",
        "[buildenv]",
        f"CC={compilers.cc}",
        f"CXX={compilers.cxx}",
        f"AR={compilers.ar}",
        f"RANLIB={compilers.ranlib}",
        f"STRIP={compilers.strip}",
        *(f"{k}={v}" for k, v in sorted(compilers.env.items()) if k.startswith("ZIG_")),
    ]
    return "\n".join(lines) + "\n"


def write_profiles(toolchains: Sequence[Toolchain], out: Path, cache_dir: Path,
                   logger: Logger) -> list[Profile]:
    """``out/<target>`` for each toolchain, its compiler wrappers in ``out/bin/<target>/``."""
    written = []
    for t in toolchains:
        compilers = write_compilers(t, out / "bin" / t.name, cache_dir)
        path = out / t.name
        atomic_write_text(path, profile_text(t, compilers))
        logger.info(f"{t.name}: {path} ({compilers.description})")
        written.append(Profile(target=t.name, path=path))
    return written
