"""Helpers for the Coral tests (fixtures in conftest.py): a local libedgetpu release archive
with upstream's layout, test copies of the libedgetpu recipes pointing at it, the wheels
edgeforge builds from them, and Python environments with tflite-edge + tflite-edge-coral
installed by pip.

No Edge TPU and no network to Google's release: the archive holds small real shared
libraries compiled here from ``edgetpu_standin.c`` (the external-delegate ABI and the
``edgetpu_*`` C API) for each architecture, zipped like ``edgetpu_runtime_20221024.zip``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeforge import fetch, treehash
from edgeforge.recipe import RECIPES_DIR

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
STANDIN_C = HERE / "edgetpu_standin.c"
RUNTIME_SRC = REPO / "wheels" / "tflite-edge" / "src"
CORAL_PKG = REPO / "wheels" / "tflite-edge-coral"
RECIPES = RECIPES_DIR

#: release directory -> zig target and flags (the targets' own toolchain flags).
RELEASE_ARCHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "k8": ("x86_64-linux-gnu.2.17", ()),
    "aarch64": ("aarch64-linux-gnu.2.17", ()),
    "armv7a": ("arm-linux-gnueabihf.2.17", ("-mcpu=cortex_a7", "-mfpu=neon-vfpv4")),
    "armv6": ("arm-linux-gnueabihf.2.17", ("-mcpu=arm1176jzf_s", "-mfpu=vfp", "-marm")),
}
HOST_ZIG = "x86_64-linux-gnu.2.17"
RELEASE_TF = "2.5.0"  # what the build-info of recipes/libedgetpu.toml records


def run(argv: Sequence[str | os.PathLike[str]], *, env: dict[str, str] | None = None,
        cwd: Path | None = None, check: bool = True,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def zig_cc(source: Path, out: Path, target: str, flags: Sequence[str] = (),
           soname: str | None = None) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-O2", "-Wall",
            "-target", target, *flags, "-o", str(out), str(source)]
    if soname:
        argv.insert(-3, f"-Wl,-soname,{soname}")
    run(argv)
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Release:
    archive: Path
    sha256: str

    @property
    def url(self) -> str:
        return self.archive.as_uri()


def write_test_recipe(name: str, dest_dir: Path, url: str, sha: str | None) -> Path:
    """A copy of ``recipes/NAME.toml`` whose release URL is ``url`` (pinned to ``sha`` and the
    stand-in's tree hash unless None), with its repository-relative paths made absolute;
    everything else as shipped."""
    text = (RECIPES / f"{name}.toml").read_text()
    upstream = ('"https://github.com/google-coral/libedgetpu/releases/download/'
                'release-grouper/edgetpu_runtime_20221024.zip", unpinned = true')
    assert upstream in text, f"recipes/{name}.toml no longer names upstream's release"
    pin = f'"{url}", sha256 = "{sha}"' if sha else f'"{url}", unpinned = true'
    text = text.replace(upstream, pin)
    if sha:
        source = 'name = "edgetpu-runtime"\n'
        assert text.count(source) == 1
        text = text.replace(source, f'{source}tree = "{_release_tree(url)}"\n')
    text = text.replace("{recipe_dir}/", f"{RECIPES}/")
    text = text.replace('"coral-lib/', f'"{RECIPES}/coral-lib/')
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / f"{name}.toml"
    out.write_text(text)
    return out


def _release_tree(url: str) -> str:
    """The tree hash of the stand-in release (strip-components 1, as the recipe extracts it)."""
    from urllib.request import url2pathname

    with tempfile.TemporaryDirectory() as tmp:
        fetch.extract(Path(url2pathname(url.removeprefix("file://"))), Path(tmp), 1)
        return treehash.tree_hash(Path(tmp))


def edgeforge(*args: str | os.PathLike[str], check: bool = True,
              timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The real command line, as a maintainer runs it."""
    return run([sys.executable, "-m", "edgeforge", *args], check=check, timeout=timeout)


def build_release(root: Path) -> Release:
    """``edgetpu_runtime_20221024.zip``'s layout under ``root``, with stand-in libraries for
    four architectures and both variants, zipped."""
    tree = root / "edgetpu_runtime" / "libedgetpu"
    for variant in ("direct", "throttled"):
        for directory, (target, flags) in RELEASE_ARCHS.items():
            zig_cc(STANDIN_C, tree / variant / directory / "libedgetpu.so.1.0", target,
                   [*flags, f'-DSTANDIN_VARIANT="{variant}"'], soname="libedgetpu.so.1")
    (tree / "edgetpu.h").write_text("// stand-in for libedgetpu's C++ header\n")
    (tree / "edgetpu_c.h").write_text("// stand-in for libedgetpu's C header\n")
    (tree / "edgetpu-accelerator.rules").write_text(
        'SUBSYSTEM=="usb",ATTRS{idVendor}=="1a6e",GROUP="plugdev"\n')
    (tree / "LICENSE.txt").write_text("Apache License 2.0 (stand-in)\n")
    (root / "edgetpu_runtime" / "install.sh").write_text("#!/bin/sh\n")
    archive = root / "edgetpu_runtime_20221024.zip"
    # Fixed dates and modes: the same bytes every run, so edgeforge's cache (keyed by
    # sha256) is reused instead of growing by one extracted tree per test session.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / "edgetpu_runtime").rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(root).as_posix(), (2022, 10, 24, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return Release(archive, sha256(archive))


@dataclass(frozen=True)
class BuiltWheels:
    std: Path
    max: Path
    work: Path


def build_lib_wheel(name: str, target: str, release: Release, base: Path,
                    smoke: bool = True) -> Path:
    recipe = write_test_recipe(name, base / "recipes", release.url, release.sha256)
    dist = base / "dist"
    args: list[str | os.PathLike[str]] = [
        "build", recipe, "--target", target, "--dist", dist, "--work-dir", base / "work"]
    if not smoke:
        args.append("--no-smoke")
    proc = edgeforge(*args)
    wheels = [Path(line.split(": ", 1)[1].split(" (audit")[0])
              for line in proc.stdout.splitlines() if line.startswith(f"{target}: ")]
    assert len(wheels) == 1 and wheels[0].is_file(), proc.stdout + proc.stderr
    return wheels[0]


def build_pure_wheel(project: Path, out: Path) -> Path:
    """``pip wheel`` of a pure-Python project, built from a copy (no build/ in the repo)."""
    copy = out / "src" / project.name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                  "__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(copy)])
    found = sorted(out.glob(f"{project.name.replace('-', '_')}-*.whl"))
    assert len(found) == 1, found
    return found[0]


@dataclass(frozen=True)
class Runtime:
    """How the tflite-edge runtime package is provided to the environments."""

    wheel: Path | None  # a built tflite-edge wheel, when wheels/tflite-edge can build one
    pythonpath: Path | None  # else its source directory on PYTHONPATH

    @property
    def why(self) -> str:
        return ("tflite-edge from its wheel" if self.wheel else
                f"tflite-edge from {self.pythonpath} (wheels/tflite-edge has no pyproject.toml "
                "yet, so no wheel to install)")


def runtime_function_names(rt: Runtime, site: Path | None = None) -> list[str]:
    """The C functions tflite-edge's loader requires of libtensorflowlite_c."""
    path = str(site) if site else str(rt.pythonpath)
    proc = run([sys.executable, "-c",
                "import json; from tflite_edge._library import _FUNCTIONS; "
                "print(json.dumps(sorted(_FUNCTIONS)))"],
               env={"PYTHONPATH": path, "PATH": os.environ.get("PATH", "")})
    return json.loads(proc.stdout)


def write_runtime_standin(names: Sequence[str], version: str, out_dir: Path) -> Path:
    """C source of a stand-in libtensorflowlite_c: every function tflite-edge declares,
    TfLiteVersion() returning ``version``, the rest inert. Only its version is used: the
    plugin's TensorFlow-version rule reads the runtime's TfLiteVersion()."""
    lines = ["/* generated by tests/coral/conftest.py */"]
    for name in names:
        if name == "TfLiteVersion":
            lines.append(f'const char* TfLiteVersion(void) {{ return "{version}"; }}')
        else:
            lines.append(f"void* {name}(void) {{ return 0; }}")
    source = out_dir / f"tflite_standin_{version}.c"
    source.write_text("\n".join(lines) + "\n")
    return source


@dataclass(frozen=True)
class Env:
    """A virtual environment with wheels installed by pip."""

    root: Path
    runtime: Runtime

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, code: str, *, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        full = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.root)}
        if self.runtime.pythonpath is not None:
            full["PYTHONPATH"] = str(self.runtime.pythonpath)
        full.update(env or {})
        return run([self.python, "-c", code], env=full, check=check, timeout=300)


def make_env(path: Path, runtime: Runtime, wheels: Sequence[Path]) -> Env:
    # The host's site-packages for numpy (tflite-edge needs it; no network to fetch it).
    venv.EnvBuilder(with_pip=True, clear=True, system_site_packages=True).create(path)
    env = Env(path, runtime)
    to_install = [*wheels, *([runtime.wheel] if runtime.wheel else [])]
    # --no-deps: tflite-edge-lib (the real libtensorflowlite_c wheel) is not built here.
    run([env.python, "-m", "pip", "install", "--no-index", "--no-deps",
         "--disable-pip-version-check", *map(str, to_install)])
    return env
