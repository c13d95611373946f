"""The release and the tools it does without: what `edgeforge release` costs on the fixture, and
what happens here when cibuildwheel or bazelisk is asked to do a piece of the job.

- release: `edgeforge release` of the fixture (host + linux-aarch64 with smoke, plus the pure
  tflite-edge package), then the same as two `--cell` jobs and a `--packages` job (no smoke)
  and a `merge`: wall and CPU seconds of each.
- cibuildwheel 4.3.5 (PyPI, into a throwaway venv): how many builds it selects for the
  tflite-edge-lib project by default (`--print-build-identifiers`) for Linux, and for Windows
  and macOS with the archs of edgeforge's four targets there, and what one build of each
  platform does on this machine.
- bazelisk 1.28.1 (npm `@bazel/bazelisk`, the binary the package ships): `bazelisk version`
  for TensorFlow 2.14.1's `.bazelversion` (read from the cached source tree, else 6.1.0).

    python bench/bench_release_tools.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import bench_fixture_cross_vs_qemu as common

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "edgemath.toml"
CIBUILDWHEEL = "cibuildwheel==4.3.5"
BAZELISK = "@bazel/bazelisk@1.28.1"


def edgeforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgeforge", *args]


def release(tmp: Path) -> dict[str, object]:
    sys.path.insert(0, str(FIXTURE.parent))
    from make_tarball import make_tarball

    make_tarball(FIXTURE.parent / "edgemath", FIXTURE.parent / "edgemath-1.0.tar")
    config = tmp / "release.toml"
    config.write_text(f'[[matrix]]\nrecipes = ["{FIXTURE}"]\ntargets = ["host", "linux-aarch64"]'
                      f'\n\n[packages]\nprojects = ["{REPO / "wheels" / "tflite-edge"}"]\n')
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    runs: dict[str, object] = {
        "whole": common.timed(edgeforge("release", "--config", str(config), "--out",
                                        str(tmp / "whole")), **quiet)}
    cells = []
    for i, args in enumerate((["--cell", "edgemath:host"], ["--cell", "edgemath:linux-aarch64"],
                              ["--packages"])):
        cells.append(tmp / f"cell{i}")
        runs[" ".join(args)] = common.timed(
            edgeforge("release", "--config", str(config), "--no-smoke", *args, "--out",
                      str(cells[-1])), **quiet)
    runs["merge"] = common.timed(edgeforge("release", "merge", *map(str, cells), "--out",
                                           str(tmp / "merged")), **quiet)
    return runs


def failure(argv: Sequence[str], cwd: Path, env: dict[str, str]) -> dict[str, object]:
    start = time.monotonic()
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return {"command": " ".join(argv), "exit": proc.returncode,
            "seconds": round(time.monotonic() - start, 1), "last_lines": lines[-3:]}


def cibuildwheel(tmp: Path) -> dict[str, object]:
    venv = tmp / "cibw"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", CIBUILDWHEEL],
                   check=True)
    tool = str(venv / "bin" / "cibuildwheel")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    out: dict[str, object] = {"version": CIBUILDWHEEL}
    # platform, archs (edgeforge's targets there), the one build tried
    for platform, archs, build in (("linux", "auto", "cp312-manylinux_x86_64"),
                                   ("windows", "AMD64 ARM64", "cp312-win_amd64"),
                                   ("macos", "x86_64 arm64", "cp312-macosx_arm64")):
        flags = ["--platform", platform, "--archs", archs]
        ids = subprocess.run([tool, *flags, "--print-build-identifiers",
                              "wheels/tflite-edge-lib"], cwd=REPO, env=env,
                             capture_output=True, text=True, check=False)
        one = failure([tool, *flags, "--output-dir", str(tmp / f"cibw-{platform}"),
                       "wheels/tflite-edge-lib"], REPO, {**env, "CIBW_BUILD": build})
        out[platform] = {"archs": archs, "builds_selected": len(ids.stdout.split()),
                         "identifiers": ids.stdout.split(),
                         "identifiers_error": (ids.stderr.strip().splitlines() or [""])[-1],
                         "one_build": one}
    return out


def bazel_version() -> str:
    from edgeforge.fetch import default_cache_dir

    for path in sorted((default_cache_dir() / "src").glob("tensorflow-*/.bazelversion")):
        return path.read_text().split()[0]
    return "6.1.0"


def bazelisk(tmp: Path) -> dict[str, object]:
    where = tmp / "bazelisk"
    where.mkdir()
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", BAZELISK],
                   cwd=where, check=True)
    version = bazel_version()
    env = {**os.environ, "BAZELISK_HOME": str(where / "home"), "USE_BAZEL_VERSION": version}
    result = failure([str(where / "node_modules" / ".bin" / "bazelisk"), "version"], where, env)
    return {"version": BAZELISK, "bazel": version, **result}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-release", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, object] = {"machine": common.machine()}
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-release-") as tmp:
        t = Path(tmp)
        if not args.skip_release:
            report["release"] = release(t)
        report["cibuildwheel"] = cibuildwheel(t)
        report["bazelisk"] = bazelisk(t)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
