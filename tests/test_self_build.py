"""The sdist fallback from a package index, for real.

pypiserver (from PyPI, in the ``[test]`` extra) serves a directory on 127.0.0.1 holding
edgeforge's own wheel (built from this checkout), its dependencies' wheels (from PyPI, kept in
``<cache>/test-wheelhouse``), and the packages under test; no host binary wheel. pip, in a
fresh venv, sees only that index (``--index-url``; PyPI's unrelated ``edgeforge`` 0.1.2 must
never be reachable), falls back to the binary distribution's sdist, installs edgeforge into
its build isolation from the index, and edgeforge builds the library for this machine with
the shared cache (``EDGEFORGE_CACHE``: sources, zig, ccache).

- The fixture (edgemath, recipe by path in its sdist) is the fast variant: it builds in
  seconds, and the failure modes are shown on it: no C/C++ compiler for a native build, a
  machine no toolchain describes (``setarch i686``), cmake and ninja missing.
- The real one (``tflite`` marker): ``pip install tflite-edge`` self-builds tflite-edge-lib from
  its small sdist (recipe ``tflite`` from the pinned edgeforge) and runs a mediapipe model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeforge_testing import REPO, TFLITE_VERSION, skip_or_fail
from install_support import (
    build_edgeforge_wheel,
    fixture_lib_project,
    local_index,
    make_venv,
    pip,
    pip_env,
    run,
    wheelhouse,
)

from edgeforge import __version__

EDGEFORGE_WHEEL = f"edgeforge-{__version__}-py3-none-any.whl"


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, edgeforge_cache: Path,
              fixture_recipe: Path) -> Path:
    """The index's directory: edgeforge, its dependencies, numpy, the fixture's sdist."""
    root = tmp_path_factory.mktemp("index-build")
    packages = tmp_path_factory.mktemp("index")
    wheel = build_edgeforge_wheel(packages, root / "scratch")
    assert wheel.name == EDGEFORGE_WHEEL
    house = wheelhouse(edgeforge_cache, Path(sys.executable), [str(wheel), "numpy"])
    for dep in house.glob("*.whl"):
        shutil.copy2(dep, packages)
    project = fixture_lib_project(root / "edgemath-lib", fixture_recipe)
    make_sdist(project, packages)
    return packages


def make_sdist(project: Path, out: Path) -> Path:
    """The backend's build_sdist, run in the project as a release job runs it."""
    proc = run([sys.executable, "-c", f"from edgeforge.backend import build_sdist; "
                                      f"print(build_sdist({str(out)!r}))"], cwd=project)
    return out / proc.stdout.strip()


def served_log(index_dir: Path) -> Path:
    return index_dir.with_name(f"{index_dir.name}.pypiserver.log")


@pytest.fixture(scope="module")
def index(index_dir: Path) -> Iterator[str]:
    with local_index(index_dir, served_log(index_dir)) as url:
        yield url


def install(python: Path, index_url: str, *args: str, check: bool = True,
            env: dict[str, str] | None = None, timeout: float = 1800
            ) -> subprocess.CompletedProcess[str]:
    return pip("install", "--index-url", index_url, "--no-cache-dir", *args, python=python,
               check=check, env=env, timeout=timeout)


def cache_env(cache: Path, **extra: str) -> dict[str, str]:
    return pip_env(EDGEFORGE_CACHE=str(cache), **extra)


def bin_dir_with(tmp: Path, *tools: str) -> Path:
    """A PATH directory holding only these host tools (symlinks): what a machine without the
    others looks like to pip and edgeforge."""
    d = tmp / "bin"
    d.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found, tool
        (d / tool).symlink_to(found)
    return d


def the_error(proc: subprocess.CompletedProcess[str]) -> str:
    """edgeforge's one message in pip's output (pip indents the backend's lines)."""
    text = proc.stdout + proc.stderr
    lines = [line.strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("edgeforge: ")), None)
    assert start is not None, text
    return " ".join(lines[start:start + 3])


# --- the fixture: fast ---------------------------------------------------------------------


def test_index_serves_only_the_local_packages(index: str) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(index) as page:
        names = page.read().decode()
    assert "edgeforge" in names and "edgemath-lib" in names
    with pytest.raises(urllib.error.HTTPError) as err:  # not here, and no fallback to PyPI
        urllib.request.urlopen(index + "requests/")
    assert err.value.code == 404


def test_pip_falls_back_to_the_sdist_and_gets_edgeforge_from_the_index(
        index: str, index_dir: Path, tmp_path: Path, edgeforge_cache: Path) -> None:
    python = make_venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    proc = install(python, index, "-v", "--report", str(report), "edgemath-lib",
                   env=cache_env(edgeforge_cache))
    chosen = {i["metadata"]["name"]: i["download_info"]["url"]
              for i in json.loads(report.read_text())["install"]}
    assert list(chosen) == ["edgemath-lib"], chosen
    assert chosen["edgemath-lib"].startswith(index.removesuffix("/simple/"))
    assert chosen["edgemath-lib"].endswith("/edgemath_lib-1.0.tar.gz"), chosen
    # build isolation installed edgeforge (and its dependencies) from the local index
    assert f"GET /packages/{EDGEFORGE_WHEEL}" in served_log(index_dir).read_text()
    assert "self-build of edgemath-lib 1.0 for linux-" in proc.stdout + proc.stderr
    out = run([str(python), "-c", "import edgemath, json; print(json.dumps("
               "[str(edgemath.library_path()), edgemath.dot([1, 2, 3], [4, 5, 6]), "
               "edgemath.version()]))"], cwd=tmp_path)
    library, dot, version = json.loads(out.stdout)
    assert Path(library).is_relative_to(tmp_path / "venv"), library
    assert dot == 32.0 and version == "1.0.0"
    installed = pip("list", "--format=json", python=python).stdout
    assert "edgeforge" not in installed  # a build requirement, not a dependency


def test_no_compiler_for_a_native_build_is_one_message(
        index: str, tmp_path: Path, edgeforge_cache: Path) -> None:
    python = make_venv(tmp_path / "venv")
    path = bin_dir_with(tmp_path, "cmake", "ninja")  # no cc, no c++
    env = cache_env(edgeforge_cache, PATH=str(path))
    env.pop("CC", None), env.pop("CXX", None)
    proc = install(python, index, "-C", "compiler=native", "edgemath-lib", check=False, env=env)
    assert proc.returncode != 0
    message = the_error(proc)
    assert message.startswith("edgeforge: the self-build of edgemath-lib 1.0 failed "
                              "(no wheel for this machine: x86_64"), message
    assert "a C/C++ compiler (cc, c++): apt-get install build-essential" in message, message
    assert "set EDGEMATH_LIBRARY=/path/to/the/library" in message, message
    assert "Traceback" not in proc.stdout + proc.stderr


def test_an_unknown_machine_without_a_compiler_is_one_message(
        index: str, index_dir: Path, tmp_path: Path, edgeforge_cache: Path) -> None:
    """``setarch i686``: the machine says i686, for which edgeforge ships no toolchain. pip's
    build isolation would want an i686 zig, so edgeforge is installed into the venv first
    (from the index) and the build runs without isolation."""
    setarch = shutil.which("setarch")
    if setarch is None:
        pytest.skip("setarch (util-linux) is not installed")
    python = make_venv(tmp_path / "venv")
    install(python, index, f"edgeforge=={__version__}", env=cache_env(edgeforge_cache))
    path = bin_dir_with(tmp_path, "cmake", "ninja")
    env = cache_env(edgeforge_cache, PATH=str(path))
    proc = run([setarch, "i686", str(python), "-m", "pip", "install", "--index-url", index,
                "--no-build-isolation", "edgemath-lib"], env=env, check=False)
    assert proc.returncode != 0
    message = the_error(proc)
    assert "(no wheel for this machine: i686" in message, message
    assert "edgeforge ships no toolchain for this machine (i686, glibc)" in message, message
    assert "a C/C++ compiler (cc, c++): apt-get install build-essential" in message, message
    assert "EDGEFORGE_TOOLCHAIN_PATH" in message, message
    assert "set EDGEMATH_LIBRARY=" in message, message


def test_no_cmake_without_build_isolation_is_one_message(
        index: str, tmp_path: Path, edgeforge_cache: Path) -> None:
    python = make_venv(tmp_path / "venv")
    install(python, index, f"edgeforge=={__version__}", env=cache_env(edgeforge_cache))
    path = bin_dir_with(tmp_path, "cc", "c++")  # no cmake, no ninja
    proc = install(python, index, "--no-build-isolation", "edgemath-lib", check=False,
                   env=cache_env(edgeforge_cache, PATH=str(path)))
    assert proc.returncode != 0
    message = the_error(proc)
    assert "cmake: apt-get install cmake (or pip install cmake)" in message, message
    assert "ninja: apt-get install ninja-build (or pip install ninja)" in message, message
    assert "Install what is missing and run pip again." in message, message


def test_a_sdist_for_another_edgeforge_is_refused_without_isolation(
        tmp_path: Path, fixture_recipe: Path, edgeforge_cache: Path) -> None:
    project = fixture_lib_project(tmp_path / "p", fixture_recipe, requires="edgeforge==0.0.9")
    proc = pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
               str(tmp_path / "w"), str(project), check=False, env=cache_env(edgeforge_cache))
    assert proc.returncode != 0
    message = the_error(proc)
    assert f"this project needs edgeforge==0.0.9 but edgeforge {__version__} is running" \
        in message, message


# --- the real TFLite library --------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_index_dir(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index plus tflite-edge (pure wheel) and tflite-edge-lib's sdist; no lib wheel."""
    scratch = tmp_path_factory.mktemp("tflite-edge")
    project = scratch / "tflite-edge"
    shutil.copytree(REPO / "wheels" / "tflite-edge", project,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project),
        "-w", str(index_dir))
    sdist = make_sdist(REPO / "wheels" / "tflite-edge-lib", index_dir)
    with tarfile.open(sdist) as tar:  # small: the recipe is the pinned edgeforge's
        assert len(tar.getnames()) == 3, tar.getnames()
    assert not list(index_dir.glob("tflite_edge_lib-*.whl"))
    return index_dir


@pytest.mark.slow
@pytest.mark.tflite
def test_pip_install_tflite_edge_self_builds_the_library_and_runs_a_model(
        tflite_index_dir: Path, index: str, tmp_path: Path, edgeforge_cache: Path) -> None:
    sys.path.insert(0, str(REPO / "tests" / "runtime"))
    try:
        import rt_support
    finally:
        sys.path.remove(str(REPO / "tests" / "runtime"))
    try:
        models = rt_support.mediapipe_models()
    except RuntimeError as err:
        skip_or_fail(f"no mediapipe models: {err}")
    python = make_venv(tmp_path / "venv")
    report = tmp_path / "report.json"
    install(python, index, "--report", str(report), "tflite-edge",
            env=cache_env(edgeforge_cache), timeout=3600)
    chosen = {i["metadata"]["name"]: i["download_info"]["url"].rsplit("/", 1)[-1]
              for i in json.loads(report.read_text())["install"]}
    assert chosen["tflite-edge-lib"] == f"tflite_edge_lib-{TFLITE_VERSION}.tar.gz", chosen
    assert chosen["tflite-edge"] == f"tflite_edge-{TFLITE_VERSION}-py3-none-any.whl", chosen
    # The recipe's own smoke script (XNNPACK and reference kernels on a mediapipe model).
    smoke = REPO / "src" / "edgeforge" / "recipes" / "smoke" / "tflite_smoke.py"
    proc = run([str(python), str(smoke)], cwd=tmp_path,
               env=pip_env(EDGEFORGE_SOURCE_MEDIAPIPE=str(
                   models["face_detection_short_range"].parent)))
    result = json.loads(proc.stdout)
    assert result["library"] == "libtensorflowlite_c.so", result
    fast, ref = result["xnnpack"], result["reference_kernels"]
    assert sorted(fast) == sorted(ref) and len(fast) == 2, result
    for name, out in fast.items():
        assert out["shape"] in ([1, 896, 16], [1, 896, 1]), out
        assert abs(out["sum"] - ref[name]["sum"]) <= 1e-3 * max(1.0, abs(ref[name]["sum"])), \
            (name, out, ref[name])
    where = run([str(python), "-c", "import tflite_edge_lib as t; print(t.library_path())"],
                cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where
