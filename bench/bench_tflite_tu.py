#!/usr/bin/env python3
"""Real TFLite translation units for aarch64: zig cross wrapper vs native g++ under QEMU.

Each TU is compiled once by the zig c++ wrapper of an existing aarch64 TFLite build tree and
once by Debian arm64's own g++ 12 running under qemu-user (the root from
``edgeforge.smoke.roots.ensure_root``, a chroot with a temporary binfmt_misc entry: the
mechanism of bench_fixture_cross_vs_qemu.py). Both get the TU's own defines and include
paths, taken from the build tree's ``ninja -t compdb``, with ``-O2`` instead of the build
type's ``-O3``, no compiler cache, one job at a time, alternating TU by TU. The source tree is
bind-mounted read-only into the chroot at the same path, so the include paths are identical.

Usage: python bench/bench_tflite_tu.py [--build-dir DIR] [--tu kernels/conv.cc ...]
       [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_fixture_cross_vs_qemu as common

DEFAULT_TUS = ["tensorflow/lite/kernels/fully_connected.cc", "tensorflow/lite/core/subgraph.cc",
               "tensorflow/lite/kernels/conv.cc"]
BUILD_DIRS = [Path("/tmp/tflite-work/build-zig-aarch64"),
              Path.home() / ".cache/edgeforge/work/tflite-2.14.1/linux-aarch64-zig/build"]
# dropped from the build's command: the launcher and compiler, dependency files, output, input
_DROP_WITH_VALUE = {"-MT", "-MF", "-o", "-c"}
_DROP = {"-MD", "-MMD"}


def find_build_dir(given: Path | None) -> Path:
    for d in [given] if given else BUILD_DIRS:
        if d and (d / "build.ninja").is_file():
            return d
    raise SystemExit(f"no aarch64 TFLite build tree with build.ninja in {given or BUILD_DIRS}")


def compile_flags(build_dir: Path, tus: Sequence[str]) -> dict[str, tuple[str, list[str], str]]:
    """TU suffix -> (zig wrapper, flags without -O/-c/-o/deps, absolute source path)."""
    out = subprocess.run(["ninja", "-C", str(build_dir), "-t", "compdb"], check=True,
                         capture_output=True, text=True).stdout
    found: dict[str, tuple[str, list[str], str]] = {}
    for entry in json.loads(out):
        for tu in tus:
            if entry["file"].endswith("/" + tu) and tu not in found:
                argv = shlex.split(entry["command"])
                if Path(argv[0]).name in ("ccache", "sccache"):
                    argv = argv[1:]
                wrapper, rest, flags = argv[0], argv[1:], []
                skip = False
                for a in rest:
                    if skip:
                        skip = False
                    elif a in _DROP_WITH_VALUE:
                        skip = True
                    elif a in _DROP or a.startswith("-O"):
                        pass
                    else:
                        flags.append(a)
                found[tu] = (wrapper, flags, entry["file"])
    missing = [t for t in tus if t not in found]
    if missing:
        raise SystemExit(f"not in {build_dir}'s compile database: {missing}")
    return found


def source_roots(flags: Sequence[str], source: str) -> list[Path]:
    """The directories to bind into the chroot: the parents of every -I and of the source."""
    dirs = {Path(f[2:]) for f in flags if f.startswith("-I")} | {Path(source).parent}
    # one bind per top source directory: the common parent of all of them
    common_parent = Path(os.path.commonpath([str(d) for d in dirs]))
    return [common_parent]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path)
    parser.add_argument("--tu", action="append", help="suffix of a TU path (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    tus = args.tu or DEFAULT_TUS

    build_dir = find_build_dir(args.build_dir)
    flags = compile_flags(build_dir, tus)
    root = common.arm64_root()
    common.check_root(root)
    info = common.machine()
    zig_version = subprocess.run(["sh", "-c", f"grep -m1 zig {shlex.quote(flags[tus[0]][0])}"],
                                 capture_output=True, text=True).stdout.strip()
    results = []
    env = dict(os.environ, CCACHE_DISABLE="1")
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-tu-") as tmp_s:
        tmp = Path(tmp_s)
        work = tmp / "work"
        work.mkdir()
        with common.binfmt_aarch64():
            for tu in tus:
                wrapper, fl, source = flags[tu]
                cross_argv = [wrapper, "-O2", *fl, "-c", source, "-o", str(work / "cross.o")]
                cross = common.timed(cross_argv, env=env)
                gxx = ["g++", "-O2", *fl, "-c", source, "-o", "/bench/native.o"]
                script = " ".join(shlex.quote(a) for a in gxx)
                qemu = common.timed(common.in_chroot(root, work, script,
                                                     source_roots(fl, source)),
                                    env=common.CHROOT_ENV)
                sizes = {k: (work / f"{k}.o").stat().st_size for k in ("cross", "native")}
                results.append({"tu": tu, "cross": cross, "qemu": qemu, "object_bytes": sizes,
                                "cross_command": " ".join(shlex.quote(a) for a in cross_argv),
                                "qemu_command": script})
                print(f"{tu}: cross {cross['wall_s']} s wall / {cross['cpu_s']} s CPU, "
                      f"qemu g++ {qemu['wall_s']} s / {qemu['cpu_s']} s", flush=True)
    assert not (common.BINFMT_DIR / common.BINFMT_NAME).exists()

    report = {"machine": info, "build_dir": str(build_dir), "root": str(root),
              "zig_wrapper": zig_version, "results": results}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Machine: {info['cpu']}, nproc {info['nproc']}, {info['ram_gib']} GiB, "
          f"load average at start {info['loadavg']}; flags from {build_dir}")
    print("| TU | zig cross wall (s) | CPU (s) | g++ 12 under qemu wall (s) | CPU (s) | "
          "ratio wall | ratio CPU | load before |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        c, q = r["cross"], r["qemu"]
        print(f"| {r['tu']} | {c['wall_s']} | {c['cpu_s']} | {q['wall_s']} | {q['cpu_s']} | "
              f"{q['wall_s'] / c['wall_s']:.1f} | {q['cpu_s'] / c['cpu_s']:.1f} | "
              f"{c['load_before']} |")
    tc = sum(r["cross"]["cpu_s"] for r in results)
    tq = sum(r["qemu"]["cpu_s"] for r in results)
    print(f"total CPU: cross {tc:.1f} s, qemu {tq:.1f} s, ratio {tq / tc:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
