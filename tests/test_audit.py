"""The audit, on real binaries built with zig for each target (and a few deliberately bad ones)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from edgeforge.archs import arch_info
from edgeforge.audit import analyze_wheel, audit_wheel, read_elf_files
from edgeforge.errors import AuditError
from edgeforge.toolchain import Toolchain, resolve_target
from edgeforge.wheel import WheelSpec, write_wheel

pytestmark = pytest.mark.slow  # zig builds for foreign targets (seconds each once cached)

# Threads and libm: on aarch64, building against glibc 2.34 binds pthread_create/pthread_join
# to GLIBC_2.34 (libpthread merged into libc) and exp to GLIBC_2.29 (new exp in 2.29).
DEMO_C = r"""
#include <math.h>
#include <pthread.h>
static void* run(void* arg) { double* x = arg; *x = exp(*x); return 0; }
__attribute__((visibility("default"))) double demo_exp_in_thread(double x) {
  pthread_t t;
  if (pthread_create(&t, 0, run, &x) != 0) return -1.0;
  pthread_join(t, 0);
  return x;
}
"""
HELPER_C = r'__attribute__((visibility("default"))) int helper_value(void) { return 42; }'
USER_C = r"""
int helper_value(void);
__attribute__((visibility("default"))) int user_value(void) { return helper_value() + 1; }
"""
# A stand-in libstdc++.so.6 defining a symbol at GLIBCXX_3.4.30 (GCC 13): what a shared
# libstdc++ from a new distribution gives a library built against it.
STUB_CXX_C = r'__attribute__((visibility("default"))) void glibcxx_new_thing(void) {}'
STUB_CXX_MAP = "GLIBCXX_3.4.30 { global: glibcxx_new_thing; local: *; };\n"
USES_CXX_C = r"""
void glibcxx_new_thing(void);
__attribute__((visibility("default"))) void uses_new_thing(void) { glibcxx_new_thing(); }
"""

Build = Callable[..., Path]


def zig_flags(toolchain: Toolchain) -> list[str]:
    assert toolchain.zig is not None
    return [*toolchain.flags, *toolchain.zig.flags]


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """Build a shared library with ``python -m ziglang cc`` (cached per arguments)."""
    root = tmp_path_factory.mktemp("zig")
    cache: dict[tuple[object, ...], Path] = {}

    def _build(name: str, source: str, zig_target: str, flags: Sequence[str] = (),
               extra: Sequence[str] = ()) -> Path:
        key = (name, source, zig_target, tuple(flags), tuple(extra))
        if key in cache:
            return cache[key]
        out_dir = root / f"b{len(cache)}"
        out_dir.mkdir(exist_ok=True)
        src = out_dir / f"{name}.c"
        src.write_text(source)
        out = out_dir / name
        cmd = [sys.executable, "-m", "ziglang", "cc", "-target", zig_target, *flags,
               "-shared", "-fPIC", "-O2", str(src), "-o", str(out), *extra]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                cwd=out_dir)
        assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stderr}"
        cache[key] = out
        return out

    return _build


def wheel_for(tmp_path: Path, toolchain: Toolchain, files: dict[str, Path],
              tags: tuple[str, ...] | None = None) -> Path:
    spec = WheelSpec("audit-demo", "1.0", tags or toolchain.wheel_tags)
    return write_wheel(spec, files, tmp_path / "dist")


def demo_wheel(tmp_path: Path, build: Build, target: str, zig_target: str | None = None,
               tags: tuple[str, ...] | None = None) -> tuple[Path, Toolchain]:
    toolchain = resolve_target(target)
    assert toolchain.zig is not None
    lib = build("libdemo.so", DEMO_C, zig_target or toolchain.zig.target, zig_flags(toolchain))
    return wheel_for(tmp_path, toolchain, {"audit_demo/lib/libdemo.so": lib}, tags), toolchain


def auditwheel_show(wheel: Path) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-m", "auditwheel", "show", "--json", str(wheel)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def test_aarch64_glibc_2_17_build_meets_manylinux_2_17(tmp_path, build):
    wheel, toolchain = demo_wheel(tmp_path, build, "linux-aarch64")
    report = audit_wheel(wheel, toolchain)
    assert report.ok
    assert report.best_policy == "manylinux_2_17_aarch64"
    assert report.glibc_floor == "2.17"
    assert not report.musl
    assert report.external_libs == ()
    assert report.offending_symbols == ()
    assert report.elf_files == ("audit_demo/lib/libdemo.so",)
    assert "meets manylinux_2_17_aarch64" in report.summary()


def test_aarch64_glibc_2_34_build_fails_naming_symbols_and_real_policy(tmp_path, build):
    wheel, toolchain = demo_wheel(tmp_path, build, "linux-aarch64",
                                  zig_target="aarch64-linux-gnu.2.34")
    # The wheel's name claims manylinux_2_17; the audit never believes it.
    assert "manylinux_2_17_aarch64" in wheel.name
    with pytest.raises(AuditError) as err:
        audit_wheel(wheel, toolchain)
    message = str(err.value)
    assert "pthread_create@GLIBC_2.34" in message
    assert "exp@GLIBC_2.29" in message
    assert "manylinux_2_34_aarch64" in message
    assert "manylinux_2_17_aarch64" in message
    assert err.value.exit_code == 6
    report = analyze_wheel(wheel, toolchain)
    assert not report.ok
    assert report.best_policy == "manylinux_2_34_aarch64"
    assert report.glibc_floor == "2.34"
    assert "pthread_create@GLIBC_2.34" in report.offending_symbols
    assert "does NOT meet" in report.summary()


@pytest.mark.parametrize(
    ("target", "best"),
    [
        ("linux-x86_64", None),  # x86_64 policies reach back to manylinux_2_5: at least 2_17
        ("linux-aarch64", "manylinux_2_17_aarch64"),
        ("linux-armv7l", "manylinux_2_17_armv7l"),
        ("linux-riscv64", "manylinux_2_31_riscv64"),
        ("musllinux-aarch64", "musllinux_1_2_aarch64"),
        ("musllinux-x86_64", "musllinux_1_2_x86_64"),
        ("linux-armv6l", "linux_armv6l"),
    ],
)
def test_every_target_toolchain_builds_what_it_promises(tmp_path, build, target, best):
    wheel, toolchain = demo_wheel(tmp_path, build, target)
    report = audit_wheel(wheel, toolchain)
    assert report.ok, report.summary()
    assert report.musl == (toolchain.libc == "musl")
    if best is None:
        assert report.best_policy.startswith("manylinux_2_")
        minor = int(report.best_policy.split("_")[2])
        assert minor <= 17
    else:
        assert report.best_policy == best
    if toolchain.libc == "musl":
        assert report.glibc_floor is None
    else:
        floor = tuple(int(p) for p in report.glibc_floor.split("."))
        assert floor <= tuple(int(p) for p in toolchain.libc_version.split("."))


@pytest.mark.parametrize(
    ("target", "zig_target"),
    [
        ("linux-aarch64", None),
        ("linux-aarch64", "aarch64-linux-gnu.2.34"),
        ("linux-x86_64", None),
        ("linux-x86_64", "x86_64-linux-gnu.2.34"),
        ("linux-armv7l", None),
        ("linux-riscv64", None),
    ],
)
def test_agrees_with_auditwheel_show(tmp_path, build, target, zig_target):
    wheel, toolchain = demo_wheel(tmp_path, build, target, zig_target=zig_target)
    report = analyze_wheel(wheel, toolchain)
    shown = auditwheel_show(wheel)
    assert shown["overall_tag"] == report.best_policy
    shown_versions = {lib: sorted(v) for lib, v in shown["versioned_symbols"].items()}
    assert shown_versions == {lib: sorted(v) for lib, v in report.versioned_symbols.items()}


def test_x86_64_built_against_2_34_fails(tmp_path, build):
    wheel, toolchain = demo_wheel(tmp_path, build, "linux-x86_64",
                                  zig_target="x86_64-linux-gnu.2.34")
    with pytest.raises(AuditError, match=r"pthread_create@GLIBC_2\.34"):
        audit_wheel(wheel, toolchain)


def test_armv6l_is_checked_without_a_policy(tmp_path, build):
    toolchain = resolve_target("linux-armv6l")
    assert toolchain.audit_policy is None
    # Against glibc 2.34 on 32-bit ARM: pthread_create moves to libc at GLIBC_2.34 too.
    lib = build("libdemo.so", DEMO_C, "arm-linux-gnueabihf.2.34", zig_flags(toolchain))
    wheel = wheel_for(tmp_path, toolchain, {"audit_demo/lib/libdemo.so": lib})
    with pytest.raises(AuditError, match=r"pthread_create@GLIBC_2\.34") as err:
        audit_wheel(wheel, toolchain)
    assert "glibc 2.17" in str(err.value)
    assert "need glibc 2.34" in str(err.value)


def test_armv7_code_in_an_armv6l_wheel_fails(tmp_path, build):
    armv7l = resolve_target("linux-armv7l")
    lib = build("libdemo.so", DEMO_C, armv7l.zig.target, zig_flags(armv7l))
    armv6l = resolve_target("linux-armv6l")
    wheel = wheel_for(tmp_path, armv6l, {"audit_demo/lib/libdemo.so": lib})
    with pytest.raises(AuditError, match="built for ARM v7, newer than armv6l"):
        audit_wheel(wheel, armv6l)


def test_binary_of_another_architecture_fails(tmp_path, build):
    aarch64 = resolve_target("linux-aarch64")
    lib = build("libdemo.so", DEMO_C, aarch64.zig.target, zig_flags(aarch64))
    x86_64 = resolve_target("linux-x86_64")
    wheel = wheel_for(tmp_path, x86_64, {"audit_demo/lib/libdemo.so": lib})
    with pytest.raises(AuditError, match="EM_AARCH64 ELF64 LE, not x86_64"):
        audit_wheel(wheel, x86_64)


def test_musl_binary_in_a_glibc_wheel_and_the_reverse_fail(tmp_path, build):
    musl = resolve_target("musllinux-aarch64")
    glibc = resolve_target("linux-aarch64")
    musl_lib = build("libdemo.so", DEMO_C, musl.zig.target, zig_flags(musl))
    glibc_lib = build("libdemo.so", DEMO_C, glibc.zig.target, zig_flags(glibc))
    wheel = wheel_for(tmp_path / "a", glibc, {"audit_demo/libdemo.so": musl_lib})
    with pytest.raises(AuditError, match="built against musl"):
        audit_wheel(wheel, glibc)
    wheel = wheel_for(tmp_path / "b", musl, {"audit_demo/libdemo.so": glibc_lib})
    with pytest.raises(AuditError, match="built against glibc"):
        audit_wheel(wheel, musl)


def test_musl_library_needs_zigs_libc_so_and_still_meets_musllinux(tmp_path, build):
    wheel, toolchain = demo_wheel(tmp_path, build, "musllinux-aarch64")
    (elf,) = read_elf_files(wheel)
    assert "libc.so" in elf.needed  # not Alpine's libc.musl-aarch64.so.1
    report = audit_wheel(wheel, toolchain)
    assert report.best_policy == "musllinux_1_2_aarch64"
    assert report.external_libs == ()


def test_musl_library_renamed_to_alpines_libc_soname_satisfies_auditwheel_show(tmp_path,
                                                                              build):
    # zig's "libc.so" makes `auditwheel show` fail on a glibc host (it opens glibc's libc.so
    # linker script); Alpine's soname, which musl's loader also answers to, satisfies it.
    if not shutil.which("patchelf"):
        pytest.skip("patchelf is needed")
    toolchain = resolve_target("musllinux-aarch64")
    lib = build("libdemo.so", DEMO_C, toolchain.zig.target, zig_flags(toolchain))
    patched = tmp_path / "libdemo.so"
    shutil.copy(lib, patched)
    subprocess.run(["patchelf", "--replace-needed", "libc.so", arch_info("aarch64").musl_libc,
                    str(patched)], check=True)
    wheel = wheel_for(tmp_path, toolchain, {"audit_demo/libdemo.so": patched})
    report = audit_wheel(wheel, toolchain)
    assert report.best_policy == "musllinux_1_2_aarch64"
    assert auditwheel_show(wheel)["overall_tag"] == "musllinux_1_2_aarch64"


def test_library_missing_from_the_wheel_is_external(tmp_path, build):
    toolchain = resolve_target("linux-aarch64")
    flags = zig_flags(toolchain)
    helper = build("libhelper.so", HELPER_C, toolchain.zig.target, flags,
                   extra=["-Wl,-soname,libhelper.so"])
    user = build("libuser.so", USER_C, toolchain.zig.target, flags,
                 extra=[str(helper), "-Wl,-rpath,$ORIGIN"])
    alone = wheel_for(tmp_path / "alone", toolchain, {"audit_demo/libuser.so": user})
    with pytest.raises(AuditError, match=r"libhelper\.so") as err:
        audit_wheel(alone, toolchain)
    assert "whitelist" in str(err.value)
    assert analyze_wheel(alone, toolchain).external_libs == ("libhelper.so",)
    # Shipped next to it (found through RPATH $ORIGIN), it is part of the wheel, not external.
    both = wheel_for(tmp_path / "both", toolchain,
                     {"audit_demo/libuser.so": user, "audit_demo/libhelper.so": helper})
    report = audit_wheel(both, toolchain)
    assert report.best_policy == "manylinux_2_17_aarch64"


def test_libstdcxx_symbol_beyond_the_policy_fails(tmp_path, build):
    toolchain = resolve_target("linux-aarch64")
    flags = zig_flags(toolchain)
    map_file = tmp_path / "stub.map"
    map_file.write_text(STUB_CXX_MAP)
    stub = build("libstdc++.so.6", STUB_CXX_C, toolchain.zig.target, flags,
                 extra=[f"-Wl,--version-script={map_file}", "-Wl,-soname,libstdc++.so.6"])
    user = build("libusescxx.so", USES_CXX_C, toolchain.zig.target, flags, extra=[str(stub)])
    wheel = wheel_for(tmp_path, toolchain, {"audit_demo/libusescxx.so": user})
    with pytest.raises(AuditError, match=r"glibcxx_new_thing@GLIBCXX_3\.4\.30"):
        audit_wheel(wheel, toolchain)
    assert auditwheel_show(wheel)["overall_tag"] == analyze_wheel(wheel, toolchain).best_policy


def test_a_wheel_rewritten_at_the_same_path_is_analysed_afresh(tmp_path, build):
    toolchain = resolve_target("linux-aarch64")
    old = build("libdemo.so", DEMO_C, "aarch64-linux-gnu.2.17", zig_flags(toolchain))
    new = build("libdemo.so", DEMO_C, "aarch64-linux-gnu.2.34", zig_flags(toolchain))
    first = wheel_for(tmp_path, toolchain, {"audit_demo/libdemo.so": old})
    assert audit_wheel(first, toolchain).ok
    second = wheel_for(tmp_path, toolchain, {"audit_demo/libdemo.so": new})
    assert second == first  # same path: auditwheel's lru_cache would answer from the old one
    with pytest.raises(AuditError, match=r"GLIBC_2\.34"):
        audit_wheel(second, toolchain)


def test_a_wheel_without_binaries_has_nothing_to_audit(tmp_path):
    toolchain = resolve_target("linux-aarch64")
    py = tmp_path / "mod.py"
    py.write_text("x = 1\n")
    wheel = wheel_for(tmp_path, toolchain, {"audit_demo/mod.py": py})
    with pytest.raises(AuditError, match="no ELF file"):
        audit_wheel(wheel, toolchain)


def _zig_cmake_toolchain(directory: Path, toolchain: Toolchain) -> Path:
    """A minimal CMake toolchain file with zig wrappers (the target baked into each one)."""
    assert toolchain.zig is not None
    directory.mkdir(parents=True, exist_ok=True)
    flags = " ".join(zig_flags(toolchain))
    tools = {}
    for tool, command in (("cc", "cc"), ("cxx", "c++"), ("ar", "ar"), ("ranlib", "ranlib")):
        target = f"-target {toolchain.zig.target} {flags} " if tool in ("cc", "cxx") else ""
        script = directory / f"zig-{tool}"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ziglang {command} '
                          f'{target}"$@"\n')
        script.chmod(0o755)
        tools[tool] = script
    path = directory / "toolchain.cmake"
    path.write_text(
        "set(CMAKE_SYSTEM_NAME Linux)\n"
        f"set(CMAKE_SYSTEM_PROCESSOR {toolchain.cmake_system_processor})\n"
        f"set(CMAKE_C_COMPILER {tools['cc']})\n"
        f"set(CMAKE_CXX_COMPILER {tools['cxx']})\n"
        f"set(CMAKE_AR {tools['ar']})\n"
        f"set(CMAKE_RANLIB {tools['ranlib']})\n"
    )
    return path


def test_edgemath_fixture_cross_built_with_zig_meets_its_policy(tmp_path):
    if not shutil.which("cmake"):
        pytest.skip("cmake is needed")
    toolchain = resolve_target("linux-aarch64")
    fixture = Path(__file__).resolve().parent / "fixtures" / "edgemath"
    build_dir = tmp_path / "build"
    cmake_toolchain = _zig_cmake_toolchain(tmp_path / "tc", toolchain)
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    for cmd in (["cmake", "-S", str(fixture), "-B", str(build_dir), *generator,
                 "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_TOOLCHAIN_FILE={cmake_toolchain}"],
                ["cmake", "--build", str(build_dir)]):
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    lib = build_dir / "libedgemath.so"
    files = {"edgemath/__init__.py": fixture / "python" / "edgemath" / "__init__.py",
             "edgemath/lib/libedgemath.so": lib}
    wheel = write_wheel(WheelSpec("edgemath-lib", "1.0", toolchain.wheel_tags), files,
                        tmp_path / "dist")
    report = audit_wheel(wheel, toolchain)
    assert report.best_policy == "manylinux_2_17_aarch64"
    assert auditwheel_show(wheel)["overall_tag"] == "manylinux_2_17_aarch64"
    # libc++ is linked statically: nothing but glibc's own libraries is needed.
    (elf,) = read_elf_files(wheel)
    assert set(elf.needed) <= {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                               "ld-linux-aarch64.so.1"}
    assert not any(i.symbol.startswith("__cxa_thread_atexit") for i in elf.imports)


@pytest.mark.parametrize("target", ["linux-aarch64", "linux-armv6l"])
def test_declared_system_library_is_accepted(tmp_path, build, target):
    """libedgetpu links the system's libusb: a recipe declares it, and only then it passes."""
    toolchain = resolve_target(target)
    flags = zig_flags(toolchain)
    usb = build(f"libusb-{target}.so", HELPER_C, toolchain.zig.target, flags,
                extra=["-Wl,-soname,libusb-1.0.so.0"])
    user = build(f"libuser-usb-{target}.so", USER_C, toolchain.zig.target, flags,
                 extra=[str(usb)])
    wheel = wheel_for(tmp_path, toolchain, {"audit_demo/libuser.so": user})
    with pytest.raises(AuditError, match=r"libusb-1\.0\.so\.0"):
        audit_wheel(wheel, toolchain)
    report = audit_wheel(wheel, toolchain, system_libraries=["libusb-1.0.so.0"])
    assert report.ok
    with pytest.raises(AuditError, match=r"libusb-1\.0\.so\.0"):
        audit_wheel(wheel, toolchain, system_libraries=["libother.so.1"])
