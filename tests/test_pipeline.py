"""The fixture library through the whole pipeline (fetch, cross-build, wheel, audit, QEMU
smoke) for five targets, through the real CLI; and the failure modes users hit."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from edgeforge_testing import FIXTURE_RECIPE, run_edgeforge

from edgeforge.recipe import load_recipe
from edgeforge.toolchain import TOOLCHAINS_DIR, resolve_target

PIPELINE_TARGETS = {
    "linux-x86_64": "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "linux-aarch64": "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "linux-armv7l": "manylinux_2_17_armv7l.manylinux2014_armv7l",
    "linux-riscv64": "manylinux_2_31_riscv64",
    "musllinux-aarch64": "musllinux_1_2_aarch64",
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fixture_tarball_matches_the_recipe_pin(fixture_recipe: Path) -> None:
    pinned = load_recipe(fixture_recipe).sources[0].locations[0].sha256
    assert _sha(fixture_recipe.parent / "edgemath-1.0.tar") == pinned, (
        "the fixture's sources changed: update the sha256 in tests/fixtures/edgemath.toml "
        "to the one `python tests/fixtures/make_tarball.py OUT` prints")


@pytest.fixture(scope="module")
def built(fixture_recipe: Path, edgeforge_cache: Path,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    dist = tmp_path_factory.mktemp("dist")
    args = ["build", str(fixture_recipe), "--dist", str(dist)]
    for target in PIPELINE_TARGETS:
        args += ["--target", target]
    proc = run_edgeforge(*args, cache=edgeforge_cache)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return dist, output


@pytest.mark.slow
@pytest.mark.parametrize("target", PIPELINE_TARGETS)
def test_fixture_wheel_for_target(built: tuple[Path, str], target: str) -> None:
    dist, output = built
    wheel = dist / f"edgemath_lib-1.0-py3-none-{PIPELINE_TARGETS[target]}.whl"
    assert wheel.is_file(), sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        wheel_meta = zf.read("edgemath_lib-1.0.dist-info/WHEEL").decode()
    assert "edgemath/lib/libedgemath.so" in names
    assert "edgemath/__init__.py" in names
    for tag in PIPELINE_TARGETS[target].split("."):
        assert f"Tag: py3-none-{tag}" in wheel_meta
    assert f"{target}: {wheel} (audit: {PIPELINE_TARGETS[target].split('.')[0]}; " \
           "smoke: passed)" in output


@pytest.mark.slow
def test_smoke_ran_under_qemu_and_matched_the_host(built: tuple[Path, str]) -> None:
    _, output = built
    assert "Debian bookworm/arm64 Python 3.11 under qemu-aarch64-static" in output
    assert "Debian bookworm/armhf Python 3.11 under qemu-arm-static" in output
    assert "Debian trixie/riscv64 Python" in output and "under qemu-riscv64-static" in output
    assert "C driver smoke_driver.c" in output
    assert output.count("outputs match the host's") == len(PIPELINE_TARGETS)
    assert '"machine": "riscv64"' in output and '"machine": "armv7l"' in output


@pytest.mark.slow
@pytest.mark.parametrize("target", ["linux-aarch64", "musllinux-aarch64", "linux-riscv64"])
def test_auditwheel_show_agrees_with_the_tag(built: tuple[Path, str], target: str) -> None:
    dist, _ = built
    wheel = dist / f"edgemath_lib-1.0-py3-none-{PIPELINE_TARGETS[target]}.whl"
    proc = subprocess.run([sys.executable, "-m", "auditwheel", "show", str(wheel)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    policy = PIPELINE_TARGETS[target].split(".")[0]
    assert f'"{policy}"' in " ".join(proc.stdout.split()), proc.stdout


@pytest.mark.slow
def test_debian_cross_gcc_backend_gets_its_own_glibc_floor(fixture_recipe: Path,
                                                          edgeforge_cache: Path,
                                                          tmp_path: Path) -> None:
    """The second backend: Debian bookworm's aarch64 g++ links against glibc 2.36, so the wheel
    says manylinux_2_36 (the audit agrees) and runs under QEMU like zig's."""
    dist = tmp_path / "dist"
    proc = run_edgeforge("build", str(fixture_recipe), "--target", "linux-aarch64",
                         "--compiler", "gcc", "--dist", str(dist), cache=edgeforge_cache)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "aarch64-linux-gnu-g++" in output
    assert [p.name for p in dist.iterdir()] == [
        "edgemath_lib-1.0-py3-none-manylinux_2_36_aarch64.whl"]
    assert "(audit: manylinux_2_36_aarch64; smoke: passed)" in output


def _ccache_results(log: Path) -> tuple[int, int]:
    """Hits and misses of the compilations ccache logged (its `Result:` lines)."""
    results = [line.split("Result: ", 1)[1].strip() for line in log.read_text().splitlines()
               if "Result: " in line]
    hits = sum(r.endswith("cache_hit") for r in results)
    misses = sum(r == "cache_miss" for r in results)
    return hits, misses


@pytest.mark.slow
def test_compiler_cache_hits_from_a_work_directory_anywhere(fixture_recipe: Path,
                                                           edgeforge_cache: Path,
                                                           tmp_path: Path) -> None:
    """A clean build in a new work directory, at another depth, compiles nothing again."""
    if shutil.which("ccache") is None:
        pytest.fail("ccache is missing: apt-get install ccache (ci/setup.sh does)")
    # The second work directory sits at a depth earlier runs are unlikely to have used, so
    # relative source paths that depend on the depth could not hit by chance.
    deep = tmp_path.joinpath(*["d"] * random.randint(3, 40), "b")
    for n, work in enumerate((tmp_path / "a", deep)):
        log = tmp_path / f"ccache-{n}.log"  # this build's own log: other builds may share the cache
        proc = run_edgeforge("build", str(fixture_recipe), "--target", "linux-aarch64",
                             "--no-smoke", "--dist", str(tmp_path / f"dist{n}"), "--work-dir",
                             str(work), cache=edgeforge_cache, env={"CCACHE_LOGFILE": str(log)})
        assert proc.returncode == 0, proc.stderr[-4000:]
    hits, misses = _ccache_results(log)
    assert misses == 0 and hits > 0, (hits, misses)


@pytest.mark.slow
def test_two_clean_builds_give_byte_identical_wheels(fixture_recipe: Path, edgeforge_cache: Path,
                                                     tmp_path: Path) -> None:
    shas = []
    for n in (1, 2):
        dist = tmp_path / f"dist{n}"
        proc = run_edgeforge("build", str(fixture_recipe), "--target", "linux-aarch64",
                             "--no-smoke", "--dist", str(dist), "--work-dir",
                             str(tmp_path / f"work-{n}-{'x' * n}"), cache=edgeforge_cache,
                             env={"CCACHE_DISABLE": "1"})  # really compile both times
        assert proc.returncode == 0, proc.stderr[-4000:]
        (wheel,) = dist.glob("*.whl")
        shas.append(_sha(wheel))
    assert shas[0] == shas[1]


# ------------------------------------------------------------------------- failure modes


def _copy_fixture(tmp_path: Path) -> Path:
    """The fixture recipe and tarball copied, so a test may tamper with them."""
    recipe = tmp_path / "edgemath.toml"
    shutil.copy(FIXTURE_RECIPE, recipe)
    shutil.copy(FIXTURE_RECIPE.parent / "edgemath-1.0.tar", tmp_path / "edgemath-1.0.tar")
    text = recipe.read_text()
    for rel in ("edgemath/smoke.py", "edgemath/smoke_driver.c", "edgemath/python/edgemath"):
        text = text.replace(f'"{rel}"', f'"{FIXTURE_RECIPE.parent / rel}"')
    recipe.write_text(text)
    return recipe


def _nothing_left(dist: Path, cache: Path) -> None:
    assert not dist.exists() or not list(dist.iterdir())
    partial = [p for p in (cache / "downloads").rglob("*") if ".part" in p.name]
    assert partial == []


def test_tampered_source_is_one_clear_error(fixture_recipe: Path, tmp_path: Path) -> None:
    recipe = _copy_fixture(tmp_path)
    tarball = tmp_path / "edgemath-1.0.tar"
    data = bytearray(tarball.read_bytes())
    data[600] ^= 0xFF
    tarball.write_bytes(bytes(data))
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    proc = run_edgeforge("build", str(recipe), "--dist", str(dist), cache=cache)
    assert proc.returncode == 3
    assert proc.stderr.count("edgeforge: error:") == 1
    assert "sha256 mismatch" in proc.stderr and "Traceback" not in proc.stderr
    _nothing_left(dist, cache)
    assert not list((cache / "downloads").glob("[0-9a-f]*"))


def test_unknown_target_is_one_clear_error(fixture_recipe: Path, tmp_path: Path) -> None:
    proc = run_edgeforge("build", str(fixture_recipe), "--target", "linux-m68k", "--dist",
                         str(tmp_path / "dist"), cache=tmp_path / "cache")
    assert proc.returncode == 2
    assert "unknown target 'linux-m68k'" in proc.stderr and "Traceback" not in proc.stderr
    _nothing_left(tmp_path / "dist", tmp_path / "cache")


def test_malformed_recipe_is_one_clear_error(fixture_recipe: Path, tmp_path: Path) -> None:
    recipe = _copy_fixture(tmp_path)
    recipe.write_text(recipe.read_text().replace("[build.cmake]", "[build.cmake"))
    proc = run_edgeforge("build", str(recipe), "--dist", str(tmp_path / "dist"),
                         cache=tmp_path / "cache")
    assert proc.returncode == 2
    assert "malformed TOML" in proc.stderr and str(recipe) in proc.stderr
    assert "Traceback" not in proc.stderr
    _nothing_left(tmp_path / "dist", tmp_path / "cache")


def test_missing_qemu_is_one_clear_error(fixture_recipe: Path, tmp_path: Path) -> None:
    toolchain = tmp_path / "my-board.toml"
    toolchain.write_text((TOOLCHAINS_DIR / "linux-aarch64.toml").read_text()
                         .replace("qemu-aarch64-static", "qemu-nonexistent-static"))
    proc = run_edgeforge("build", str(fixture_recipe), "--toolchain", str(toolchain),
                         "--dist", str(tmp_path / "dist"), cache=tmp_path / "cache")
    assert proc.returncode == 5
    assert "qemu-nonexistent-static" in proc.stderr and "apt-get install qemu-user-static" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    _nothing_left(tmp_path / "dist", tmp_path / "cache")


def test_an_edited_toolchain_file_makes_a_new_wheel_in_a_clean_build_directory(
        fixture_recipe: Path, edgeforge_cache: Path, tmp_path: Path) -> None:
    """A board's toolchain file edited in place (same target name, new compiler flags): the
    next build neither returns the finished wheel of the old flags nor compiles in the build
    directory CMake configured with them; an unchanged rerun reuses the new wheel."""
    host = resolve_target(None)
    if host.name != "linux-x86_64" or host.backend != "zig":
        pytest.skip(f"edits linux-x86_64's flags; the host is {host.name} ({host.backend})")
    mine = tmp_path / "toolchains"
    mine.mkdir()
    board = mine / host.path.name
    shutil.copy(host.path, board)
    work = tmp_path / "work"

    def build(n: int) -> tuple[str, str]:
        dist = tmp_path / f"dist{n}"
        proc = run_edgeforge("build", str(fixture_recipe), "--target", host.name, "--no-smoke",
                             "--dist", str(dist), "--work-dir", str(work),
                             cache=edgeforge_cache, env={"EDGEFORGE_TOOLCHAIN_PATH": str(mine)})
        assert proc.returncode == 0, proc.stderr[-4000:]
        (wheel,) = dist.glob("*.whl")
        return _sha(wheel), proc.stdout + proc.stderr

    first, _ = build(1)
    text = board.read_text()
    assert "\nflags = []\n" in text, text
    # a flag for the library's own code only (zig's libc++ for the target stays cached)
    board.write_text(text.replace("\nflags = []\n", '\nflags = ["-fno-inline"]\n'))
    second, output = build(2)
    assert ("the toolchain file or compilers changed since the last build: starting a clean "
            "build directory") in output, output[-3000:]
    assert second != first  # nothing inlined: another library
    third, output = build(3)
    assert third == second and "starting a clean build directory" not in output
