"""What the runtime tests and bench/bench_runtime.py share: the cache, the real models from
PyPI's mediapipe wheel, and a venv with tflite-runtime 2.14.0 as the reference.

Everything downloaded goes under ``$EDGEFORGE_CACHE`` (default ``~/.cache/edgeforge``):
``models/mediapipe-0.10.14/*.tflite`` and ``venvs/tflite-runtime-2.14.0-py3X/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUNTIME_SRC = REPO / "wheels" / "tflite-edge" / "src"
LIB_SRC = REPO / "wheels" / "tflite-edge-lib" / "src"
HERE = Path(__file__).resolve().parent

MEDIAPIPE = "mediapipe==0.10.14"
TFLITE_RUNTIME = "tflite-runtime==2.14.0"
LIBRARY_ENV = "TFLITE_EDGE_LIBRARY"

#: mediapipe's models that TFLite's builtin ops run (the others need MediaPipe's custom ops:
#: selfie_segmentation* use Convolution2DTransposeBias, face_landmark_with_attention uses
#: Landmarks2TransformMatrix, and fail the same way in tflite-runtime).
BUILTIN_OP_MODELS = (
    "face_detection_full_range_sparse", "face_detection_short_range", "face_landmark",
    "hand_landmark_full", "hand_landmark_lite", "hand_recrop", "iris_landmark",
    "palm_detection_full", "palm_detection_lite", "pose_detection", "pose_landmark_full",
)
CUSTOM_OP_MODELS = ("selfie_segmentation", "face_landmark_with_attention")


def cache_root() -> Path:
    env = os.environ.get("EDGEFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgeforge"


def _run(cmd: list[str], what: str, **kw: Any) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode:
        raise RuntimeError(
            f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )


def mediapipe_models() -> dict[str, Path]:
    """name -> path of every .tflite in the mediapipe wheel (downloaded once, cached)."""
    version = MEDIAPIPE.split("==")[1]
    dest = cache_root() / "models" / f"mediapipe-{version}"
    marker = dest / "SOURCE.json"
    if not marker.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            _run([sys.executable, "-m", "pip", "download", "--no-deps",
                  "--disable-pip-version-check", "--only-binary=:all:",
                  "--python-version", "3.11", "--implementation", "cp",
                  "--platform", "manylinux_2_17_x86_64", "-d", tmp, MEDIAPIPE],
                 f"downloading {MEDIAPIPE}")
            wheel = next(Path(tmp).glob("mediapipe-*.whl"))
            out = Path(tmp) / "models"
            out.mkdir()
            names = []
            with zipfile.ZipFile(wheel) as zf:
                for info in zf.infolist():
                    if info.filename.endswith(".tflite"):
                        name = Path(info.filename).name
                        (out / name).write_bytes(zf.read(info))
                        names.append(info.filename)
            sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
            (out / "SOURCE.json").write_text(json.dumps(
                {"wheel": wheel.name, "sha256": sha, "files": sorted(names)}, indent=1))
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(out, dest)
    return {p.stem: p for p in sorted(dest.glob("*.tflite"))}


def reference_python() -> tuple[Path | None, str]:
    """A Python with tflite-runtime 2.14.0 and numpy<2 (a venv under the cache, made once).

    tflite-runtime 2.14.0 ships cp39-cp311 wheels only and fails under numpy 2, hence the
    separate venv. Returns (None, reason) when no CPython 3.9-3.11 is available."""
    candidates = []
    if (3, 9) <= sys.version_info[:2] <= (3, 11):
        candidates.append(sys.executable)
    candidates += [p for p in (shutil.which(f"python3.{m}") for m in (11, 10, 9)) if p]
    if not candidates:
        return None, "tflite-runtime 2.14.0 needs CPython 3.9-3.11; none found"
    return _cached_venv(candidates[0], "tflite-runtime-2.14.0-py{ver}",
                        ["numpy<2", TFLITE_RUNTIME]), ""


def _cached_venv(base: str, name: str, requirements: list[str]) -> Path:
    """The python of a venv of ``base`` under the cache (``name`` formatted with the base's
    version as ``ver``, e.g. 311) with ``requirements`` installed, made once."""
    ver = subprocess.run([base, "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    venv = cache_root() / "venvs" / name.format(ver=ver)
    python = venv / "bin" / "python"
    marker = venv / "READY"
    if not marker.is_file():
        if venv.exists():
            shutil.rmtree(venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run([base, "-m", "venv", str(venv)], f"creating the venv {venv}")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              "--only-binary=:all:", *requirements], f"installing {requirements} in {venv}")
        marker.write_text("\n".join(requirements) + "\n")
    return python


def build_test_delegate(dest: Path) -> Path | None:
    """test_delegate.c built with the host C compiler into ``dest``; None without one."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    out = dest / "libtflite_edge_test_delegate.so"
    _run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(out),
          str(HERE / "test_delegate.c")], "building the test delegate")
    return out


def pypy_python() -> tuple[Path | None, str]:
    """A PyPy 3 (Debian's ``pypy3``, installed by ci/setup.sh) with numpy from PyPI, in a
    venv under the cache, made once. (None, reason) when there is no pypy3."""
    base = shutil.which("pypy3")
    if base is None:
        return None, "no pypy3 on PATH (ci/setup.sh installs Debian's pypy3 package)"
    return _cached_venv(base, "pypy{ver}-numpy", ["numpy"]), ""


def free_threaded_python() -> Path:
    """A free-threaded CPython 3.13 (built once into the cache from Debian's CPython source by
    edgeforge.smoke.freethreaded: no registry here carries one) with numpy's ``cp313t`` wheel
    from PyPI, in a venv under the cache, made once."""
    from edgeforge.log import Logger
    from edgeforge.smoke.freethreaded import ensure_free_threaded_python

    base = ensure_free_threaded_python(cache_root(), Logger(stream=sys.stderr))
    return _cached_venv(str(base), "cpython{ver}t-numpy", ["numpy"])


def run_check(python: Path | str, check: str, args: list[str], library: str,
              timeout: float = 600) -> dict[str, Any]:
    """Run one runtime_checks.py check under ``python``; its JSON result. A crash (signal)
    or failed assertion raises AssertionError with the output."""
    proc = subprocess.run([str(python), str(HERE / "runtime_checks.py"), check, *args],
                          capture_output=True, text=True, timeout=timeout,
                          env=runtime_env(library))
    if proc.returncode:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit {proc.returncode}")
        raise AssertionError(f"{check} under {python}: {how}\n{proc.stdout[-3000:]}"
                             f"\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_jobs(python: Path | str, runtime: str, jobs: list[dict[str, Any]], workdir: Path,
             env: dict[str, str] | None = None, timeout: float = 900) -> list[dict[str, Any]]:
    """Run ``runtime_jobs.py`` jobs under ``python`` with ``runtime`` ("tflite_runtime" or
    "tflite_edge"), in one process; one result dict per job."""
    request = workdir / f"{runtime}-jobs.json"
    request.write_text(json.dumps(jobs))
    proc = subprocess.run([str(python), str(HERE / "runtime_jobs.py"), runtime, str(request)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode:
        raise RuntimeError(f"{runtime} jobs failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(Path(str(request) + ".out").read_text())


def runtime_env(library: str | None = None, extra_path: list[str] | None = None
                ) -> dict[str, str]:
    """An environment for a subprocess that imports tflite_edge from this checkout."""
    env = dict(os.environ)
    paths = [*(extra_path or []), str(RUNTIME_SRC), str(LIB_SRC)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if library is not None:
        env[LIBRARY_ENV] = library
    return env


def find_library() -> tuple[str | None, str]:
    """The libtensorflowlite_c the tests use: $TFLITE_EDGE_LIBRARY, else an installed
    tflite-edge-lib. (None, reason) when there is none."""
    env = os.environ.get(LIBRARY_ENV)
    if env:
        if not Path(env).is_file():
            raise FileNotFoundError(f"{LIBRARY_ENV}={env}: no such file")
        return env, ""
    try:
        import tflite_edge_lib

        return str(tflite_edge_lib.library_path()), ""
    except (ImportError, FileNotFoundError) as exc:
        return None, (f"no libtensorflowlite_c: set {LIBRARY_ENV} to the pipeline-built "
                      f"library, or install tflite-edge-lib ({exc})")
