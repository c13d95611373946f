"""Builds that share a cache: two real edgeforge processes at once on one target, and builds
killed half-way (SIGTERM or SIGKILL mid-compile, Ctrl-C mid-configure, SIGTERM mid-download)
followed by a run that must not trust what they left.

Everything runs the real CLI in subprocesses (real zig, CMake, ninja, QEMU smoke, a real HTTP
server on 127.0.0.1). The session's zig, ccache and Debian roots are shared where a test is
not about them: a "fresh" cache here has its own downloads and extracted sources (what the
concurrent builds race for) and links the compiler caches and smoke roots of the session's.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeforge_testing import FIXTURES

from edgeforge.toolchain import resolve_target

AARCH64_WHEEL = "edgemath_lib-1.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
HOST = resolve_target(None)
HOST_WHEEL = f"edgemath_lib-1.0-py3-none-{HOST.platform_tag}.whl"
# What the session cache shares with a fresh one: compiler caches and smoke roots (slow to
# make, built for concurrent use, and not what these tests are about).
SHARED_CACHE_DIRS = ("zig", "zig-local", "zig-install", "ccache", "roots", "apt")
TEMP_NAME = re.compile(r"^\..*\.(tmp|part|old)$|\.tmp$|\.part$")
TIMEOUT = 1800


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fresh_cache(base: Path, session: Path) -> Path:
    cache = base / "cache"
    cache.mkdir()
    for name in SHARED_CACHE_DIRS:
        (session / name).mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(session / name, target_is_directory=True)
    return cache


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], cache: Path, out: Path, cwd: Path,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "EDGEFORGE_CACHE": str(cache), **(env or {})}
    with out.open("wb") as f:
        # SIGINT as a terminal gives it: a shell without job control starts background
        # commands with SIGINT ignored, and Python keeps an inherited SIG_IGN, so a test run
        # from such a shell (as CI may be) would otherwise send a signal edgeforge never sees.
        return subprocess.Popen([sys.executable, "-m", "edgeforge", *args], stdout=f,
                                stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
                                preexec_fn=_default_sigint)


def _finish(proc: subprocess.Popen[bytes], out: Path) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return code, out.read_text(errors="replace")


def _build_pair(recipe: Path, target: str, cache: Path, work: Path, dists: tuple[Path, Path],
                tmp: Path) -> list[tuple[int, int, str]]:
    """Two builds of ``target`` started at once; (pid, exit code, output) of each."""
    procs = []
    for i, dist in enumerate(dists):
        out = tmp / f"build{i}.log"
        args = ["build", str(recipe), "--target", target, "--dist", str(dist),
                "--work-dir", str(work)]
        procs.append((_start(args, cache, out, tmp), out))
    return [(p.pid, *_finish(p, out)) for p, out in procs]


def _waited_for(results: list[tuple[int, int, str]], target: str) -> tuple[str, str]:
    """The output of the build that waited (it names the other's pid), and the other's."""
    (pid_a, _, out_a), (pid_b, _, out_b) = results
    wait = f"waiting for the work directory of edgemath 1.0 for {target}: process {{}} holds"
    a_waited, b_waited = wait.format(pid_b) in out_a, wait.format(pid_a) in out_b
    assert a_waited != b_waited, ("exactly one build must wait for the other, by pid:\n"
                                  f"--- {pid_a}:\n{out_a[-3000:]}\n--- {pid_b}:\n{out_b[-3000:]}")
    return (out_a, out_b) if a_waited else (out_b, out_a)


def _temp_files(*roots: Path) -> list[Path]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            found += [Path(dirpath, n) for n in dirnames + filenames if TEMP_NAME.search(n)]
    return found


def _processes_under(path: Path) -> list[str]:
    """Command lines of running processes that mention ``path`` (a build left running)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if str(path) in text and state != "Z":
            found.append(text)
    return found


def _wait_for(predicate, what: str, proc: subprocess.Popen[bytes], out: Path,
              timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the build ended (exit {proc.returncode}) before {what}:\n"
                        f"{out.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_two_aarch64_builds_at_once_on_a_fresh_cache(fixture_recipe: Path, edgeforge_cache: Path,
                                                      tmp_path: Path) -> None:
    """Both finish with identical wheels; the second waited for the first by pid, then found
    the first's build directory up to date."""
    cache = _fresh_cache(tmp_path, edgeforge_cache)
    work = tmp_path / "work"
    dists = (tmp_path / "dist0", tmp_path / "dist1")
    results = _build_pair(fixture_recipe, "linux-aarch64", cache, work, dists, tmp_path)
    for pid, code, out in results:
        assert code == 0, f"build {pid} failed:\n{out[-6000:]}"
    waiter, first = _waited_for(results, "linux-aarch64")
    assert "build: [" in first and "build: [" not in waiter, "the second build compiled again"
    # the host reference: built once, then vouched for by its wheel.complete
    reference = "build the host reference"
    assert reference in first and reference not in waiter, waiter[-3000:]
    build_log = (work / "edgemath-1.0" / "linux-aarch64-zig" / "build.log").read_text()
    assert "ninja: no work to do." in build_log, build_log[-2000:]
    assert first.count("outputs match the host's") == waiter.count("outputs match the host's") == 1
    wheels = [d / AARCH64_WHEEL for d in dists]
    assert _sha(wheels[0]) == _sha(wheels[1])
    assert (cache / "downloads").is_dir() and not _temp_files(cache / "downloads", cache / "src",
                                                              work, *dists)


@pytest.fixture(scope="module")
def host_pair(fixture_recipe: Path, edgeforge_cache: Path,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int, str]]]:
    """Two host builds at once, in a fresh work directory, into one shared dist directory."""
    tmp = tmp_path_factory.mktemp("host-pair")
    dist = tmp / "dist"
    results = _build_pair(fixture_recipe, HOST.name, edgeforge_cache, tmp / "work",
                          (dist, dist), tmp)
    return dist, results


@pytest.mark.slow
def test_two_host_builds_at_once_share_a_dist(host_pair: tuple[Path, list]) -> None:
    dist, results = host_pair
    for pid, code, out in results:
        assert code == 0, f"build {pid} failed:\n{out[-6000:]}"
        assert f"{HOST.name}: {dist / HOST_WHEEL} (audit: " in out
    _waited_for(results, HOST.name)
    assert sorted(p.name for p in dist.iterdir()) == [HOST_WHEEL]  # no temporary left over
    work = dist.parent / "work" / "edgemath-1.0" / f"{HOST.name}-{HOST.backend}"
    assert _sha(dist / HOST_WHEEL) == _sha(work / "wheelhouse" / HOST_WHEEL)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_kill_mid_compile_then_a_rerun_builds_the_clean_wheel(
        fixture_recipe: Path, edgeforge_cache: Path, tmp_path: Path,
        host_pair: tuple[Path, list], sig: signal.Signals) -> None:
    """SIGTERM while ninja compiles: edgeforge stops the build's processes, removes its
    temporary files and exits 143. SIGKILL: Linux tells the build (ninja) to stop. Either way
    nothing of the build runs on, and the rerun recompiles what was cut off into a wheel
    byte-identical to a clean build's. No compiler cache: every compile really runs."""
    clean_dist, _ = host_pair
    work, dist = tmp_path / "work", tmp_path / "dist"
    args = ["build", str(fixture_recipe), "--dist", str(dist), "--work-dir", str(work)]
    env = {"CCACHE_DISABLE": "1"}
    out = tmp_path / "killed.log"
    proc = _start(args, edgeforge_cache, out, tmp_path, env)
    build_log = work / "edgemath-1.0" / f"{HOST.name}-{HOST.backend}" / "build.log"
    _wait_for(lambda: build_log.is_file() and "\n[1/" in build_log.read_text(),
              "ninja's first progress line", proc, out)
    proc.send_signal(sig)
    code, output = _finish(proc, out)
    if sig == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM, output[-3000:]
        assert "edgeforge: terminated (SIGTERM)" in output and "Traceback" not in output
        assert "edgeforge: build stopped (interrupted)" in build_log.read_text(), \
            "the SIGTERM did not land mid-compile"
        assert not _processes_under(work), "the build's processes outlived edgeforge"
        assert not _temp_files(work)
    else:
        assert code == -signal.SIGKILL and "[4/4]" not in build_log.read_text()
        deadline = time.monotonic() + 30
        while _processes_under(work) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _processes_under(work), "the build ran on after edgeforge was killed"
        # what a SIGKILL in the stage step would leave too (no `finally` runs): a half tree
        # under its temporary name
        half_stage = build_log.parent / ".stage.killed.tmp"
        (half_stage / "edgemath" / "lib").mkdir(parents=True)
        (half_stage / "edgemath" / "lib" / "libedgemath.so").write_bytes(b"\x7fELF")
    assert not dist.exists()

    rerun = tmp_path / "rerun.log"
    code, output = _finish(_start(args, edgeforge_cache, rerun, tmp_path, env), rerun)
    assert code == 0, output[-6000:]
    assert not _temp_files(work), _temp_files(work)
    assert "[4/4]" not in build_log.read_text(), "the rerun redid the compiles that had finished"
    assert _sha(dist / HOST_WHEEL) == _sha(clean_dist / HOST_WHEEL)


@pytest.mark.slow
def test_sigint_mid_configure_then_a_rerun_starts_a_clean_build_directory(
        fixture_recipe: Path, edgeforge_cache: Path, tmp_path: Path,
        host_pair: tuple[Path, list]) -> None:
    """Ctrl-C while CMake configures: no ``configured-from`` marker is left, so the rerun
    does not trust the half-written CMake cache; it starts a clean build directory."""
    clean_dist, _ = host_pair
    work, dist = tmp_path / "work", tmp_path / "dist"
    args = ["build", str(fixture_recipe), "--dist", str(dist), "--work-dir", str(work)]
    out = tmp_path / "killed.log"
    proc = _start(args, edgeforge_cache, out, tmp_path)
    host_work = work / "edgemath-1.0" / f"{HOST.name}-{HOST.backend}"
    build_log = host_work / "build.log"
    _wait_for(lambda: build_log.is_file() and "-- Detecting C" in build_log.read_text(),
              "CMake's compiler checks", proc, out)
    proc.send_signal(signal.SIGINT)
    code, output = _finish(proc, out)
    assert code == 130, output[-3000:]
    assert "edgeforge: interrupted" in output and "Traceback" not in output
    log = build_log.read_text()
    assert "edgeforge: cmake configure stopped (interrupted)" in log, log[-2000:]
    assert (host_work / "build").is_dir() and not (host_work / "configured-from").exists()
    assert not _processes_under(work) and not _temp_files(work)

    rerun = tmp_path / "rerun.log"
    code, output = _finish(_start(args, edgeforge_cache, rerun, tmp_path), rerun)
    assert code == 0, output[-6000:]
    assert "the last configure did not finish: starting a clean build directory" in output
    assert _sha(dist / HOST_WHEEL) == _sha(clean_dist / HOST_WHEEL)


class _SlowServer(http.server.ThreadingHTTPServer):
    """Serves one file; slowly (64 bytes every 50 ms) until ``slow`` is cleared."""

    daemon_threads = True

    def __init__(self, payload: bytes):
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.payload = payload
        self.slow = threading.Event()
        self.slow.set()
        self.started = threading.Event()  # some bytes went out
        self.requests = 0


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    server: _SlowServer

    def do_GET(self) -> None:
        self.server.requests += 1
        data = self.server.payload
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            for start in range(0, len(data), 64):
                self.wfile.write(data[start:start + 64])
                self.wfile.flush()
                self.server.started.set()
                if self.server.slow.is_set():
                    time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server(fixture_recipe: Path) -> Iterator[_SlowServer]:
    server = _SlowServer((fixture_recipe.parent / "edgemath-1.0.tar").read_bytes())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _served_recipe(fixture_recipe: Path, server: _SlowServer, directory: Path) -> Path:
    """The fixture recipe, its source on the test's HTTP server (the rest of the recipe's
    files through a link to the fixture directory)."""
    directory.mkdir()
    (directory / "edgemath").symlink_to(FIXTURES / "edgemath", target_is_directory=True)
    url = f"http://127.0.0.1:{server.server_address[1]}/edgemath-1.0.tar"
    text = fixture_recipe.read_text()
    assert text.count("file://{recipe_dir}/edgemath-1.0.tar") == 1
    recipe = directory / "edgemath.toml"
    recipe.write_text(text.replace("file://{recipe_dir}/edgemath-1.0.tar", url))
    return recipe


@pytest.mark.slow
def test_sigterm_mid_download_then_a_rerun_downloads_again(
        fixture_recipe: Path, edgeforge_cache: Path, tmp_path: Path,
        slow_server: _SlowServer) -> None:
    """A download killed half-way leaves no file the next run could take for the archive;
    the rerun downloads it whole, checks it and builds."""
    cache = _fresh_cache(tmp_path, edgeforge_cache)
    recipe = _served_recipe(fixture_recipe, slow_server, tmp_path / "recipe")
    work, dist = tmp_path / "work", tmp_path / "dist"
    args = ["build", str(recipe), "--dist", str(dist), "--work-dir", str(work)]
    out = tmp_path / "killed.log"
    proc = _start(args, cache, out, tmp_path)
    _wait_for(slow_server.started.is_set, "the download to start", proc, out, timeout=120)
    time.sleep(0.5)  # a few hundred bytes in
    proc.send_signal(signal.SIGTERM)
    code, output = _finish(proc, out)
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert "edgeforge: terminated (SIGTERM)" in output and "Traceback" not in output
    downloads = cache / "downloads"
    left = sorted(str(p.relative_to(downloads)) for p in downloads.rglob("*") if p.is_file()
                  and not p.name.endswith(".lock"))
    assert left == [], f"the killed download left {left}"
    assert not (cache / "src").exists() or not any((cache / "src").iterdir())

    slow_server.slow.clear()
    rerun = tmp_path / "rerun.log"
    code, output = _finish(_start(args, cache, rerun, tmp_path), rerun)
    assert code == 0, output[-6000:]
    assert slow_server.requests == 2
    size = len(slow_server.payload)
    assert f"fetched edgemath-1.0.tar ({size} bytes, sha256 ok)" in output
    assert (dist / HOST_WHEEL).is_file() and not _temp_files(downloads, work, dist)

