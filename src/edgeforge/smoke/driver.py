"""The recipe's C smoke driver, compiled for the target and linked against a wheel's libraries.

For targets without a Python to run the recipe's smoke script: musl (run with Debian's musl
loader), Windows x86_64 (run under wine) and the targets nothing here runs (macOS, Windows
arm64: the link itself is the test). How a program finds and links a shared library is the
binary format's business (``binfmt``): ELF and Mach-O programs link the library file and
record an rpath; PE programs link an import library, made here from the DLL's own export
table (so the link also proves the DLL exports what the driver calls).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..builders.compilers import Compilers, zig_executable
from ..errors import SmokeError
from ..recipe import Recipe
from ..toolchain import Toolchain


@dataclass(frozen=True)
class Driver:
    program: Path  # the linked driver
    libraries: tuple[Path, ...]  # the wheel's shared libraries (unpacked)
    source: Path


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        raise SmokeError(f"{what} failed (exit {proc.returncode}):\n"
                         f"{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-4000:]}")


def import_library(dll: Path, toolchain: Toolchain, out_dir: Path) -> Path:
    """``<name>.lib`` for ``dll``, from the exports its PE export table lists."""
    from ..audit_native import read_binary

    fmt = toolchain.binary_format
    machine = fmt.arch(toolchain.arch).dlltool
    if machine is None:
        raise SmokeError(f"formats.toml gives no dlltool machine for {toolchain.arch}")
    exports = read_binary(dll.read_bytes(), dll.name, fmt).exports
    if not exports:
        raise SmokeError(f"{dll.name} exports nothing: no program can link against it")
    out_dir.mkdir(parents=True, exist_ok=True)
    definition = out_dir / f"{dll.stem}.def"
    definition.write_text(f"LIBRARY {dll.name}\nEXPORTS\n" +
                          "".join(f"  {name}\n" for name in exports))
    implib = out_dir / f"{fmt.library_name(dll.name)}.lib"  # a name zig -l<name> looks for
    proc = subprocess.run([str(zig_executable()), "dlltool", "-m", machine, "-d",
                           str(definition), "-D", dll.name, "-l", str(implib)],
                          capture_output=True, text=True, check=False)
    _check(proc, f"making the import library of {dll.name}")
    return implib


def build_driver(recipe: Recipe, toolchain: Toolchain, wheel: Path, work: Path,
                 compilers: Compilers) -> Driver:
    """Unpack ``wheel`` under ``work/smoke`` and link the recipe's C driver against its
    libraries (``<package>/lib``) with the target's compiler."""
    assert recipe.smoke.c_driver is not None
    fmt = toolchain.binary_format
    smoke = work / "smoke"
    unpacked = smoke / "unpacked"
    if unpacked.exists():
        shutil.rmtree(unpacked)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    package = unpacked / recipe.wheel.package
    libs = sorted((package / "lib").glob(fmt.library_glob))
    if not libs:
        raise SmokeError(f"{wheel.name} has no {recipe.wheel.package}/lib/{fmt.library_glob} "
                         "to test")
    link_dir = package / "lib"
    if fmt.import_libraries:
        link_dir = smoke / "import-libs"
        if link_dir.exists():
            shutil.rmtree(link_dir)
        for lib in libs:
            import_library(lib, toolchain, link_dir)
    source = recipe.directory / recipe.smoke.c_driver
    program = smoke / f"driver{fmt.executable_suffix}"
    # zig links ELF programs statically unless told otherwise (musl)
    dynamic = ["-dynamic"] if toolchain.backend == "zig" and fmt.key == "elf" else []
    rpath = [f"-Wl,-rpath,{package / 'lib'}"] if fmt.rpath else []
    argv = [str(compilers.cc), *dynamic, "-O1", str(source), "-o", str(program),
            "-I", str(package / "include"), "-L", str(link_dir),
            *(f"-l{fmt.library_name(lib.name)}" for lib in libs), *rpath, "-lm"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, **compilers.env})
    _check(proc, f"compiling and linking the smoke driver {source.name} for {toolchain.name}")
    return Driver(program=program, libraries=tuple(libs), source=source)
