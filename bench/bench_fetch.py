"""A cold `edgeforge fetch RECIPE` into a fresh cache: bytes downloaded and seconds.

Bytes are counted two ways: what edgeforge itself says it fetched (each "fetched ..." line:
whole files, and the xz blocks fetched by ranged GETs), split into build sources and
smoke-only data (the models pip downloads), and the machine's received bytes (/proc/net/dev,
every interface but lo: an upper bound, since other processes share the network). pip's own
cache is off for the run (PIP_NO_CACHE_DIR), so nothing comes from a warm cache. Then the
same command runs again on the now warm cache, which should fetch nothing.

    python bench/bench_fetch.py tflite [--target linux-x86_64] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

_FETCHED = re.compile(r"^\s*fetched (?P<what>.+?)[ :(]+(?P<n>\d+) bytes", re.MULTILINE)


def received_bytes() -> int:
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        if name.strip() != "lo":
            total += int(counters.split()[0])
    return total


def fetched_bytes(log: str) -> list[tuple[str, int]]:
    """(what, bytes) per download edgeforge reported."""
    return [(m.group("what"), int(m.group("n"))) for m in _FETCHED.finditer(log)]


def fetch_once(argv: list[str], env: dict[str, str]) -> tuple[str, float, int, float]:
    """(stderr, wall seconds, bytes the machine received, load after) of one run."""
    rx = received_bytes()
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    rx = received_bytes() - rx
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{proc.stderr[-4000:]}")
    return proc.stderr, wall, rx, os.getloadavg()[0]


def run(recipe: str, target: str | None) -> dict[str, object]:
    from edgeforge.recipe import resolve_recipe

    smoke_files = {loc.filename for s in resolve_recipe(recipe).sources if s.smoke_only
                   for loc in s.locations}
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-fetch-") as tmp:
        cache = Path(tmp) / "cache"
        argv = [sys.executable, "-m", "edgeforge", "fetch", recipe]
        if target:
            argv += ["--target", target]
        env = {**os.environ, "EDGEFORGE_CACHE": str(cache), "PIP_NO_CACHE_DIR": "1"}
        load = os.getloadavg()[0]
        log, wall, rx, load_after = fetch_once(argv, env)
        smoke_bytes = sum(p.stat().st_size for p in (cache / "downloads").rglob("*")
                          if p.is_file() and p.name in smoke_files)
        # the same command again on the now warm cache: it should fetch nothing
        warm_log, warm_wall, rx_warm, _ = fetch_once(argv, env)
    items = fetched_bytes(log)
    reported = sum(n for _, n in items)
    return {
        "command": f"EDGEFORGE_CACHE=<fresh> PIP_NO_CACHE_DIR=1 edgeforge {' '.join(argv[3:])}",
        "wall_s": round(wall, 1), "load_before": round(load, 2),
        "load_after": round(load_after, 2), "cpus": os.cpu_count(),
        "edgeforge_bytes": reported, "smoke_bytes": smoke_bytes,
        "build_source_bytes": reported - smoke_bytes if smoke_bytes <= reported else None,
        "received_bytes": rx, "fetched": items,
        "warm_wall_s": round(warm_wall, 1),
        "warm_edgeforge_bytes": sum(n for _, n in fetched_bytes(warm_log)),
        "warm_received_bytes": rx_warm,
    }


def markdown(r: dict[str, object]) -> str:
    def mb(key: str) -> str:
        value = r[key]
        return f"{value:,} B ({value / 1e6:.1f} MB)" if isinstance(value, int) else "?"
    return (f"| `{r['command']}` | {r['cpus']} cores, load {r['load_before']} -> "
            f"{r['load_after']} | {r['wall_s']} s | {mb('edgeforge_bytes')} | "
            f"{mb('build_source_bytes')} | {mb('smoke_bytes')} | {mb('received_bytes')} |")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", nargs="?", default="tflite")
    p.add_argument("--target", default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    result = run(args.recipe, args.target)
    print("| command | machine, load | wall | edgeforge fetched | build sources | smoke data "
          "(pip) | received by the machine |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(markdown(result))
    print(f"| the same command again (warm cache) | | {result['warm_wall_s']} s | "
          f"{result['warm_edgeforge_bytes']:,} B | | | {result['warm_received_bytes']:,} B |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
