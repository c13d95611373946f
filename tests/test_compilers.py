"""The generated compiler wrappers and CMake toolchain file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from edgeforge.builders.compilers import cmake_toolchain_file, write_compilers
from edgeforge.toolchain import resolve_target


def _rewritten(wrapper: Path, tmp_path: Path, *args: str) -> list[str]:
    """Run the wrapper's argument rewriting with `echo` in place of zig."""
    lines = wrapper.read_text().splitlines()
    probe = tmp_path / "probe.sh"
    probe.write_text("\n".join(
        'printf "%s\\n" "$@"' if line.startswith("exec ") else line for line in lines) + "\n")
    out = subprocess.run(["sh", str(probe), *args], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_zig_wrapper_rewrites_xnnpack_aarch64_march_flags(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-aarch64"), tmp_path / "bin",
                                tmp_path / "cache")
    rewrite = lambda *args: _rewritten(compilers.cxx, tmp_path, *args)  # noqa: E731
    assert rewrite("-O2", "-march=armv8.2-a+dotprod+fp16", "-c", "x.cc") == [
        "-O2", "-c", "x.cc", "-mcpu=generic+v8_2a+dotprod+fullfp16"]
    assert rewrite("-march=armv8-a", "-march=armv8.2-a+i8mm+fp16fml", "-c", "x.cc") == [
        "-c", "x.cc", "-mcpu=generic+v8_2a+i8mm+fp16fml"]  # the last -march wins
    assert rewrite("-O2", "-c", "x.cc") == ["-O2", "-c", "x.cc"]


def test_zig_wrapper_folds_xnnpack_arm32_fpu_into_the_cpu(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-armv7l"), tmp_path / "bin",
                                tmp_path / "cache")
    rewrite = lambda *args: _rewritten(compilers.cc, tmp_path, *args)  # noqa: E731
    assert rewrite("-marm", "-march=armv7-a", "-mfpu=neon-fp16", "-c", "x.c") == [
        "-marm", "-mfpu=neon-fp16", "-c", "x.c", "-mcpu=generic+v7a+neon+fp16"]
    assert rewrite("-mfpu=neon-fp-armv8", "-march=armv8.2-a+dotprod", "-c", "x.c") == [
        "-mfpu=neon-fp-armv8", "-c", "x.c", "-mcpu=generic+v8_2a+dotprod+neon+fp_armv8"]
    # no -march: the toolchain's own CPU (cortex_a7) gets the -mfpu's features
    assert rewrite("-mfpu=neon-vfpv4", "-c", "x.c") == [
        "-mfpu=neon-vfpv4", "-c", "x.c", "-mcpu=cortex_a7+neon+vfp4"]


def test_zig_wrapper_rewritten_flags_compile_xnnpack_style_kernels(tmp_path: Path) -> None:
    """The rewritten AArch32 flags really enable what the intrinsics need (zig and QEMU-free:
    a compile only): vcvt_f32_f16 needs the fp16 feature `-mfpu=neon-fp16` asks for."""
    compilers = write_compilers(resolve_target("linux-armv7l"), tmp_path / "bin",
                                Path.home() / ".cache" / "edgeforge")
    src = tmp_path / "cvt.c"
    src.write_text("#include <arm_neon.h>\n"
                   "float32x4_t cvt(float16x4_t h) { return vcvt_f32_f16(h); }\n")
    proc = subprocess.run([str(compilers.cc), "-marm", "-march=armv7-a", "-mfpu=neon-fp16",
                           "-Werror=implicit-function-declaration", "-c", str(src), "-o",
                           str(tmp_path / "cvt.o")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **compilers.env})
    assert proc.returncode == 0, proc.stderr


def test_zig_wrapper_rewrites_xnnpack_riscv_march_flags(tmp_path: Path) -> None:
    compilers = write_compilers(resolve_target("linux-riscv64"), tmp_path / "bin",
                                tmp_path / "cache")
    rewrite = lambda *args: _rewritten(compilers.cc, tmp_path, *args)  # noqa: E731
    assert rewrite("-march=rv64gcv", "-mabi=lp64d", "-c", "x.c") == [
        "-mabi=lp64d", "-c", "x.c", "-mcpu=baseline_rv64+v"]
    assert rewrite("-march=rv64gc_zvfh", "-c", "x.c") == ["-c", "x.c", "-mcpu=baseline_rv64+zvfh"]
    assert rewrite("-march=rv64imafdcv_zba_zbb", "-c", "x.c") == [
        "-c", "x.c", "-mcpu=baseline_rv64+v+zba+zbb"]


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


def test_a_users_darwin_toolchain_gets_the_formats_variables_under_its_own(
        tmp_path: Path) -> None:
    # A user's own macOS toolchain file need not repeat what CMake's Darwin platform asks of
    # sw_vers (formats.toml's [macho.cmake-variables]); a variable it sets itself wins.
    shipped = resolve_target("macos-arm64").path.read_text()
    own = tmp_path / "my-mac.toml"
    own.write_text(shipped.replace('name = "macos-arm64"', 'name = "my-mac"').replace(
        'system-processor = "arm64"',
        'system-processor = "arm64"\n\n[cmake.variables]\nCMAKE_INSTALL_NAME_DIR = "/opt/lib"'))
    toolchain = resolve_target(None, toolchain_file=own)
    compilers = write_compilers(toolchain, tmp_path / "bin", tmp_path / "cache")
    text = cmake_toolchain_file(toolchain, compilers, tmp_path / "t.cmake").read_text()
    assert 'set(CMAKE_INSTALL_NAME_DIR "/opt/lib")' in text.splitlines()
    assert 'set(CMAKE_INSTALL_NAME_DIR "@rpath")' not in text
    assert 'set(CMAKE_INSTALL_NAME_TOOL "/bin/false")' in text.splitlines()
    linux = cmake_toolchain_file(resolve_target("linux-aarch64"), compilers,
                                 tmp_path / "l.cmake").read_text()
    assert "CMAKE_INSTALL_NAME" not in linux
