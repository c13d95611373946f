"""The generated compiler wrappers and CMake toolchain file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgeforge.build.compilers import cmake_toolchain_file, write_compilers
from edgeforge.toolchain import resolve_target


def _rewritten(wrapper: Path, tmp_path: Path, *args: str) -> list[str]:
    """Run the wrapper's argument rewriting with `echo` in place of zig."""
    lines = wrapper.read_text().splitlines()
    probe = tmp_path / "probe.sh"
    probe.write_text("\n".join(
        'printf "%s\\n" "$@"' if line.startswith("exec ") else line for line in lines) + "\n")
    out = subprocess.run(["sh", str(probe), *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("target", ["linux-aarch64", "linux-armv7l"])
def test_zig_wrapper_rewrites_xnnpack_march_flags(tmp_path: Path, target: str) -> None:
    compilers = write_compilers(resolve_target(target), tmp_path / "bin", tmp_path / "cache")
    got = _rewritten(compilers.cxx, tmp_path, "-O2", "-march=armv8.2-a+dotprod+fp16",
                     "-march=armv8-a", "-march=armv8.2-a+i8mm+fp16fml", "-c", "x.cc")
    assert got == ["-O2", "-mcpu=generic+v8_2a+dotprod+fullfp16", "-mcpu=generic+v8a",
                   "-mcpu=generic+v8_2a+i8mm+fp16fml", "-c", "x.cc"]


def test_zig_wrapper_rewrites_xnnpack_riscv_march_flags(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-riscv64"), tmp_path / "bin",
                                tmp_path / "cache")
    got = _rewritten(compilers.cc, tmp_path, "-march=rv64gcv", "-mabi=lp64d",
                     "-march=rv64gc_zvfh", "-march=rv64imafdcv_zba_zbb", "-c", "x.c")
    assert got == ["-mcpu=baseline_rv64+v", "-mabi=lp64d", "-mcpu=baseline_rv64+zvfh",
                   "-mcpu=baseline_rv64+v+zba+zbb", "-c", "x.c"]


def test_zig_wrapper_bakes_in_target_and_version(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-aarch64"), tmp_path / "bin",
                                tmp_path / "cache")
    text = compilers.cc.read_text()
    assert "-target aarch64-linux-gnu.2.17" in text
    assert "# edgeforge wrapper: zig 0." in text  # the cache sees a new zig as a new compiler
    assert compilers.env["CCACHE_COMPILERCHECK"] == "content" or "SCCACHE_DIR" in compilers.env


def test_zig_wrapper_really_cross_compiles(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-aarch64"), tmp_path / "bin",
                                Path.home() / ".cache" / "edgeforge")
    src = tmp_path / "a.c"
    src.write_text("int f(int x) { return x + 1; }\n")
    obj = tmp_path / "a.o"
    subprocess.run([str(compilers.cc), "-march=armv8.2-a+dotprod", "-c", str(src), "-o",
                    str(obj)], check=True, env={"PATH": "/usr/bin:/bin", **compilers.env})
    assert obj.read_bytes()[18] == 183  # e_machine EM_AARCH64


def test_toolchain_file_names_every_tool(tmp_path: Path) -> None:
    toolchain = resolve_target("linux-riscv64")
    compilers = write_compilers(toolchain, tmp_path / "bin", tmp_path / "cache")
    text = cmake_toolchain_file(toolchain, compilers, tmp_path / "t.cmake").read_text()
    for key in ("CMAKE_SYSTEM_PROCESSOR riscv64", "CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER",
                "CMAKE_ASM_COMPILER", "CMAKE_AR", "CMAKE_RANLIB", "CMAKE_STRIP",
                "CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY"):
        assert key in text
