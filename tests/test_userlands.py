"""One wheel for every Python, proven with each userland's own installer.

Each row but the free-threaded one (below) is a Debian userland unpacked from Debian's own
packages (edgeforge.smoke.roots; no docker): its interpreter and its pip (Debian's python3-pip
of the same suite) install ``tflite-edge`` offline from one local wheel directory that holds
the pure wheel and the ``tflite-edge-lib`` wheels of several platforms. No ``--platform``: the
interpreter's own tag logic (its glibc, machine and implementation) must choose our wheel. Then
the recipe's smoke script runs a real mediapipe model (face_detection_short_range, XNNPACK and
the reference kernels) in that userland, and its outputs must match the host's.

Rows: CPython 3.9 / glibc 2.31 / numpy 1.19 / pip 20.3 (bullseye), 3.11 (bookworm), 3.13 with
numpy 2 (trixie), PyPy 3.11 (trixie's ``pypy3``; Debian has no numpy for PyPy, so numpy comes
from PyPI through the host's ``pip download`` into the wheel directory), natively through the
root's own loader; bullseye armhf (Raspberry Pi OS bullseye's base) and trixie arm64 under
qemu-user (``slow``). Free-threaded CPython 3.13 (``python3.13t``, the GIL off): no registry
reachable here carries a binary one (edgeforge.smoke.freethreaded says what was looked up), so
it is built once into the cache from the CPython source in Debian's archive (trixie's python3.13
orig tarball, ``--disable-gil``) and runs on the host's own glibc; its own pip (ensurepip's)
takes our wheel and numpy's ``cp313t`` wheel from PyPI (downloaded by the host's pip into the
wheel directory, as for PyPy).

The host's wheel is the pipeline's (``$EDGEFORGE_TFLITE_WHEEL_DIR``, set by ci/test.sh). The
aarch64/armv7l TFLite wheels come from ``$EDGEFORGE_CROSS_WHEEL_DIR`` (ci/test.sh cross-builds
them; 8-16 minutes each cold); without it those rows skip, or fail in CI
(EDGEFORGE_REQUIRE_TFLITE). The same QEMU rows
also run with the fixture library (edgemath-lib, built in seconds): pip's choice by tag is the
same there, so it stays proven in every run. Each module run prints its table (docs/install.md
records one).
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from edgeforge_testing import (
    REPO,
    TFLITE_VERSION,
    pipeline_host_wheel,
    run_edgeforge,
    skip_or_fail,
)
from install_support import pip

from edgeforge.compare import differences
from edgeforge.errors import SmokeError
from edgeforge.fsutil import file_lock
from edgeforge.log import Logger
from edgeforge.pipeline import BuildOptions, smoke_env, wheel_filename
from edgeforge.recipe import RECIPES_DIR, Recipe, load_recipe
from edgeforge.smoke import qemu
from edgeforge.smoke.check import host_output, parse_json_output
from edgeforge.smoke.freethreaded import ensure_free_threaded_python
from edgeforge.smoke.roots import DebianRoot, ensure_root
from edgeforge.toolchain import TOOLCHAINS_DIR, Toolchain, load_toolchain
from edgeforge.wheel import WheelSpec, write_wheel

CROSS_WHEEL_DIR_ENV = "EDGEFORGE_CROSS_WHEEL_DIR"  # tflite_edge_lib aarch64/armv7l wheels
CPYTHON = ("python3", "python3-numpy", "python3-pip")
# numpy for trixie's PyPy 3.11 (Debian has no pypy3-numpy) and the free-threaded CPython 3.13:
# PyPI's wheels, by the host's pip.
PYPI_NUMPY = "numpy==2.4.6"
PYPY_NUMPY_TAGS = ("3.11", "pp", "pypy311_pp73", "manylinux_2_28_x86_64")
FREE_THREADED_NUMPY_TAGS = ("3.13", "cp", "cp313t", "manylinux_2_28_x86_64")


@dataclass(frozen=True)
class Userland:
    id: str
    suite: str
    debian_arch: str
    target: str  # the edgeforge target whose wheel this userland's pip must choose
    packages: tuple[str, ...] = CPYTHON
    python: str | None = None  # the interpreter inside the root; None: the root's python3
    pypi_numpy: bool = False  # numpy from the wheel directory, not Debian

    def __str__(self) -> str:
        return self.id


HOST_ROWS = (
    Userland("bullseye-amd64", "bullseye", "amd64", "linux-x86_64"),
    Userland("bookworm-amd64", "bookworm", "amd64", "linux-x86_64"),
    Userland("trixie-amd64", "trixie", "amd64", "linux-x86_64"),
    # Debian's pypy3 sees /usr/lib/python3/dist-packages, so `pypy3 -m pip` is Debian's pip;
    # no python3-numpy in this root (pip would count CPython's numpy as installed).
    Userland("trixie-amd64-pypy3", "trixie", "amd64", "linux-x86_64", ("pypy3", "python3-pip"),
             python="/usr/bin/pypy3", pypi_numpy=True),
)
QEMU_ROWS = (
    Userland("bullseye-armhf", "bullseye", "armhf", "linux-armv7l"),
    Userland("trixie-arm64", "trixie", "arm64", "linux-aarch64"),
)

# Run in the userland before the smoke script: what the row's table line says, from the
# interpreter itself. argv: the smoke script.
FACTS = """
import json, os, platform, runpy, sys
try:
    import numpy
except ImportError:
    numpy = None
gil = getattr(sys, "_is_gil_enabled", None)
print(json.dumps({"userland": {
    "implementation": platform.python_implementation(), "python": platform.python_version(),
    "free_threaded": gil is not None and not gil(),
    "numpy": numpy and numpy.__version__, "numpy_file": numpy and numpy.__file__,
    "glibc": os.confstr("CS_GNU_LIBC_VERSION"), "machine": platform.machine()}}))
sys.stdout.flush()
runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass(frozen=True)
class Variant:
    """What a row installs and runs: the real TFLite runtime, or the fixture library."""

    recipe: Recipe
    requirement: str  # what the userland's pip is asked for
    wheel_dir: Path  # the local wheel directory (every platform's wheels)
    reference: dict[str, Any]  # the host's smoke output
    data_env: dict[str, str]  # EDGEFORGE_SOURCE_* for the smoke script
    what: str  # what the smoke script runs, for the table

    def expected(self, toolchain: Toolchain) -> set[str]:
        wanted = {wheel_filename(self.recipe, toolchain)}
        if self.requirement == "tflite-edge":
            wanted.add(f"tflite_edge-{TFLITE_VERSION}-py3-none-any.whl")
        return wanted


@dataclass(frozen=True)
class Row:
    userland: str
    python: str
    numpy: str
    glibc: str
    pip: str
    chosen: str
    result: str
    seconds: str  # pip install, then the model run


# --------------------------------------------------------------------------- shared inputs


@pytest.fixture(scope="module")
def logger() -> Logger:
    return Logger(stream=sys.stderr)


@pytest.fixture(scope="module")
def userland_root(edgeforge_cache: Path, logger: Logger
                  ) -> Callable[[Userland], tuple[DebianRoot, Toolchain]]:
    """The row's Debian root (cached under the edgeforge cache by its packages' hashes)."""
    def get(userland: Userland) -> tuple[DebianRoot, Toolchain]:
        toolchain = load_toolchain(TOOLCHAINS_DIR / f"{userland.target}.toml")
        root = ensure_root(userland.debian_arch, userland.suite, userland.packages,
                           edgeforge_cache, logger, emulator=qemu.qemu_command(toolchain))
        return root, toolchain
    return get


@pytest.fixture(scope="module")
def matrix(request: pytest.FixtureRequest) -> Iterator[list[Row]]:
    """The rows that ran; printed as a table when the module is done."""
    rows: list[Row] = []
    yield rows
    if not rows:
        return
    header = ("userland", "Python", "numpy", "glibc", "pip", "wheel the userland's pip chose",
              "model result", "seconds (pip, run)")
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"userland matrix ({today}, {platform.machine()} host):",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join((r.userland, r.python, r.numpy, r.glibc, r.pip, r.chosen,
                                 r.result, r.seconds)) + " |" for r in rows]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # to the terminal, -s or not
        print("\n" + "\n".join(lines), flush=True)


def _pure_wheel(out: Path, scratch: Path) -> Path:
    """tflite-edge's pure wheel, built by pip from a copy (setuptools writes into the project)."""
    project = scratch / "tflite-edge"
    shutil.copytree(REPO / "wheels" / "tflite-edge", project,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project), "-w", str(out))
    return next(out.glob(f"tflite_edge-{TFLITE_VERSION}-py3-none-any.whl"))


def _pypi_numpy(cache: Path, out: Path, tags: tuple[str, str, str, str]) -> Path:
    """PyPI's numpy wheel for ``tags`` (python, implementation, abi, platform), downloaded once
    into the edgeforge cache."""
    store = cache / "userland-wheels"
    python, implementation, abi, platform_tag = tags
    pattern = (f"numpy-{PYPI_NUMPY.split('==')[1]}-{implementation}{python.replace('.', '')}-"
               f"{abi}-*.whl")
    with file_lock(cache / "userland-wheels.lock", "the userland wheels"):
        if not any(store.glob(pattern)):
            pip("download", "--no-deps", "--only-binary=:all:", "--python-version", python,
                "--implementation", implementation, "--abi", abi, "--platform", platform_tag,
                "-d", str(store), PYPI_NUMPY, timeout=600)
    found = sorted(store.glob(pattern))
    assert found, f"pip download {PYPI_NUMPY} put no {pattern} into {store}"
    shutil.copy2(found[-1], out / found[-1].name)
    return out / found[-1].name


def _reference(recipe: Recipe, host_wheel: Path, cache: Path, work: Path,
               logger: Logger) -> tuple[dict[str, Any], dict[str, str]]:
    """The host's smoke output, as the pipeline computes it, and the data the script reads."""
    host = load_toolchain(TOOLCHAINS_DIR / "linux-x86_64.toml")
    extra = smoke_env(recipe, host, BuildOptions(cache_dir=cache, dist_dir=work), logger)
    data = {k: v for k, v in extra.items() if k.startswith("EDGEFORGE_SOURCE_")}
    return host_output(recipe, host_wheel, work, extra), data


@pytest.fixture(scope="module")
def tflite(edgeforge_cache: Path, logger: Logger,
           tmp_path_factory: pytest.TempPathFactory) -> Variant:
    """The real runtime: pure wheel, the pipeline's host wheel, the cross wheels if given,
    numpy for PyPy and for the free-threaded CPython, all in one directory."""
    if platform.machine() != "x86_64":
        pytest.skip("the host rows are amd64 userlands: run on an x86_64 host")
    host_wheel = pipeline_host_wheel()
    if host_wheel is None:
        skip_or_fail("EDGEFORGE_TFLITE_WHEEL_DIR is not set: no pipeline-built tflite-edge-lib "
                     "wheel for the host (ci/test.sh sets it)")
        raise AssertionError("unreachable")
    wheels = tmp_path_factory.mktemp("tflite-wheels")
    _pure_wheel(wheels, tmp_path_factory.mktemp("scratch"))
    shutil.copy2(host_wheel, wheels / host_wheel.name)
    cross = os.environ.get(CROSS_WHEEL_DIR_ENV)
    if cross:
        for wheel in Path(cross).glob(f"tflite_edge_lib-{TFLITE_VERSION}-py3-none-*.whl"):
            shutil.copy2(wheel, wheels / wheel.name)
    for tags in (PYPY_NUMPY_TAGS, FREE_THREADED_NUMPY_TAGS):
        _pypi_numpy(edgeforge_cache, wheels, tags)
    recipe = load_recipe(RECIPES_DIR / "tflite.toml")
    reference, data = _reference(recipe, host_wheel, edgeforge_cache,
                                 tmp_path_factory.mktemp("tflite-host"), logger)
    return Variant(recipe, "tflite-edge", wheels, reference, data,
                   "face_detection_short_range, XNNPACK and reference kernels")


@pytest.fixture(scope="module")
def fixture_lib(fixture_recipe: Path, edgeforge_cache: Path, logger: Logger,
                tmp_path_factory: pytest.TempPathFactory) -> Variant:
    """edgemath-lib's wheels for the host and the QEMU rows' targets, in one directory."""
    wheels = tmp_path_factory.mktemp("edgemath-wheels")
    targets = ("linux-x86_64", *sorted({u.target for u in QEMU_ROWS}))
    args = ["build", str(fixture_recipe), "--no-smoke", "--dist", str(wheels)]
    for target in targets:
        args += ["--target", target]
    proc = run_edgeforge(*args, cache=edgeforge_cache)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    recipe = load_recipe(fixture_recipe)
    host = load_toolchain(TOOLCHAINS_DIR / "linux-x86_64.toml")
    reference, data = _reference(recipe, wheels / wheel_filename(recipe, host), edgeforge_cache,
                                 tmp_path_factory.mktemp("edgemath-host"), logger)
    return Variant(recipe, "edgemath-lib", wheels, reference, data,
                   "the fixture's smoke.py (threads, exceptions, float math)")


# --------------------------------------------------------------------------- one row


def _debian_version(root: DebianRoot, package: str) -> str:
    for p in root.info()["packages"]:  # type: ignore[attr-defined]
        if p["package"] == package:
            return str(p["version"])
    return "-"


def run_row(userland: Userland, variant: Variant, root: DebianRoot, toolchain: Toolchain,
            work: Path, matrix: list[Row]) -> None:
    """Install with the userland's pip, run the smoke script, compare with the host."""
    python = userland.python or str(root.python)
    started = time.monotonic()
    installed = qemu.install_with_root_pip(root, toolchain, [variant.requirement],
                                           variant.wheel_dir, work / "prefix", python=python)
    _check_choice(str(userland), variant, toolchain, installed, userland.pypi_numpy)
    pip_seconds = time.monotonic() - started
    proc = qemu.run_in_root(root, toolchain, [python, "-c", FACTS, str(_script(variant))],
                            env=_run_env(variant, installed), timeout=variant.recipe.smoke.timeout)
    run_seconds = time.monotonic() - started - pip_seconds
    facts = _facts_matching_host(str(userland), variant, proc)

    # what ran is what the row claims
    assert facts["machine"] == toolchain.arch, facts
    if userland.pypi_numpy:
        assert facts["implementation"] == "PyPy", facts
    else:
        assert facts["implementation"] == "CPython", facts
        debian_site = str(root.path / "usr/lib/python3/dist-packages")
        assert (facts["numpy_file"] or "").startswith(debian_site), \
            f"{userland} imported numpy from {facts['numpy_file']}, not Debian's python3-numpy"
    assert facts["glibc"] == "glibc " + _debian_version(root, "libc6").split("-")[0], facts
    lib = next(c for c in installed.chosen if c.startswith(variant.recipe.wheel.distribution
                                                           .replace("-", "_")))
    numpy_from = "PyPI" if userland.pypi_numpy else "Debian"
    how = "QEMU" if toolchain.smoke.qemu else "native"
    matrix.append(Row(
        userland=f"Debian {userland.suite} {userland.debian_arch} ({how})",
        python=f"{facts['implementation']} {facts['python']}"
               + (" free-threaded" if facts["free_threaded"] else ""),
        numpy=f"{facts['numpy']} ({numpy_from})",
        glibc=facts["glibc"].split()[-1],
        pip=re.sub(r"\+.*|-.*", "", _debian_version(root, "python3-pip")),
        chosen=lib,
        result=_result(variant),
        seconds=f"{pip_seconds:.0f}, {run_seconds:.0f}"))


def _check_choice(where: str, variant: Variant, toolchain: Toolchain,
                  installed: qemu.RootInstall, numpy_from_pypi: bool) -> None:
    """The userland's pip took our wheels, and numpy from the wheel directory (PyPI's) exactly
    when the row has none of its own."""
    chosen = set(installed.chosen)
    expected = variant.expected(toolchain)
    assert expected <= chosen, (
        f"{where}'s pip chose {sorted(chosen)}, not {sorted(expected)}; the wheel directory "
        f"held {sorted(p.name for p in variant.wheel_dir.iterdir())}:\n{installed.output}")
    numpy_wheels = {c for c in chosen if c.startswith("numpy-")}
    assert bool(numpy_wheels) == (numpy_from_pypi and variant.requirement == "tflite-edge"), (
        f"numpy should come from {'PyPI' if numpy_from_pypi else 'Debian'}: {chosen}")


def _script(variant: Variant) -> Path:
    return variant.recipe.directory / variant.recipe.smoke.script  # type: ignore[operator]


def _run_env(variant: Variant, installed: qemu.RootInstall) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(map(str, installed.site_dirs)), **variant.data_env}


def _facts_matching_host(where: str, variant: Variant,
                         proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The FACTS line of the run; its smoke output must match the host's."""
    name = _script(variant).name
    assert proc.returncode == 0, f"{name} in {where}:\n{proc.stdout}\n{proc.stderr}"
    facts: dict[str, Any] = parse_json_output(proc.stdout.splitlines()[0],
                                              "the userland facts")["userland"]
    output = parse_json_output(proc.stdout, name)
    mismatches = differences(output, variant.reference, variant.recipe.smoke.tolerance,
                             ignore=variant.recipe.smoke.ignore_keys)
    assert not mismatches, f"{where} differs from the host:\n" + "\n".join(mismatches)
    return facts


def _result(variant: Variant) -> str:
    return f"{variant.what}: matches the host (tolerance {variant.recipe.smoke.tolerance:g})"


# --------------------------------------------------------------------------- the matrix

_SLOW = pytest.mark.slow  # QEMU rows: minutes
CASES = [
    *(pytest.param("tflite", u, id=f"tflite-{u}") for u in HOST_ROWS),
    *(pytest.param("tflite", u, id=f"tflite-{u}", marks=_SLOW) for u in QEMU_ROWS),
    *(pytest.param("fixture_lib", u, id=f"edgemath-{u}", marks=_SLOW) for u in QEMU_ROWS),
]


@pytest.mark.parametrize(("variant_name", "userland"), CASES)
def test_userlands_own_pip_picks_our_wheel_and_the_model_matches_the_host(
        variant_name: str, userland: Userland, request: pytest.FixtureRequest, tmp_path: Path,
        matrix: list[Row], userland_root: Callable[[Userland], tuple[DebianRoot, Toolchain]]
) -> None:
    variant: Variant = request.getfixturevalue(variant_name)
    toolchain = load_toolchain(TOOLCHAINS_DIR / f"{userland.target}.toml")
    wanted = wheel_filename(variant.recipe, toolchain)
    if not (variant.wheel_dir / wanted).is_file():
        skip_or_fail(f"no {wanted}: set {CROSS_WHEEL_DIR_ENV} to a directory holding it "
                     "(ci/test.sh cross-builds it; the edgemath rows prove pip's choice on "
                     "this userland)")
    root, toolchain = userland_root(userland)
    run_row(userland, variant, root, toolchain, tmp_path, matrix)


def test_glibc_floor_is_the_userlands_own(userland_root: Callable[[Userland],
                                                                  tuple[DebianRoot, Toolchain]],
                                          tmp_path: Path) -> None:
    """A manylinux_2_34 wheel (tflite-runtime 2.14.0's ARM floor) is refused by bullseye's
    pip 20.3 (glibc 2.31) and taken by bookworm's (2.36): the rows' choice is really made by
    each userland's glibc, not by the host's."""
    payload = tmp_path / "probe.py"
    payload.write_text("VALUE = 1\n")
    spec = WheelSpec("edgeforge-glibc-probe", "1.0", ("manylinux_2_34_x86_64",))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = write_wheel(spec, {"edgeforge_glibc_probe.py": payload}, wheels)
    bullseye, bookworm = HOST_ROWS[0], HOST_ROWS[1]
    root, toolchain = userland_root(bullseye)
    with pytest.raises(SmokeError, match="No matching distribution found for "
                                         "edgeforge-glibc-probe"):
        qemu.install_with_root_pip(root, toolchain, ["edgeforge-glibc-probe"], wheels,
                                   tmp_path / "bullseye")
    root, toolchain = userland_root(bookworm)
    installed = qemu.install_with_root_pip(root, toolchain, ["edgeforge-glibc-probe"], wheels,
                                           tmp_path / "bookworm")
    assert installed.chosen == (wheel.name,), installed.output


def test_free_threaded_cpython_own_pip_picks_our_wheel_and_the_model_matches_the_host(
        tflite: Variant, edgeforge_cache: Path, logger: Logger, tmp_path: Path,
        matrix: list[Row]) -> None:
    """CPython 3.13 built with --disable-gil (no registry here carries a binary one): its own
    pip takes the host wheel by its tags (``cp313t`` is no tag of ours: ``py3-none`` serves
    it) and numpy's ``cp313t`` wheel, and the model matches the host with the GIL off."""
    python = ensure_free_threaded_python(edgeforge_cache, logger)
    host = load_toolchain(TOOLCHAINS_DIR / "linux-x86_64.toml")
    started = time.monotonic()
    installed = qemu.install_with_own_pip(python, [tflite.requirement], tflite.wheel_dir,
                                          tmp_path / "prefix")
    _check_choice("the free-threaded CPython", tflite, host, installed, numpy_from_pypi=True)
    assert any("-cp313t-" in c for c in installed.chosen if c.startswith("numpy-")), \
        installed.chosen
    pip_seconds = time.monotonic() - started
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "PYTHONNOUSERSITE": "1",
           **_run_env(tflite, installed)}
    proc = subprocess.run([str(python), "-c", FACTS, str(_script(tflite))], env=env,
                          capture_output=True, text=True, timeout=tflite.recipe.smoke.timeout,
                          check=False)
    run_seconds = time.monotonic() - started - pip_seconds
    facts = _facts_matching_host("the free-threaded CPython", tflite, proc)
    assert facts["implementation"] == "CPython" and facts["free_threaded"], facts
    assert facts["numpy_file"].startswith(str(tmp_path / "prefix")), facts
    assert facts["glibc"] == os.confstr("CS_GNU_LIBC_VERSION"), facts  # the host's own
    pip_version = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True,
                                 text=True, check=True, env=env).stdout.split()[1]
    lib = next(c for c in installed.chosen if c.startswith("tflite_edge_lib-"))
    os_release = platform.freedesktop_os_release()
    matrix.append(Row(
        userland=f"the host, {os_release.get('PRETTY_NAME', 'Linux')} (native; CPython built "
                 "from Debian trixie's python3.13 source, --disable-gil)",
        python=f"CPython {facts['python']} free-threaded (GIL off)",
        numpy=f"{facts['numpy']} (PyPI, cp313t)",
        glibc=facts["glibc"].split()[-1],
        pip=f"{pip_version} (its ensurepip)",
        chosen=lib,
        result=_result(tflite),
        seconds=f"{pip_seconds:.0f}, {run_seconds:.0f}"))
