"""A recipe built through the pipeline twice, in two fresh work roots at different depths:
wall and CPU seconds of each, the compiler-cache hits and misses of each (from its own ccache
log, so other builds sharing the cache do not count), and whether the wheels are identical.

The first build is cold unless the compiler cache already holds its objects; the second
shows what a clean rebuild in a new directory (a new clone, `--work-dir`) costs.

    python bench/bench_build_cache.py tflite --target linux-x86_64 [--json OUT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import bench_fixture_cross_vs_qemu as common


def ccache_results(log: Path) -> dict[str, int]:
    results = [line.split("Result: ", 1)[1].strip()
               for line in (log.read_text().splitlines() if log.exists() else [])
               if "Result: " in line]
    return {"hits": sum(r.endswith("cache_hit") for r in results),
            "misses": sum(r == "cache_miss" for r in results)}


def build(recipe: str, target: str, work: Path, dist: Path, log: Path) -> dict[str, object]:
    argv = [sys.executable, "-m", "edgeforge", "build", recipe, "--target", target,
            "--no-smoke", "--work-dir", str(work), "--dist", str(dist)]
    env = {**os.environ, "CCACHE_LOGFILE": str(log)}
    result: dict[str, object] = {"command": " ".join(argv), "work_dir": str(work),
                                 **common.timed(argv, env=env, stdout=subprocess.DEVNULL)}
    (wheel,) = dist.glob("*.whl")
    result.update(ccache_results(log), wheel=wheel.name,
                  wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("--target", required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    info = common.machine()
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-cache-") as tmp:
        t = Path(tmp)
        first = build(args.recipe, args.target, t / "a", t / "dist-a", t / "ccache-a.log")
        second = build(args.recipe, args.target, t.joinpath("b", "deeper", "still"),
                       t / "dist-b", t / "ccache-b.log")
    report = {"machine": info, "recipe": args.recipe, "target": args.target,
              "builds": [first, second]}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Machine: {info['cpu']}, nproc {info['nproc']}, {info['ram_gib']} GiB, "
          f"load average at start {info['loadavg']}")
    print("| build | wall (s) | CPU (s) | ccache hits | ccache misses | load before/after |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, b in (("first work root", first), ("second, another depth", second)):
        print(f"| {name} | {b['wall_s']} | {b['cpu_s']} | {b['hits']} | {b['misses']} | "
              f"{b['load_before']}/{b['load_after']} |")
    same = first["wheel_sha256"] == second["wheel_sha256"]
    print(f"wheels {'identical' if same else 'DIFFER'}: {first['wheel']} "
          f"sha256 {first['wheel_sha256'][:16]}... / {second['wheel_sha256'][:16]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
