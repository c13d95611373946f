"""Windows and macOS targets: PE and Mach-O through the same pipeline as ELF.

The fixture library is cross-built with zig for windows-x86_64 (smoke: the C driver under
Debian's wine64, outputs compared with the host's) and macos-arm64 (smoke: the driver's link
only; nothing here runs macOS code), and the audits of both formats are shown to refuse real
binaries that break each rule: a DLL exporting more than its C API, one importing a DLL
that is neither Windows' nor in the wheel, a dylib linked for a newer macOS than its tag, for
another CPU, against a non-system library, or named by a build-directory path. pip, told
the platform, picks these wheels from a directory of them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import lief
import pytest
from edgeforge_testing import run_edgeforge

from edgeforge.audit import audit_wheel
from edgeforge.audit_native import analyze_wheel, read_wheel_binaries
from edgeforge.builders.cmake import recipe_defines
from edgeforge.builders.compilers import zig_executable
from edgeforge.errors import AuditError, ConfigError
from edgeforge.pipeline import Expander
from edgeforge.recipe import load_recipe, resolve_recipe
from edgeforge.release_manifest import build_record
from edgeforge.toolchain import load_toolchain, resolve_target
from edgeforge.wheel import WheelSpec, write_wheel

NEW_TARGETS = {
    "windows-x86_64": ("win_amd64", "pe", "libedgemath.dll"),
    "windows-arm64": ("win_arm64", "pe", "libedgemath.dll"),
    "macos-arm64": ("macosx_11_0_arm64", "macho", "libedgemath.dylib"),
    "macos-x86_64": ("macosx_10_15_x86_64", "macho", "libedgemath.dylib"),
}
BUILT = ("windows-x86_64", "macos-arm64")  # what CI builds; the other two are data, checked

API_C = r"""
#ifdef _WIN32
#define API __declspec(dllexport)
#else
#define API __attribute__((visibility("default")))
#endif
API int demo_answer(void) { return 42; }
"""
NO_EXPORT_MARK_C = "int demo_answer(void) { return 42; }\n"  # mingw then exports everything
USER_C = r"""
__declspec(dllimport) int helper_value(void);
__declspec(dllexport) int demo_answer(void) { return helper_value() + 1; }
"""
HELPER_C = "__declspec(dllexport) int helper_value(void) { return 41; }\n"
MACHO_USER_C = r"""
int helper_value(void);
__attribute__((visibility("default"))) int demo_answer(void) { return helper_value() + 1; }
"""
MACHO_HELPER_C = '__attribute__((visibility("default"))) int helper_value(void) { return 41; }\n'


# --- the toolchains are data ---------------------------------------------------------------


@pytest.mark.parametrize("target", NEW_TARGETS)
def test_new_targets_are_data_the_pipeline_understands(target: str) -> None:
    tag, fmt, library = NEW_TARGETS[target]
    t = resolve_target(target)
    assert t.platform_tag == tag
    assert t.binary_format.key == fmt
    assert t.binary_format.shared_library("edgemath") == library
    assert not t.is_host and t.audit_policy is None
    assert t.smoke.runner == ("wine" if target == "windows-x86_64" else "link-only")


def test_edgeforge_targets_says_how_each_is_smoke_tested() -> None:
    proc = subprocess.run([sys.executable, "-m", "edgeforge", "targets"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert rows["windows-x86_64"][1:] == ["win_amd64", "zig:", "x86_64-windows-gnu", "ucrt",
                                          "10", "wine64", "-"]
    assert rows["macos-arm64"][-3:] == ["(link", "only)", "-"]


def test_a_tag_naming_the_arch_as_linux_does_is_refused(tmp_path: Path) -> None:
    text = (resolve_target("windows-x86_64").path.read_text()
            .replace('"win_amd64"', '"win_x86_64"'))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"wheel-tags.*'win_x86_64'.*'amd64'"):
        load_toolchain(path)


def test_an_unknown_cmake_system_is_one_clear_error(tmp_path: Path) -> None:
    text = resolve_target("windows-x86_64").path.read_text().replace('"Windows"', '"Haiku"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"cmake.system-name.*no binary format.*Haiku"):
        load_toolchain(path)


RUNTIME_SOURCES = [Path(__file__).resolve().parents[1] / "wheels" / d / "src"
                   for d in ("tflite-edge", "tflite-edge-lib")]
PLATFORMS = {"windows-x86_64": "win32", "windows-arm64": "win32", "macos-arm64": "darwin",
             "macos-x86_64": "darwin", "linux-x86_64": "linux"}


@pytest.mark.parametrize("target", PLATFORMS)
def test_runtime_looks_for_the_file_names_the_recipe_stages(target: str) -> None:
    """What tflite-edge-lib and tflite-edge's shim look for on the platform a target's wheel
    installs on (sys.platform as Python there says it) is what the tflite recipe stages."""
    recipe = resolve_recipe("tflite")
    expand = Expander(recipe, resolve_target(target), {}, Path("/build"))
    library, shim = (Path(expand(s.src)).name for s in recipe.stage
                     if s.src.startswith("{build}"))
    probe = (f"import sys; sys.platform = {PLATFORMS[target]!r}\n"
             "import tflite_edge_lib, tflite_edge._shim as shim\n"
             "print(shim.SHIM_NAME, *tflite_edge_lib.LIBRARY_NAMES)")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              str(p) for p in RUNTIME_SOURCES)})
    assert proc.returncode == 0, proc.stderr
    shim_name, *library_names = proc.stdout.split()
    assert (shim_name, library in library_names) == (shim, True), (proc.stdout, library, shim)


# --- per-format link flags are recipe data --------------------------------------------------


@pytest.mark.parametrize(("target", "linker", "cxx"), [
    ("linux-x86_64", "-Wl,--gc-sections -Wl,--no-undefined",
     "-ffunction-sections -fdata-sections"),
    # the format's flags and the arch's (Thumb-2) both apply
    ("linux-armv7l", "-Wl,--gc-sections -Wl,--no-undefined",
     "-mthumb -ffunction-sections -fdata-sections"),
    ("musllinux-aarch64", "-Wl,--gc-sections -Wl,--no-undefined",
     "-DFLATBUFFERS_LOCALE_INDEPENDENT=0 -ffunction-sections -fdata-sections"),
    ("windows-x86_64", "-Wl,--gc-sections",
     "-DTFL_COMPILE_LIBRARY -ffunction-sections -fdata-sections"),
    ("windows-arm64", "-Wl,--gc-sections",
     "-DTFL_COMPILE_LIBRARY -ffunction-sections -fdata-sections"),
    ("macos-arm64", "-Wl,-S -Wl,-dead_strip",
     "-fvisibility=hidden -fvisibility-inlines-hidden -ffunction-sections -fdata-sections"),
    ("macos-x86_64", "-Wl,-S -Wl,-dead_strip",
     "-fvisibility=hidden -fvisibility-inlines-hidden -ffunction-sections -fdata-sections"),
])
def test_tflite_link_flags_are_each_formats(target: str, linker: str, cxx: str) -> None:
    """recipes/tflite.toml's format-defines: ELF's --gc-sections/--no-undefined reach no
    Mach-O or PE link, ld64's -dead_strip only Mach-O's; arch-defines add to them."""
    recipe = resolve_recipe("tflite")
    toolchain = resolve_target(target)
    assert recipe.cmake is not None
    defines = recipe_defines(recipe.cmake, toolchain, Expander(recipe, toolchain, {},
                                                               Path("/build")))
    assert defines["CMAKE_SHARED_LINKER_FLAGS"] == linker
    assert defines["CMAKE_CXX_FLAGS"] == cxx


def test_recipe_link_flags_keep_the_toolchains() -> None:
    """A CMAKE_SHARED_LINKER_FLAGS define makes CMake ignore the toolchain file's *_INIT
    (the fixture's dylib lost -Wl,-S that way): the toolchain's flags come first."""
    recipe = resolve_recipe("tflite")
    assert recipe.cmake is not None
    toolchain = resolve_target("linux-aarch64").with_backend("gcc")
    defines = recipe_defines(recipe.cmake, toolchain, Expander(recipe, toolchain, {},
                                                               Path("/build")))
    assert defines["CMAKE_SHARED_LINKER_FLAGS"] == \
        "-static-libstdc++ -Wl,--gc-sections -Wl,--no-undefined"


def test_format_defines_for_an_unknown_format_is_one_clear_error(fixture_recipe: Path,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "edgemath.toml"
    path.write_text(fixture_recipe.read_text().replace("format-defines.macho]",
                                                       "format-defines.mach-o]"))
    with pytest.raises(ConfigError, match=r"format-defines.*unknown binary format 'mach-o'"
                                          r".*elf, pe, macho"):
        load_recipe(path)


# --- the fixture through the whole pipeline --------------------------------------------------


@pytest.fixture(scope="module")
def built(fixture_recipe: Path, edgeforge_cache: Path,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if shutil.which("wine64") is None and not Path("/usr/lib/wine/wine64").is_file():
        pytest.fail("wine64 is missing: ci/setup.sh installs it (apt-get install wine64)")
    dist = tmp_path_factory.mktemp("dist")
    # A work directory of its own: an older build directory keeps the linker flags CMake
    # cached at its first configure (formats.toml's link-flags come through *_INIT)
    work = tmp_path_factory.mktemp("work")
    args = ["build", str(fixture_recipe), "--dist", str(dist), "--work-dir", str(work)]
    for target in BUILT:
        args += ["--target", target]
    proc = run_edgeforge(*args, cache=edgeforge_cache)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return dist, output


def _wheel(dist: Path, target: str) -> Path:
    return dist / f"edgemath_lib-1.0-py3-none-{NEW_TARGETS[target][0]}.whl"


@pytest.mark.slow
@pytest.mark.parametrize("target", BUILT)
def test_fixture_wheel_carries_the_platforms_library(built: tuple[Path, str],
                                                     target: str) -> None:
    dist, output = built
    wheel = _wheel(dist, target)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read("edgemath_lib-1.0.dist-info/WHEEL").decode()
    assert f"edgemath/lib/{NEW_TARGETS[target][2]}" in names
    assert not [n for n in names if n.endswith((".so", ".pdb", ".lib", ".a"))], names
    assert f"Tag: py3-none-{NEW_TARGETS[target][0]}" in meta
    assert f"{target}: {wheel} (audit: {NEW_TARGETS[target][0]}; smoke: passed)" in output


@pytest.mark.slow
def test_windows_dll_runs_under_wine_and_matches_the_host(built: tuple[Path, str]) -> None:
    """Threads, exceptions thrown in a worker and rethrown, float math: the DLL's results
    under wine are the host library's (the pipeline compared every key but machine/runner)."""
    _, output = built
    assert "smoke windows-x86_64: C driver smoke_driver.c under Debian's wine-" in output
    assert '"machine": "windows"' in output
    assert '"error_worker": {"code": 2, "message": "dot: non-finite input at index 7"}' \
        in output
    section = output.split("smoke windows-x86_64:", 1)[1].split("<== smoke test", 1)[0]
    assert "outputs match the host's" in section, section


@pytest.mark.slow
def test_windows_dll_imports_only_windows_and_exports_only_the_api(
        built: tuple[Path, str]) -> None:
    dist, _ = built
    toolchain = resolve_target("windows-x86_64")
    (dll,) = read_wheel_binaries(_wheel(dist, "windows-x86_64"), toolchain.binary_format)
    assert dll.machine == "AMD64" and dll.is_library
    assert "KERNEL32.dll" in dll.needed
    # the fixture recipe's format-defines.pe reached the DLL's link (lld's default 0x180000000)
    with zipfile.ZipFile(_wheel(dist, "windows-x86_64")) as zf:
        pe = lief.PE.parse(list(zf.read("edgemath/lib/libedgemath.dll")))
    assert pe.optional_header.imagebase == 0x6f0000000
    assert all(toolchain.binary_format.allows_system_library(n) for n in dll.needed)
    assert dll.exports == ("edgemath_dot", "edgemath_last_error", "edgemath_logsumexp",
                           "edgemath_matmul", "edgemath_softmax", "edgemath_threads",
                           "edgemath_version", "edgemath_wave")
    report = audit_wheel(_wheel(dist, "windows-x86_64"), toolchain, exports=("edgemath_*",))
    assert build_record("edgemath", "windows-x86_64", report, None)["audit"] == {
        "policy": "win_amd64", "libc": "ucrt", "libc_floor": "10", "glibc_symbols": None}


@pytest.mark.slow
def test_macos_dylib_minos_libsystem_and_exports(built: tuple[Path, str]) -> None:
    dist, output = built
    toolchain = resolve_target("macos-arm64")
    wheel = _wheel(dist, "macos-arm64")
    (dylib,) = read_wheel_binaries(wheel, toolchain.binary_format)
    assert dylib.machine == "ARM64" and dylib.platform == "MACOS"
    assert dylib.minos == (11, 0, 0)
    assert dylib.needed == ("/usr/lib/libSystem.B.dylib",)
    assert dylib.install_name == "@rpath/libedgemath.dylib"
    with zipfile.ZipFile(wheel) as zf:  # no debug map naming build-directory objects (-Wl,-S)
        data = zf.read("edgemath/lib/libedgemath.dylib")
        assert b"CMakeFiles" not in data
    # the fixture recipe's format-defines.macho reached the dylib's link
    macho = lief.MachO.parse(list(data)).at(0)
    assert [c.path for c in macho.commands if isinstance(c, lief.MachO.RPathCommand)] == [
        "@loader_path"]
    api = [s for s in dylib.exports if s.startswith("edgemath_")]
    assert len(api) == 8
    report = audit_wheel(wheel, toolchain, exports=("edgemath_*",))
    assert report.best_policy == "macosx_11_0_arm64"
    # what a release manifest records of it
    assert build_record("edgemath", "macos-arm64", report, None)["audit"] == {
        "policy": "macosx_11_0_arm64", "libc": "macos", "libc_floor": "11.0",
        "glibc_symbols": None}
    # the only other exports: libc++'s replaceable operator new/delete, ld's own two
    assert all(toolchain.binary_format.is_runtime_export(s) for s in dylib.exports
               if s not in api)
    assert "smoke macos-arm64: link test only, not run" in output
    assert '"needs": ["/usr/lib/libSystem.B.dylib", "@rpath/libedgemath.dylib"]' in output


def _pip_download(dist: Path, platform: str, dest: Path) -> subprocess.CompletedProcess[str]:
    """pip as a user on ``platform`` runs it, with only ``dist`` as the package index."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-index",
         "--find-links", str(dist), "--only-binary=:all:", "--platform", platform,
         "--python-version", "3.12", "--no-deps", "--dest", str(dest), "edgemath-lib==1.0"],
        capture_output=True, text=True, check=False)


@pytest.mark.slow
@pytest.mark.parametrize(("platform", "target"), [
    ("win_amd64", "windows-x86_64"),
    ("macosx_11_0_arm64", "macos-arm64"),
    ("macosx_14_0_arm64", "macos-arm64"),  # a newer macOS takes the 11.0 wheel
])
def test_pip_download_for_the_platform_picks_our_wheel(built: tuple[Path, str],
                                                       tmp_path: Path, platform: str,
                                                       target: str) -> None:
    dist, _ = built
    proc = _pip_download(dist, platform, tmp_path / "got")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "got").iterdir()] == [_wheel(dist, target).name]


@pytest.mark.slow
def test_pip_download_for_another_platform_finds_nothing(built: tuple[Path, str],
                                                         tmp_path: Path) -> None:
    dist, _ = built
    proc = _pip_download(dist, "win_arm64", tmp_path / "got")
    assert proc.returncode != 0 and "No matching distribution" in proc.stderr


# --- the audits refuse what breaks their rules (real binaries, zig-built) --------------------


def _zig_cc(tmp_path: Path, name: str, source: str, target: str,
            extra: Sequence[str] = ()) -> Path:
    src = tmp_path / f"{Path(name).stem}.c"
    src.write_text(source)
    out = tmp_path / name
    proc = subprocess.run([str(zig_executable()), "cc", "-target", target, "-shared", "-O2",
                           str(src), "-o", str(out), *extra], capture_output=True, text=True,
                          check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return out


def _wheel_of(tmp_path: Path, target: str, files: dict[str, Path]) -> Path:
    spec = WheelSpec("audit-demo", "1.0", resolve_target(target).wheel_tags)
    return write_wheel(spec, files, tmp_path / "dist")


def _problems(wheel: Path, target: str, api: Sequence[str] = ("demo_*",)) -> str:
    report = analyze_wheel(wheel, resolve_target(target), api=api)
    return "\n".join(report.problems)


@pytest.mark.slow
def test_dll_with_only_its_api_exported_passes(tmp_path: Path) -> None:
    dll = _zig_cc(tmp_path, "libdemo.dll", API_C, "x86_64-windows-gnu")
    wheel = _wheel_of(tmp_path, "windows-x86_64", {"audit_demo/lib/libdemo.dll": dll})
    report = audit_wheel(wheel, resolve_target("windows-x86_64"), exports=("demo_*",))
    assert report.ok and report.binary_format == "PE"
    assert report.best_policy == "win_amd64"


@pytest.mark.slow
def test_dll_without_dllexport_exports_mingws_runtime_and_fails(tmp_path: Path) -> None:
    dll = _zig_cc(tmp_path, "libdemo.dll", NO_EXPORT_MARK_C, "x86_64-windows-gnu")
    wheel = _wheel_of(tmp_path, "windows-x86_64", {"audit_demo/lib/libdemo.dll": dll})
    problems = _problems(wheel, "windows-x86_64")
    assert "exports symbols outside the C API" in problems and "_CRT_INIT" in problems
    with pytest.raises(AuditError, match="does not meet win_amd64"):
        audit_wheel(wheel, resolve_target("windows-x86_64"), exports=("demo_*",))


@pytest.mark.slow
def test_dll_importing_a_dll_outside_the_wheel_fails_unless_shipped(tmp_path: Path) -> None:
    helper = _zig_cc(tmp_path, "helper.dll", HELPER_C, "x86_64-windows-gnu")
    implib = tmp_path / "helper.lib"
    proc = subprocess.run([str(zig_executable()), "dlltool", "-m", "i386:x86-64", "-D",
                           "helper.dll", "-l", str(implib), "-d", str(_def(tmp_path))],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    user = _zig_cc(tmp_path, "libdemo.dll", USER_C, "x86_64-windows-gnu",
                   ["-L", str(tmp_path), "-lhelper"])
    alone = _wheel_of(tmp_path / "a", "windows-x86_64", {"audit_demo/lib/libdemo.dll": user})
    assert "not the system's nor in the wheel: helper.dll" in _problems(alone, "windows-x86_64")
    both = _wheel_of(tmp_path / "b", "windows-x86_64", {"audit_demo/lib/libdemo.dll": user,
                                                        "audit_demo/lib/helper.dll": helper})
    assert _problems(both, "windows-x86_64", api=("demo_*", "helper_*")) == ""


def _def(tmp_path: Path) -> Path:
    path = tmp_path / "helper.def"
    path.write_text("LIBRARY helper.dll\nEXPORTS\n  helper_value\n")
    return path


@pytest.mark.slow
def test_dll_of_another_cpu_fails(tmp_path: Path) -> None:
    dll = _zig_cc(tmp_path, "libdemo.dll", API_C, "aarch64-windows-gnu")
    wheel = _wheel_of(tmp_path, "windows-x86_64", {"audit_demo/lib/libdemo.dll": dll})
    assert "is PE ARM64, not x86_64 (AMD64)" in _problems(wheel, "windows-x86_64")
    arm = _wheel_of(tmp_path / "arm", "windows-arm64", {"audit_demo/lib/libdemo.dll": dll})
    assert _problems(arm, "windows-arm64") == ""


@pytest.mark.slow
def test_dylib_linked_for_a_newer_macos_than_its_tag_fails(tmp_path: Path) -> None:
    """zig's default macOS is its newest (15.0 for 0.17): a wheel tagged 11.0 must refuse it,
    naming the tag the binary really meets."""
    lib = _zig_cc(tmp_path, "libdemo.dylib", API_C, "aarch64-macos.15.0",
                  ["-Wl,-install_name,@rpath/libdemo.dylib"])
    wheel = _wheel_of(tmp_path, "macos-arm64", {"audit_demo/lib/libdemo.dylib": lib})
    report = analyze_wheel(wheel, resolve_target("macos-arm64"), api=("demo_*",))
    assert "needs macOS 15.0 (minos), newer than the 11.0" in "\n".join(report.problems)
    with pytest.raises(AuditError, match="does not meet macosx_11_0_arm64"):
        audit_wheel(wheel, resolve_target("macos-arm64"), exports=("demo_*",))


@pytest.mark.slow
def test_dylib_for_the_tag_passes_and_another_cpu_fails(tmp_path: Path) -> None:
    lib = _zig_cc(tmp_path, "libdemo.dylib", API_C, "aarch64-macos.11.0",
                  ["-Wl,-install_name,@rpath/libdemo.dylib"])
    wheel = _wheel_of(tmp_path, "macos-arm64", {"audit_demo/lib/libdemo.dylib": lib})
    assert _problems(wheel, "macos-arm64") == ""
    intel = _wheel_of(tmp_path / "x", "macos-x86_64", {"audit_demo/lib/libdemo.dylib": lib})
    assert "is Mach-O ARM64, not x86_64 (X86_64)" in _problems(intel, "macos-x86_64")


@pytest.mark.slow
def test_dylib_needing_a_non_system_library_or_named_by_a_path_fails(tmp_path: Path) -> None:
    """delocate's rule: /usr/lib and /System are the OS's; a Homebrew path is not, and a
    dylib named by an absolute path makes whatever links it look there."""
    _zig_cc(tmp_path, "libhelper.dylib", MACHO_HELPER_C, "aarch64-macos.11.0",
            ["-Wl,-install_name,/opt/homebrew/lib/libhelper.dylib"])
    user = _zig_cc(tmp_path, "libdemo.dylib", MACHO_USER_C, "aarch64-macos.11.0",
                   ["-L", str(tmp_path), "-lhelper",
                    f"-Wl,-install_name,{tmp_path}/libdemo.dylib"])
    wheel = _wheel_of(tmp_path, "macos-arm64", {"audit_demo/lib/libdemo.dylib": user})
    problems = _problems(wheel, "macos-arm64")
    assert "not the system's nor in the wheel: /opt/homebrew/lib/libhelper.dylib" in problems
    assert f"is named {tmp_path}/libdemo.dylib (LC_ID_DYLIB)" in problems


RTTI_CC = """
#include <typeinfo>
#define API extern "C" __attribute__((visibility("default")))
typedef signed char (*binary_fn)(signed char, signed char);
API const char* demo_fn_type(void) { return typeid(binary_fn).name(); }
#ifdef LEAK_CLASS
struct __attribute__((visibility("default"))) Leaked { virtual ~Leaked(); };
Leaked::~Leaked() {}
API const char* demo_class_type(void) { return typeid(Leaked).name(); }
#endif
"""


@pytest.mark.slow
def test_dylib_exporting_function_type_rtti_passes_and_a_class_rtti_fails(
        tmp_path: Path, edgeforge_cache: Path) -> None:
    """The RTTI of a function type made of fundamental types keeps default visibility under
    -fvisibility=hidden (macos-x86_64's TFLite dylib exports 40 such symbols): a runtime
    export of the format. A class's RTTI is not: it fails the audit."""
    src = tmp_path / "rtti.cc"
    src.write_text(RTTI_CC)
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(edgeforge_cache / "zig"),
           "ZIG_LOCAL_CACHE_DIR": str(edgeforge_cache / "zig-local")}
    wheels = {}
    for name, extra in {"fn": [], "class": ["-DLEAK_CLASS"]}.items():
        lib = tmp_path / name / "libdemo.dylib"
        lib.parent.mkdir()
        subprocess.run([str(zig_executable()), "c++", "-target", "x86_64-macos.10.15",
                        "-shared", "-O2", "-fvisibility=hidden", "-Wl,-S",
                        "-Wl,-install_name,@rpath/libdemo.dylib", *extra, str(src),
                        "-o", str(lib)], check=True, env=env, cwd=tmp_path, timeout=900)
        binary = lief.parse(str(lib))  # kept: its symbols live as long as it does
        assert binary is not None
        exports = {s.name for s in binary.exported_symbols}
        assert "__ZTSPFaaaE" in exports, sorted(exports)  # what the rule is about, really there
        wheels[name] = _wheel_of(tmp_path / name, "macos-x86_64",
                                 {"audit_demo/lib/libdemo.dylib": lib})
    assert _problems(wheels["fn"], "macos-x86_64") == ""
    assert "_ZTI6Leaked" in _problems(wheels["class"], "macos-x86_64")
