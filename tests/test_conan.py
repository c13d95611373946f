"""Conan 2 packages of the pipeline's libraries, through a real Conan remote.

Conan's own ``conan_server`` (the ``conan-server`` distribution) runs on 127.0.0.1 with a
config of its own in a temporary directory. ``edgeforge conan export ... --upload`` puts the
pipeline's tflite-edge-lib wheels there as binaries of ``tflite-edge-c`` (the host's from
``$EDGEFORGE_TFLITE_WHEEL_DIR``, the cross ones from ``$EDGEFORGE_CROSS_WHEEL_DIR`` when set).
A consumer with an empty Conan home of its own (every ``CONAN_HOME`` here is a temporary
directory, never ~/.conan2) then builds the shipped test_package (CMakeDeps + CMakeToolchain,
a C program that runs a mediapipe model) from that remote with the profiles ``edgeforge conan
profiles`` made from the toolchains, for the host and for linux-aarch64 (run under QEMU in a
Debian arm64 root), and its outputs must match the Python package's on the same library.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from edgeforge_testing import REPO, TFLITE_VERSION, pipeline_host_wheel, run_edgeforge, skip_or_fail

from edgeforge import conan
from edgeforge.compare import differences
from edgeforge.fsutil import sha256_file
from edgeforge.log import Logger
from edgeforge.resources import SearchPath
from edgeforge.smoke import qemu
from edgeforge.toolchain import TOOLCHAINS_DIR, host_target_name, resolve_target

CROSS_WHEEL_DIR_ENV = "EDGEFORGE_CROSS_WHEEL_DIR"
MODEL = "face_detection_short_range"
REMOTE = "local"
USER = "edgeforge"
CROSS_TOLERANCE = 1e-3  # the tflite recipe's smoke tolerance: another CPU's float kernels

sys.path.insert(0, str(REPO / "tests" / "runtime"))
try:
    import rt_support
finally:
    sys.path.remove(str(REPO / "tests" / "runtime"))

if not conan.RECIPE_DIR.is_dir():
    raise AssertionError(f"{conan.RECIPE_DIR}: the shipped recipe is missing")


def run_conan(home: Path, *args: str, cwd: Path | None = None) -> str:
    return conan.run_conan(args, cwd=cwd, env={"CONAN_HOME": str(home)}).stdout


# --------------------------------------------------------------------------- the remote


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVER_CONF = """[server]
jwt_secret: {jwt}
jwt_expire_minutes: 120
ssl_enabled: False
port: {port}
host_name: 127.0.0.1
authorize_timeout: 1800
disk_storage_path: ./data
disk_authorize_timeout: 1800
updown_secret: {updown}

[write_permissions]
*/*@*/*: {user}

[read_permissions]
*/*@*/*: *

[users]
{user}: {password}
"""

# conan_server's own launcher and app, bound to 127.0.0.1 (its script binds 0.0.0.0).
SERVE = ("import sys\nfrom conans.server.launcher import ServerLauncher\n"
         "ServerLauncher(server_dir=sys.argv[1]).server.run(host='127.0.0.1')\n")


@dataclass(frozen=True)
class Server:
    url: str
    password: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("conan-server")
    port, password = _free_port(), secrets.token_hex(8)
    (home / "server.conf").write_text(SERVER_CONF.format(
        jwt=secrets.token_hex(16), updown=secrets.token_hex(16), port=port, user=USER,
        password=password))
    log = (home / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(home)], stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/ping", timeout=2) as r:
                    assert "revisions" in r.headers.get("X-Conan-Server-Capabilities", "")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("conan_server did not answer on 127.0.0.1:"
                                         f"{port}:\n{(home / 'server.log').read_text()}"
                                         ) from None
                time.sleep(0.2)
        yield Server(url=url, password=password)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def conan_home(tmp_path_factory: pytest.TempPathFactory, name: str, server: Server) -> Path:
    """An empty Conan home whose only remote is the test server."""
    home = tmp_path_factory.mktemp(name)
    run_conan(home, "remote", "remove", "*")
    run_conan(home, "remote", "add", REMOTE, server.url)
    return home


# --------------------------------------------------------------------------- the packages


def _lib_wheels() -> list[Path]:
    host = pipeline_host_wheel()
    if host is None:
        skip_or_fail("EDGEFORGE_TFLITE_WHEEL_DIR is not set: no pipeline-built tflite-edge-lib "
                     "wheel for the host (ci/test.sh sets it)")
        raise AssertionError("unreachable")
    wheels = [host]
    cross = os.environ.get(CROSS_WHEEL_DIR_ENV)
    if cross:
        found = Path(cross).glob(f"tflite_edge_lib-{TFLITE_VERSION}-py3-none-*.whl")
        wheels += sorted(w for w in found if not w.name.endswith(host.name.rsplit("-", 1)[1]))
    return wheels


@dataclass(frozen=True)
class Published:
    wheels: dict[str, Path]  # target -> the wheel its binary came from
    package_ids: dict[str, str]  # target -> Conan package id


@pytest.fixture(scope="module")
def published(server: Server, tmp_path_factory: pytest.TempPathFactory,
              edgeforge_cache: Path) -> Published:
    """Every wheel exported by the real CLI into a publisher's Conan home and uploaded."""
    wheels = _lib_wheels()
    home = conan_home(tmp_path_factory, "conan-publisher", server)
    run_conan(home, "remote", "login", REMOTE, USER, "-p", server.password)
    proc = run_edgeforge("conan", "export", *map(str, wheels), "--upload", REMOTE,
                         cache=edgeforge_cache, env={"CONAN_HOME": str(home)}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line]
    references = {target: ref for target, ref in lines if "#" in ref}
    assert len(references) == len(wheels), proc.stdout
    targets = conan.load_targets(SearchPath.build().toolchains)
    by_target = {conan.identify(w, targets).target.name: w for w in wheels}
    assert set(references) == set(by_target), (references, by_target)
    assert f"uploaded {conan.PACKAGE_NAME}/{TFLITE_VERSION} ({len(wheels)} binaries)" \
        in proc.stdout
    return Published(wheels=by_target,
                     package_ids={t: ref.rsplit(":", 1)[1] for t, ref in references.items()})


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory, edgeforge_cache: Path) -> Path:
    out = tmp_path_factory.mktemp("conan-profiles")
    proc = run_edgeforge("conan", "profiles", "--target", "linux-aarch64", "--out", str(out),
                         cache=edgeforge_cache, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for target in ("linux-aarch64", host_target_name()):
        assert (out / target).is_file(), proc.stdout
    return out


@pytest.fixture(scope="module")
def consumer(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return conan_home(tmp_path_factory, "conan-consumer", server)


# --------------------------------------------------------------------------- the outputs


PYTHON_RUN = """
import json, sys
import numpy as np
from tflite_edge import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=1)
it.allocate_tensors()
for d in it.get_input_details():
    n = int(np.prod(d["shape"]))
    x = ((np.arange(n, dtype=np.int64) * 37 % 255) / 127.5 - 1.0).astype(np.float32)
    it.set_tensor(d["index"], x.reshape(d["shape"]))
it.invoke()
print(json.dumps({"outputs": {d["name"]: {
    "shape": [int(s) for s in d["shape"]],
    "values": it.get_tensor(d["index"]).ravel().tolist()} for d in it.get_output_details()}}))
"""


def _float32(outputs: dict[str, Any]) -> dict[str, Any]:
    """Values as the float32 they are (the C program prints 9 significant digits)."""
    return {name: {"shape": o["shape"],
                   "values": np.asarray(o["values"], dtype=np.float32).tolist()}
            for name, o in outputs.items()}


def _extract_library(wheel: Path, dest: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.startswith("tflite_edge_lib/lib/"):
                zf.extract(member, dest)
    return dest / "tflite_edge_lib" / "lib" / conan.LIBRARY


@pytest.fixture(scope="module")
def model() -> Path:
    try:
        return rt_support.mediapipe_models()[MODEL]
    except RuntimeError as err:
        skip_or_fail(f"no mediapipe models: {err}")
        raise AssertionError("unreachable") from err


@pytest.fixture(scope="module")
def python_outputs(published: Published, model: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The Python package (tflite_edge over ctypes) on the host wheel's library."""
    library = _extract_library(published.wheels[host_target_name()],
                               tmp_path_factory.mktemp("python-lib"))
    proc = subprocess.run([sys.executable, "-c", PYTHON_RUN, str(model)], capture_output=True,
                          text=True, timeout=300, env=rt_support.runtime_env(str(library)),
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return _float32(json.loads(proc.stdout.splitlines()[-1])["outputs"])


# --------------------------------------------------------------------------- the consumer


@dataclass(frozen=True)
class Built:
    bin_dir: Path
    package_folder: Path
    binary: str  # Conan's word for where the binary came from ("Download", "Cache")
    package_id: str


def build_consumer(home: Path, profiles: Path, target: str, work: Path) -> Built:
    """The shipped test_package, installed and built by Conan from the remote."""
    app = work / "app"
    shutil.copytree(conan.RECIPE_DIR / "test_package", app)
    host, build = profiles / target, profiles / host_target_name()
    graph = json.loads(run_conan(home, "install", str(app), "-pr:h", str(host), "-pr:b",
                                 str(build), "-r", REMOTE, "--format", "json"))
    nodes = [n for n in graph["graph"]["nodes"].values()
             if (n.get("ref") or "").startswith(f"{conan.PACKAGE_NAME}/")]
    assert len(nodes) == 1, graph["graph"]["nodes"]
    run_conan(home, "build", str(app), "-pr:h", str(host), "-pr:b", str(build), "-r", REMOTE)
    node = nodes[0]
    return Built(bin_dir=app / "build" / "Release", package_folder=Path(node["package_folder"]),
                 binary=node["binary"], package_id=node["package_id"])


def _wheel_library_sha256(wheel: Path) -> str:
    import hashlib

    with zipfile.ZipFile(wheel) as zf:
        return hashlib.sha256(zf.read(f"tflite_edge_lib/lib/{conan.LIBRARY}")).hexdigest()


def _check_package(built: Built, published: Published, target: str) -> None:
    """The binary came from the remote, is the one exported for the target, and its library
    is the wheel's, byte for byte."""
    assert built.binary == "Download", built
    assert built.package_id == published.package_ids[target], built
    packaged = built.package_folder / "lib" / conan.LIBRARY
    assert sha256_file(packaged) == _wheel_library_sha256(published.wheels[target])
    headers = {p.name for p in (built.package_folder / "include").rglob("*.h")}
    assert {"c_api.h", "common.h", "xnnpack_delegate.h"} <= headers, headers
    assert (built.package_folder / "licenses" / "tensorflow" / "LICENSE").is_file()


# --------------------------------------------------------------------------- tests


def test_remote_lists_one_binary_per_exported_target(published: Published, consumer: Path
                                                     ) -> None:
    found = run_conan(consumer, "search", conan.PACKAGE_NAME, "-r", REMOTE)
    assert f"{conan.PACKAGE_NAME}/{TFLITE_VERSION}" in found, found
    # Conan 2's `search` lists recipes; `list REF:*` lists a recipe's binaries.
    listing = json.loads(run_conan(consumer, "list", f"{conan.PACKAGE_NAME}/{TFLITE_VERSION}:*",
                                   "-r", REMOTE, "--format", "json"))
    (revision,) = listing[REMOTE][f"{conan.PACKAGE_NAME}/{TFLITE_VERSION}"]["revisions"].values()
    packages = revision["packages"]
    assert sorted(packages) == sorted(published.package_ids.values()), packages
    targets = conan.load_targets(SearchPath.build().toolchains)
    for target, package_id in published.package_ids.items():
        want = conan.conan_target(targets[target])
        info = packages[package_id]["info"]
        assert info["settings"] == {"os": want.os, "arch": want.arch}, info
        assert info["options"] == {"libc": f"{want.libc}-{want.libc_version}"}, info


def test_host_app_built_from_the_remote_matches_the_python_package(
        published: Published, consumer: Path, profiles: Path, model: Path,
        python_outputs: dict[str, Any], tmp_path: Path) -> None:
    target = host_target_name()
    built = build_consumer(consumer, profiles, target, tmp_path)
    _check_package(built, published, target)
    version = subprocess.run([str(built.bin_dir / "tflite_edge_version")], capture_output=True,
                             text=True, timeout=60, check=True)
    assert version.stdout.strip() == f"tflite-edge-c: TensorFlow Lite {TFLITE_VERSION}"
    proc = subprocess.run([str(built.bin_dir / "tflite_edge_run"), str(model)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)
    assert output["version"] == TFLITE_VERSION
    # the same library on the same CPU: the same float32 values, bit for bit
    mismatches = differences(_float32(output["outputs"]), python_outputs, 0.0)
    assert not mismatches, "\n".join(mismatches[:20])


def test_pkg_config_names(published: Published, consumer: Path, profiles: Path,
                          tmp_path: Path) -> None:
    """PkgConfigDeps writes tflite-edge-c.pc and tensorflowlite_c.pc; a program compiled and
    linked with pkg-config's flags for the familiar name runs."""
    host = profiles / host_target_name()
    run_conan(consumer, "install", "--requires", f"{conan.PACKAGE_NAME}/{TFLITE_VERSION}",
              "-pr:h", str(host), "-pr:b", str(host), "-r", REMOTE, "-g", "PkgConfigDeps",
              "--output-folder", str(tmp_path / "pc"))
    assert (tmp_path / "pc" / "tflite-edge-c.pc").is_file()
    pkg_config = shutil.which("pkg-config")
    assert pkg_config, "pkg-config is missing: apt-get install pkg-config"
    flags = subprocess.run([pkg_config, "--cflags", "--libs", "tensorflowlite_c"],
                           capture_output=True, text=True, check=True,
                           env={**os.environ, "PKG_CONFIG_PATH": str(tmp_path / "pc")}
                           ).stdout.split()
    assert "-ltensorflowlite_c" in flags, flags
    lib_dir = next(f[2:] for f in flags if f.startswith("-L"))
    program = tmp_path / "version"
    cc = profiles / "bin" / host_target_name() / "cc"
    subprocess.run([str(cc), str(conan.RECIPE_DIR / "test_package" / "src" / "version.c"),
                    "-o", str(program), *flags, f"-Wl,-rpath,{lib_dir}"], check=True,
                   capture_output=True, timeout=300)
    out = subprocess.run([str(program)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"tflite-edge-c: TensorFlow Lite {TFLITE_VERSION}"


def test_package_id_is_os_arch_libc_not_the_consumers_compiler(published: Published,
                                                                consumer: Path,
                                                                tmp_path: Path) -> None:
    """Any compiler and build type get the exported binary; another libc or an unknown arch
    does not."""
    empty = tmp_path / "empty"
    empty.write_text("[settings]\n")

    def graph(*settings: str) -> dict[str, Any]:
        out = json.loads(run_conan(consumer, "graph", "info", "--requires",
                                   f"{conan.PACKAGE_NAME}/{TFLITE_VERSION}", "-r", REMOTE,
                                   "-pr:h", str(empty), "-pr:b", str(empty),
                                   "-s:b", "os=Linux", "-s:b", "arch=x86_64",
                                   *settings, "--format", "json"))
        return out["graph"]["nodes"]["1"]

    host = conan.conan_target(resolve_target(None))
    base = ("-s:h", "os=Linux", "-s:h", f"arch={host.arch}")
    for compiler in (("compiler=gcc", "compiler.version=12", "build_type=Debug"),
                     ("compiler=clang", "compiler.version=18", "build_type=Release")):
        node = graph(*base, *(a for s in compiler for a in ("-s:h", s)))
        assert node["package_id"] == published.package_ids[host_target_name()], node
        assert node["binary"] in ("Download", "Cache"), node
    musl = graph(*base, "-o:h", f"{conan.PACKAGE_NAME}/*:libc=musl")
    assert musl["package_id"] != published.package_ids[host_target_name()]
    assert musl["binary"] in ("Missing", "Download", "Cache"), musl
    mips = graph("-s:h", "os=Linux", "-s:h", "arch=mips")
    assert mips["binary"] == "Invalid", mips


def test_every_shipped_linux_target_is_one_binary_identity() -> None:
    """Each shipped Linux toolchain names a Conan arch (archs.toml's conan-arch) and no two
    share os/arch/libc, so the recipe's conandata lists them all."""
    shipped = conan.load_targets([TOOLCHAINS_DIR])
    data = conan.conandata(shipped.values())
    linux = [name for name, t in shipped.items() if t.cmake_system_name == "Linux"]
    assert len(linux) >= 7 and sorted(data["targets"]) == sorted(linux), data
    assert data["targets"]["linux-armv7l"] == {
        "os": "Linux", "arch": "armv7hf", "libc": "glibc", "libc_version": "2.17"}
    assert data["targets"]["musllinux-aarch64"] == {
        "os": "Linux", "arch": "armv8", "libc": "musl", "libc_version": "1.2"}


@pytest.mark.parametrize(("tags", "copies", "says"), [
    ("linux_mips", 1, "linux_mips are no target's"),
    ("manylinux_2_17_x86_64.manylinux2014_x86_64", 2, "two wheels for linux-x86_64"),
])
def test_export_refuses_wheels_that_are_not_one_per_target(
        tags: str, copies: int, says: str, tmp_path: Path, edgeforge_cache: Path) -> None:
    wheels = []
    for i in range(copies):
        (tmp_path / str(i)).mkdir()
        wheels.append(tmp_path / str(i) / f"tflite_edge_lib-{TFLITE_VERSION}-py3-none-{tags}.whl")
        zipfile.ZipFile(wheels[-1], "w").close()
    proc = run_edgeforge("conan", "export", *map(str, wheels), cache=edgeforge_cache,
                         env={"CONAN_HOME": str(tmp_path / "home")}, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in proc.stderr, proc.stderr


@pytest.mark.slow
def test_aarch64_app_cross_built_from_the_remote_runs_under_qemu(
        published: Published, consumer: Path, profiles: Path, model: Path,
        python_outputs: dict[str, Any], tmp_path: Path, edgeforge_cache: Path) -> None:
    target = "linux-aarch64"
    if target not in published.wheels:
        pytest.skip(f"no {target} tflite_edge_lib wheel: set {CROSS_WHEEL_DIR_ENV} to a "
                    "directory holding one (a cross TFLite build takes ~20 minutes)")
    built = build_consumer(consumer, profiles, target, tmp_path)
    _check_package(built, published, target)
    program = built.bin_dir / "tflite_edge_run"
    assert program.read_bytes()[18:20] == (183).to_bytes(2, "little"), "not an EM_AARCH64 ELF"
    toolchain = resolve_target(target)
    root = qemu.ensure_smoke_root(toolchain, edgeforge_cache, Logger())
    proc = qemu.run_in_root(root, toolchain, [str(program), str(model)], timeout=600)
    assert proc.returncode == 0, proc.stderr
    output = json.loads(proc.stdout)
    assert output["version"] == TFLITE_VERSION
    mismatches = differences(_float32(output["outputs"]), python_outputs, CROSS_TOLERANCE)
    assert not mismatches, "\n".join(mismatches[:20])
