"""edgeforge from its own wheel: installed into a fresh venv, run from an empty directory.

The wheel is built by pip from a copy of this checkout; its dependencies come from PyPI
through pip (kept in ``<cache>/test-wheelhouse``, so a rerun installs offline). Nothing the
tool does may depend on the checkout: the commands run in an empty directory, with no
PYTHONPATH and the venv's own console script.

This is also what ``pipx run edgeforge`` and ``uvx edgeforge`` do (an isolated venv with the
wheel and its dependencies, the console script run from the user's directory), so these tests
cover that use too.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from edgeforge_testing import FIXTURES
from install_support import build_edgeforge_wheel, make_venv, pip, pip_env, run, wheelhouse

from edgeforge.toolchain import TOOLCHAINS_DIR

SHIPPED_TARGETS = ["linux-aarch64", "linux-armv6l", "linux-armv7l", "linux-riscv64",
                   "linux-x86_64", "macos-arm64", "macos-x86_64", "musllinux-aarch64",
                   "musllinux-x86_64", "windows-arm64", "windows-x86_64"]


@pytest.fixture(scope="module")
def edgeforge_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edgeforge-wheel")
    return build_edgeforge_wheel(root / "dist", root / "scratch")


@pytest.fixture(scope="module")
def tool(edgeforge_wheel: Path, tmp_path_factory: pytest.TempPathFactory,
         edgeforge_cache: Path) -> Path:
    """The ``edgeforge`` console script of a fresh venv holding the wheel and its
    dependencies."""
    python = make_venv(tmp_path_factory.mktemp("tool") / "venv")
    house = wheelhouse(edgeforge_cache, python, [str(edgeforge_wheel)])
    pip("install", "--no-index", "--find-links", str(house), str(edgeforge_wheel),
        python=python)
    return python.parent / "edgeforge"


@pytest.fixture()
def empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def edgeforge(tool: Path, *args: str, cwd: Path, check: bool = True, timeout: float = 1800,
              **env: str):
    return run([str(tool), *args], cwd=cwd, env=pip_env(**env), timeout=timeout, check=check)


def listed_targets(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert lines[0].split()[0] == "target", stdout
    return [line.split()[0] for line in lines[1:]]


def test_wheel_carries_recipes_toolchains_patches_and_smoke_files(edgeforge_wheel: Path) -> None:
    names = set(zipfile.ZipFile(edgeforge_wheel).namelist())
    for needed in ("archs.toml", "recipes/tflite.toml",
                   "recipes/patches/tflite-disable-ml-dtypes.patch",
                   "recipes/smoke/tflite_smoke.py", "recipes/smoke/tflite_smoke_driver.c",
                   "recipes/python/tflite_edge_lib/__init__.py",  # a symlink in the checkout
                   "recipes/python/tflite_edge/interpreter.py",
                   "recipes/extra/tflite-dummy-delegate/CMakeLists.txt",
                   *(f"toolchains/{t}.toml" for t in SHIPPED_TARGETS)):
        assert f"edgeforge/{needed}" in names, needed


def test_installed_tool_runs_from_the_venv(tool: Path, empty: Path) -> None:
    proc = run([str(tool.with_name("python")), "-c", "import edgeforge; print(edgeforge.__file__)"],
               cwd=empty)
    assert Path(proc.stdout.strip()).is_relative_to(tool.parents[1]), proc.stdout


def test_installed_tool_lists_the_shipped_targets(tool: Path, empty: Path) -> None:
    proc = edgeforge(tool, "targets", cwd=empty)
    assert listed_targets(proc.stdout) == SHIPPED_TARGETS
    assert list(empty.iterdir()) == []  # nothing written where it ran


def test_installed_tool_knows_the_shipped_recipes(tool: Path, empty: Path) -> None:
    proc = edgeforge(tool, "build", "no-such-recipe", cwd=empty, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unknown recipe 'no-such-recipe'" in proc.stderr, proc.stderr
    known = proc.stderr.split("Known recipes: ", 1)[1].split(" (searched", 1)[0].split(", ")
    assert {"tflite", "tflite-dummy-delegate", "libedgetpu"} <= set(known), proc.stderr


def user_dirs(root: Path) -> tuple[Path, Path]:
    """A user's recipe directory (the fixture and what it references) and a toolchain
    directory with one board of their own (a Raspberry Pi 4: Cortex-A72)."""
    recipes, toolchains = root / "my-recipes", root / "my-toolchains"
    recipes.mkdir()
    shutil.copy2(FIXTURES / "edgemath.toml", recipes)
    shutil.copy2(FIXTURES / "edgemath-1.0.tar", recipes)
    shutil.copytree(FIXTURES / "edgemath", recipes / "edgemath",
                    ignore=shutil.ignore_patterns("build*", "__pycache__"))
    toolchains.mkdir()
    text = (TOOLCHAINS_DIR / "linux-aarch64.toml").read_text()
    for old, new in (('name = "linux-aarch64"', 'name = "pi4-aarch64"'),
                     ('flags = ["-mcpu=generic"]', 'flags = ["-mcpu=cortex_a72"]')):
        assert old in text, old
        text = text.replace(old, new)
    (toolchains / "pi4-aarch64.toml").write_text(text)
    return recipes, toolchains


def test_user_toolchains_come_from_the_search_path(tool: Path, empty: Path,
                                                   tmp_path: Path) -> None:
    _, toolchains = user_dirs(tmp_path)
    proc = edgeforge(tool, "targets", cwd=empty, EDGEFORGE_TOOLCHAIN_PATH=str(toolchains))
    assert listed_targets(proc.stdout) == sorted([*SHIPPED_TARGETS, "pi4-aarch64"])
    proc = edgeforge(tool, "--toolchain-path", str(toolchains), "targets", cwd=empty)
    assert "pi4-aarch64" in listed_targets(proc.stdout)


@pytest.mark.slow
def test_installed_tool_builds_and_smoke_tests_a_user_recipe(
        tool: Path, empty: Path, tmp_path: Path, fixture_recipe: Path,
        edgeforge_cache: Path) -> None:
    """The fixture from a --recipe-path directory for linux-aarch64 (QEMU smoke against the
    host's build), and for the user's own board, found through EDGEFORGE_TOOLCHAIN_PATH.
    Fresh work directories; the caches (sources, zig, ccache, Debian roots) are shared."""
    recipes, toolchains = user_dirs(tmp_path)
    cache = {"EDGEFORGE_CACHE": str(edgeforge_cache)}
    proc = edgeforge(tool, "--recipe-path", str(recipes), "build", "edgemath",
                     "--target", "linux-aarch64", "--dist", str(tmp_path / "dist"),
                     "--work-dir", str(tmp_path / "work"), cwd=empty, **cache)
    wheel = "edgemath_lib-1.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    assert (f"linux-aarch64: {tmp_path / 'dist' / wheel} (audit: manylinux_2_17_aarch64; "
            "smoke: passed)") in proc.stdout, proc.stdout + proc.stderr[-3000:]
    assert "outputs match the host's" in proc.stderr, proc.stderr[-3000:]

    proc = edgeforge(tool, "--recipe-path", str(recipes), "build", "edgemath",
                     "--target", "pi4-aarch64", "--dist", str(tmp_path / "dist-pi4"),
                     "--work-dir", str(tmp_path / "work"), cwd=empty,
                     EDGEFORGE_TOOLCHAIN_PATH=str(toolchains), **cache)
    assert f"pi4-aarch64: {tmp_path / 'dist-pi4' / wheel}" in proc.stdout, proc.stdout
    assert "smoke: passed" in proc.stdout, proc.stdout
    wrapper = (tmp_path / "work" / "edgemath-1.0" / "pi4-aarch64-zig" / "bin" / "c++").read_text()
    assert "-mcpu=cortex_a72" in wrapper, wrapper
    assert list(empty.iterdir()) == []
