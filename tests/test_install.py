"""`pip install tflite-edge` from a local wheel directory, with real pip and real wheels.

The find-links directory holds: the pure `tflite-edge` wheel (built by pip from wheels/), the
host's `tflite-edge-lib` wheel, stand-in `tflite-edge-lib` wheels for aarch64 and armv7l, and
the `tflite-edge-lib` sdist made by edgeforge's backend.

- The host wheel is the real one the pipeline built when ``EDGEFORGE_TFLITE_WHEEL_DIR`` names
  its directory (CI sets it); otherwise a stand-in, and the tests that load the real library
  skip, saying so.
- The aarch64/armv7l wheels are stand-ins written with edgeforge.wheel.write_wheel: the same
  tflite_edge_lib Python files and tags as the real ones, with a placeholder library. They
  test pip's choice of wheel by tag, not the binaries (the QEMU smoke tests do that).
- The self-build is proven on the fixture recipe (edgemath), which compiles in seconds; the
  TFLite sdist is only resolved (pip prepares its metadata), never compiled here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from edgeforge_testing import (
    REPO,
    TFLITE_VERSION,
    TFLITE_WHEEL_DIR_ENV,
    pipeline_host_wheel,
    run_edgeforge,
)
from install_support import fixture_lib_project, pip, pip_env

from edgeforge import backend
from edgeforge.errors import ConfigError, MissingToolError
from edgeforge.pipeline import wheel_spec
from edgeforge.recipe import RECIPES_DIR, load_recipe
from edgeforge.toolchain import TOOLCHAINS_DIR, load_toolchain, resolve_target
from edgeforge.wheel import write_wheel

VERSION = TFLITE_VERSION
LIB_SRC = REPO / "wheels" / "tflite-edge-lib" / "src" / "tflite_edge_lib"


def stand_in_wheel(target: str, out: Path, scratch: Path) -> Path:
    """A tflite-edge-lib wheel with the real Python files and tags and a placeholder library."""
    recipe = load_recipe(RECIPES_DIR / "tflite.toml")
    toolchain = load_toolchain(TOOLCHAINS_DIR / f"{target}.toml")
    placeholder = scratch / f"libtensorflowlite_c-{target}.so"
    placeholder.write_text(f"stand-in for {target}: tests pip's wheel selection only\n")
    files = {f"tflite_edge_lib/{p.name}": p for p in sorted(LIB_SRC.glob("*.py"))}
    files["tflite_edge_lib/lib/libtensorflowlite_c.so"] = placeholder
    return write_wheel(wheel_spec(recipe, toolchain), files, out)


@pytest.fixture(scope="module")
def findlinks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel directory, and which file is which."""
    d = tmp_path_factory.mktemp("findlinks")
    scratch = tmp_path_factory.mktemp("scratch")
    # Built from a copy: setuptools writes build/ and *.egg-info into the project directory.
    project = scratch / "tflite-edge"
    shutil.copytree(REPO / "wheels" / "tflite-edge", project,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project), "-w", str(d))
    files = {"pure": next(d.glob(f"tflite_edge-{VERSION}-py3-none-any.whl"))}
    host = resolve_target(None)
    real = pipeline_host_wheel()
    if real is not None:
        shutil.copy2(real, d / real.name)
        files[host.name] = d / real.name
    else:
        files[host.name] = stand_in_wheel(host.name, d, scratch)
    for target in ("linux-aarch64", "linux-armv7l"):
        if target != host.name:
            files[target] = stand_in_wheel(target, d, scratch)
    # The sdist, made by the backend from the checkout, as a release job would.
    proc = subprocess.run(
        [sys.executable, "-c", f"from edgeforge.backend import build_sdist; "
                               f"print(build_sdist({str(d)!r}))"],
        cwd=REPO / "wheels" / "tflite-edge-lib", capture_output=True, text=True, check=True)
    files["sdist"] = d / proc.stdout.strip()
    return files


def resolve(findlinks: dict[str, Path], tmp_path: Path, *args: str) -> dict[str, str]:
    """`pip install --dry-run --report` against the find-links dir: {name: chosen file}."""
    report = tmp_path / "report.json"
    pip("install", "--dry-run", "--ignore-installed", "--no-index", "--find-links",
        str(findlinks["pure"].parent), "--target", str(tmp_path / "target"),
        "--report", str(report), "--quiet", *args)
    items = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"]: i["download_info"]["url"].rsplit("/", 1)[-1] for i in items}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv that sees the host's numpy (`--system-site-packages`), so that the
    `--no-index` install needs nothing from an index."""
    path = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                   check=True, timeout=300)
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def installed(venv: Path, findlinks: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, str]:
    report = tmp_path_factory.mktemp("report") / "install.json"
    pip("install", "--no-index", "--find-links", str(findlinks["pure"].parent),
        "--report", str(report), "tflite-edge", python=str(venv))
    items = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"]: i["download_info"]["url"].rsplit("/", 1)[-1] for i in items}


def test_host_install_is_exactly_two_distributions(installed: dict[str, str],
                                                  findlinks: dict[str, Path]) -> None:
    assert set(installed) == {"tflite-edge", "tflite-edge-lib"}, installed
    host = resolve_target(None)
    assert installed["tflite-edge"] == findlinks["pure"].name
    assert installed["tflite-edge-lib"] == findlinks[host.name].name


def test_host_install_loads_the_real_library(installed: dict[str, str], venv: Path) -> None:
    if pipeline_host_wheel() is None:
        pytest.skip(f"{TFLITE_WHEEL_DIR_ENV} is not set: the host wheel is a stand-in, so there is "
                    "no real libtensorflowlite_c to load (ci/test.sh sets it)")
    code = ("import tflite_edge, tflite_edge_lib; from tflite_edge._library import "
            "load_library; lib = load_library(); print(lib.path); print(lib.version); "
            "assert str(lib.path) == str(tflite_edge_lib.library_path()), lib.path")
    proc = subprocess.run([str(venv), "-c", code], capture_output=True, text=True,
                          env=pip_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    path, version = proc.stdout.split()
    assert Path(path).is_relative_to(venv.parents[1]), path  # the venv's copy, not the checkout
    assert version.startswith("2.14"), version
    doctor = subprocess.run([str(venv), "-m", "tflite_edge", "doctor"], capture_output=True,
                            text=True, env=pip_env(), timeout=120, check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"tflite-edge-lib: {VERSION}" in doctor.stdout
    assert f"library: {path}" in doctor.stdout
    assert "TfLiteVersion(): 2.14" in doctor.stdout


@pytest.mark.parametrize(("platform_tag", "target"), [
    ("manylinux2014_aarch64", "linux-aarch64"),
    ("manylinux_2_17_aarch64", "linux-aarch64"),
    ("manylinux2014_armv7l", "linux-armv7l"),
])
def test_platform_picks_its_binary(findlinks: dict[str, Path], tmp_path: Path,
                                   platform_tag: str, target: str) -> None:
    # --no-deps: numpy for a foreign platform is not in the offline find-links dir; that
    # tflite-edge pulls tflite-edge-lib is shown by the host install above.
    chosen = resolve(findlinks, tmp_path, "--only-binary", ":all:", "--no-deps",
                     "--platform", platform_tag, "--python-version", "3.12",
                     "tflite-edge", f"tflite-edge-lib=={VERSION}")
    assert chosen == {"tflite-edge": findlinks["pure"].name,
                      "tflite-edge-lib": findlinks[target].name}


@pytest.mark.parametrize("python_version", ["3.8", "3.12", "3.13", "3.14"])
def test_one_wheel_serves_every_python(findlinks: dict[str, Path], tmp_path: Path,
                                       python_version: str) -> None:
    chosen = resolve(findlinks, tmp_path, "--only-binary", ":all:", "--no-deps",
                     "--platform", "manylinux2014_aarch64",
                     "--python-version", python_version, f"tflite-edge-lib=={VERSION}")
    assert chosen == {"tflite-edge-lib": findlinks["linux-aarch64"].name}


def test_sdist_layout(findlinks: dict[str, Path]) -> None:
    base = f"tflite_edge_lib-{VERSION}"
    assert findlinks["sdist"].name == f"{base}.tar.gz"
    with tarfile.open(findlinks["sdist"]) as tar:
        names = set(tar.getnames())
        pyproject = tar.extractfile(f"{base}/pyproject.toml").read().decode()  # type: ignore
    # The recipe and everything it refers to are package data of the pinned edgeforge.
    assert names == {f"{base}/{n}" for n in ("PKG-INFO", "README.md", "pyproject.toml")}
    from edgeforge import __version__
    assert f'requires = ["edgeforge=={__version__}"]' in pyproject
    assert 'build-backend = "edgeforge.backend"' in pyproject
    assert 'recipe = "tflite"' in pyproject
    assert 'library-env = "TFLITE_EDGE_LIBRARY"' in pyproject


def test_the_lib_project_pins_this_edgeforge() -> None:
    from edgeforge import __version__
    from edgeforge.tomlfile import load

    project = load(REPO / "wheels" / "tflite-edge-lib" / "pyproject.toml")
    assert project["build-system"]["requires"] == [f"edgeforge=={__version__}"]


def test_no_wheel_for_the_platform_falls_back_to_the_sdist(findlinks: dict[str, Path],
                                                          tmp_path: Path) -> None:
    # pip prepares the sdist's metadata through edgeforge.backend (in this environment:
    # --no-build-isolation, as edgeforge is not on the index); nothing is compiled.
    chosen = resolve(findlinks, tmp_path, "--no-deps", "--no-build-isolation",
                     "--platform", "linux_ppc64le", "--python-version", "3.11",
                     f"tflite-edge-lib=={VERSION}")
    assert chosen == {"tflite-edge-lib": findlinks["sdist"].name}


def test_no_wheel_and_only_binary_is_a_clear_error(findlinks: dict[str, Path],
                                                   tmp_path: Path) -> None:
    proc = pip("download", "--no-index", "--find-links", str(findlinks["pure"].parent),
               "--only-binary", ":all:", "--platform", "linux_ppc64le",
               "--python-version", "3.11", "-d", str(tmp_path), f"tflite-edge-lib=={VERSION}",
               check=False)
    assert proc.returncode != 0
    assert "Could not find a version that satisfies the requirement tflite-edge-lib" \
        in proc.stderr, proc.stderr
    assert "No matching distribution found for tflite-edge-lib" in proc.stderr, proc.stderr


# --- the self-build, on the fixture recipe -------------------------------------------------


@pytest.fixture()
def fixture_project(tmp_path: Path, fixture_recipe: Path) -> Path:
    """A project with a recipe of its own, by path: recipes/ and pyproject.toml."""
    return fixture_lib_project(tmp_path / "edgemath-lib", fixture_recipe)


def test_self_build_through_pip(fixture_project: Path, tmp_path: Path,
                                edgeforge_cache: Path) -> None:
    sdist = subprocess.run(
        [sys.executable, "-c", f"from edgeforge.backend import build_sdist; "
                               f"print(build_sdist({str(tmp_path / 'sdist')!r}))"],
        cwd=fixture_project, capture_output=True, text=True, check=True).stdout.strip()
    assert sdist == "edgemath_lib-1.0.tar.gz"
    # Real pip runs the backend's hooks in the unpacked sdist; the host's compilers, one job.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(tmp_path / "wheels"), "-C", "compiler=native", "-C", "jobs=1",
         str(tmp_path / "sdist" / sdist)],
        capture_output=True, text=True, env=pip_env(EDGEFORGE_CACHE=str(edgeforge_cache)),
        timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    machine = resolve_target(None).arch
    wheel = tmp_path / "wheels" / f"edgemath_lib-1.0-py3-none-linux_{machine}.whl"
    assert wheel.is_file(), list((tmp_path / "wheels").iterdir())
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as zf:
        assert "edgemath/lib/libedgemath.so" in zf.namelist()
        zf.extractall(unpacked)
    run = subprocess.run([sys.executable, "-c", "import edgemath; print(edgemath.library_path())"],
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(unpacked)})
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(unpacked)


def test_host_with_no_toolchain_gets_a_native_one(fixture_project: Path, tmp_path: Path) -> None:
    only = tmp_path / "only-riscv"
    only.mkdir()
    shutil.copy2(TOOLCHAINS_DIR / "linux-riscv64.toml", only)
    settings = backend.load_settings(fixture_project, None, environ={})
    search = replace(settings.build.search, toolchains=(only,))  # no shipped toolchains
    toolchain = backend.host_toolchain(replace(settings, build=replace(settings.build,
                                                                       search=search)))
    machine = resolve_target(None).arch
    assert toolchain.backend == "native"
    assert toolchain.wheel_tags == (f"linux_{machine}",)
    assert backend.native_toolchain("ppc64le", "glibc").wheel_tags == ("linux_ppc64le",)


def test_missing_build_tools_say_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no cmake, ninja or compiler
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.delenv("CXX", raising=False)
    assert backend.get_requires_for_build_wheel() == ["cmake", "ninja"]
    with pytest.raises(MissingToolError) as err:
        backend.preflight(backend.native_toolchain("ppc64le", "glibc"))
    message = str(err.value)
    assert message.startswith("edgeforge ships no toolchain for this machine (ppc64le, glibc)")
    assert "apt-get install cmake" in message and "apt-get install ninja-build" in message
    assert "a C/C++ compiler (cc, c++): apt-get install build-essential" in message


def test_bad_settings_are_named(fixture_project: Path) -> None:
    with pytest.raises(ConfigError, match="jobs='many'"):
        backend.load_settings(fixture_project, {"jobs": "many"}, environ={})
    with pytest.raises(ConfigError, match="compiler='msvc'"):
        backend.load_settings(fixture_project, {"compiler": "msvc"}, environ={})
    with pytest.raises(ConfigError, match="unknown config setting 'job'"):
        backend.load_settings(fixture_project, {"job": "2"}, environ={})
    settings = backend.load_settings(fixture_project, None,
                                     environ={"EDGEFORGE_CACHE": "/tmp/x", "EDGEFORGE_JOBS": "3"})
    assert settings.build.cache_dir == Path("/tmp/x") and settings.build.jobs == 3
    settings = backend.load_settings(fixture_project, {"jobs": "2", "cache-dir": "/tmp/y"},
                                     environ={"EDGEFORGE_CACHE": "/tmp/x", "EDGEFORGE_JOBS": "3"})
    assert settings.build.cache_dir == Path("/tmp/y") and settings.build.jobs == 2


def test_the_cli_and_the_backend_resolve_settings_alike(fixture_project: Path,
                                                        tmp_path: Path) -> None:
    """One chain (edgeforge.settings): the same variable, the same error, in both."""
    env = {"EDGEFORGE_JOBS": "many"}
    with pytest.raises(ConfigError) as err:
        backend.load_settings(fixture_project, None, environ=env)
    proc = run_edgeforge("targets", cache=tmp_path, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"edgeforge: error: {err.value}" in proc.stderr, proc.stderr
