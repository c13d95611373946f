#!/usr/bin/env python3
"""Latency of tflite-edge vs tflite-runtime 2.14.0 on mediapipe's models; a markdown table.

Both runtimes run the same job script (tests/runtime/runtime_jobs.py) in the same Python
(the tflite-runtime venv under $EDGEFORGE_CACHE, numpy 1.x), on the same machine, with the
same thread count, in the same run, alternating model by model. Reported: the median
invoke() latency of each model and the ratio tflite-edge / tflite-runtime; then the
per-invoke overhead on a tiny model (set_tensor + invoke + get_tensor round trip).

With ``--lib`` given more than once, each library runs after tflite-runtime for every model
(the peer, then lib 1, lib 2, ...), so two builds are compared with the peer and with each
other in one run; ``--kernels builtin`` runs TFLite's own kernels (no XNNPACK delegate) in
every runtime.

Usage: TFLITE_EDGE_LIBRARY=/path/libtensorflowlite_c.so python bench/bench_runtime.py
       [--threads N] [--runs N] [--models a,b] [--lib PATH ...] [--kernels xnnpack|builtin]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))

import rt_models  # noqa: E402
import rt_support  # noqa: E402


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50, help="timed invokes per model")
    ap.add_argument("--models", default=",".join(rt_support.BUILTIN_OP_MODELS))
    ap.add_argument("--overhead-runs", type=int, default=20000)
    ap.add_argument("--lib", type=Path, action="append", default=[],
                    help="a libtensorflowlite_c (repeatable; default: $TFLITE_EDGE_LIBRARY)")
    ap.add_argument("--kernels", choices=("xnnpack", "builtin"), default="xnnpack")
    args = ap.parse_args(argv)

    if args.lib:
        libraries = [str(p.resolve()) for p in args.lib]
        missing = [p for p in libraries if not Path(p).is_file()]
        if missing:
            print(f"bench_runtime: no such library: {', '.join(missing)}", file=sys.stderr)
            return 2
    else:
        library, reason = rt_support.find_library()
        if library is None:
            print(f"bench_runtime: {reason}", file=sys.stderr)
            return 2
        libraries = [library]
    python, reason = rt_support.reference_python()
    if python is None:
        print(f"bench_runtime: {reason}", file=sys.stderr)
        return 2
    models = rt_support.mediapipe_models()
    envs = [rt_support.runtime_env(lib) for lib in libraries]
    names = [n for n in args.models.split(",") if n]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in names:
            job = {"kind": "bench", "model": str(models[name]), "num_threads": args.threads,
                   "warmup": 5, "runs": args.runs, "max_seconds": 30.0,
                   "kernels": args.kernels}
            ref = rt_support.run_jobs(python, "tflite_runtime", [job], work)[0]
            edges = [rt_support.run_jobs(python, "tflite_edge", [job], work, env=env)[0]
                     for env in envs]
            for r in (ref, *edges):
                if "error" in r:
                    raise SystemExit(f"{name}: {r['error']}")
            ref_ms = statistics.median(ref["times"]) * 1e3
            edge_ms = [statistics.median(e["times"]) * 1e3 for e in edges]
            rows.append((name, models[name].stat().st_size, len(edges[0]["times"]),
                         ref_ms, edge_ms))
        tiny = work / "add4.tflite"
        tiny.write_bytes(rt_models.add_model(4))
        job = {"kind": "overhead", "model": str(tiny), "num_threads": args.threads,
               "runs": args.overhead_runs, "repeats": 5}
        ref_o = rt_support.run_jobs(python, "tflite_runtime", [job], work)[0]
        edge_o = [rt_support.run_jobs(python, "tflite_edge", [job], work, env=env)[0]
                  for env in envs]

    np_version = rt_support.subprocess.run(
        [str(python), "-c", "import numpy, sys; print(numpy.__version__, sys.version.split()[0])"],
        capture_output=True, text=True, check=True).stdout.split()
    kernels = ("XNNPACK (each runtime's default delegate)" if args.kernels == "xnnpack"
               else "TFLite's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)")
    print(f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs; Python {np_version[1]}, "
          f"numpy {np_version[0]}; num_threads={args.threads}; {kernels}; median of up to "
          f"{args.runs} invokes after 5 warm-up runs; load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    print("tflite-runtime 2.14.0 (PyPI wheel) vs tflite-edge on "
          + "; ".join(f"lib {i + 1}: {lib}" for i, lib in enumerate(libraries)) + ".")
    print()
    labels = [f"lib {i + 1}" for i in range(len(libraries))] if len(libraries) > 1 else [
        "tflite-edge"]
    print("| model | size (KB) | runs | tflite-runtime (ms) | "
          + " | ".join(f"{lb} (ms) | ratio" for lb in labels) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in labels) + " |")
    for name, size, runs, ref_ms, edge_ms in rows:
        print(f"| {name} | {size // 1024} | {runs} | {ref_ms:.3f} | "
              + " | ".join(f"{e:.3f} | {e / ref_ms:.2f}" for e in edge_ms) + " |")
    if rows:
        geos = [statistics.geometric_mean([r[4][i] / r[3] for r in rows])
                for i in range(len(libraries))]
        print("| geometric mean | | | | " + " | ".join(f"| {g:.2f}" for g in geos) + " |")
    ref_us = min(ref_o["seconds_per_round"]) * 1e6
    print()
    print("Per-invoke overhead, tiny model (float32 [1,4] ADD), best of 5 x "
          f"{args.overhead_runs} rounds of set_tensor + invoke + get_tensor:")
    print()
    print("| runtime | µs per round | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| tflite-runtime 2.14.0 | {ref_us:.2f} | 1.00 |")
    for label, o in zip(labels, edge_o, strict=True):
        edge_us = min(o["seconds_per_round"]) * 1e6
        print(f"| {label} | {edge_us:.2f} | {edge_us / ref_us:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
