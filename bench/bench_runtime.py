#!/usr/bin/env python3
"""Latency of tflite-edge vs tflite-runtime 2.14.0 on mediapipe's models; a markdown table.

Both runtimes run the same job script (tests/runtime/runtime_jobs.py) in the same Python
(the tflite-runtime venv under $EDGEFORGE_CACHE, numpy 1.x), on the same machine, with the
same thread count, in the same run. By default (``--method paired``) both are loaded in one
process and their invokes interleaved (A B, B A, ...), and the ratio is the median of the
per-pair ratios: this shared 2-core VM's speed drifts by tens of percent from one second to
the next, which moved a model's ratio by up to 0.5 between separate-process runs, and the
pairs see the same speed. ``--method separate`` runs each runtime in its own process, one
after the other, model by model. Reported: the median invoke() latency of each model and the
ratio tflite-edge / tflite-runtime; then the per-invoke overhead on a tiny model (set_tensor
+ invoke + get_tensor round trip, separate processes).

With ``--lib`` given more than once, each library runs after tflite-runtime for every model
(the peer, then lib 1, lib 2, ...), so two builds are compared with the peer and with each
other in one run; ``--kernels builtin`` runs TFLite's own kernels (no XNNPACK delegate) in
every runtime.

Usage: TFLITE_EDGE_LIBRARY=/path/libtensorflowlite_c.so python bench/bench_runtime.py
       [--threads N] [--runs N] [--rounds N] [--models a,b] [--lib PATH ...]
       [--kernels xnnpack|builtin] [--json OUT]

``--models cast_chain_4m`` runs a generated model instead: four CASTs over 4M elements
(TFLite's own CAST kernel, which no delegate takes; see rt_models.cast_chain_model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def _job_result(python: Path, runtime: str, job: dict[str, object], work: Path,
                env: dict[str, str] | None = None) -> dict[str, Any]:
    r = rt_support.run_jobs(python, runtime, [job], work, env=env)[0]
    if "error" in r:
        raise SystemExit(f"{Path(str(job['model'])).stem}: {r['error']}")
    return r


def _paired_round(python: Path, job: dict[str, object], envs: list[dict[str, str]],
                  work: Path, round_no: int) -> tuple[list[float], list[float], int]:
    """One paired job per library: the median ms of the peer (from lib 1's pairs) and of each
    library, each library's median pair ratio, and the pairs' count."""
    ms: list[float] = []
    ratios: list[float] = []
    runs = 0
    for i, env in enumerate(envs):
        r = _job_result(python, "tflite_edge", {**job, "kind": "paired_bench"}, work, env)
        ref_t, edge_t = r["runtime_times"], r["edge_times"]
        if i == 0:
            ms.append(statistics.median(ref_t) * 1e3)
        ms.append(statistics.median(edge_t) * 1e3)
        ratios.append(statistics.median([e / t for t, e in zip(ref_t, edge_t, strict=True)]))
        runs = len(edge_t)
    return ms, ratios, runs


def _separate_round(python: Path, job: dict[str, object], envs: list[dict[str, str]],
                    work: Path, round_no: int) -> tuple[list[float], list[float], int]:
    """A process per runtime, the peer first in even rounds and last in odd ones (so a drift
    of the machine's speed within a round favours neither): median ms of each, the ratios."""
    order = list(range(1 + len(envs)))
    if round_no % 2:
        order.reverse()
    ms = [0.0] * len(order)
    runs = 0
    for i in order:
        r = (_job_result(python, "tflite_runtime", {**job, "kind": "bench"}, work) if i == 0
             else _job_result(python, "tflite_edge", {**job, "kind": "bench"}, work,
                              envs[i - 1]))
        ms[i] = statistics.median(r["times"]) * 1e3
        runs = len(r["times"])
    return ms, [m / ms[0] for m in ms[1:]], runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50, help="timed invokes per model")
    ap.add_argument("--models", default=",".join(rt_support.BUILTIN_OP_MODELS),
                    help="mediapipe model names, or a synthetic one of tests/runtime/"
                         "rt_models.py's SYNTHETIC_MODELS (cast_chain_4m)")
    ap.add_argument("--method", choices=("paired", "separate"), default="paired",
                    help="paired (default): both runtimes in one process, invokes interleaved, "
                         "the ratio is the median of the per-pair ratios; separate: each "
                         "runtime in its own process, one after the other")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every model this many times, alternating the runtimes' order; "
                         "each figure is the median of the rounds' medians (this machine's "
                         "speed drifts by tens of percent between seconds)")
    ap.add_argument("--overhead-runs", type=int, default=20000)
    ap.add_argument("--lib", type=Path, action="append", default=[],
                    help="a libtensorflowlite_c (repeatable; default: $TFLITE_EDGE_LIBRARY)")
    ap.add_argument("--kernels", choices=("xnnpack", "builtin"), default="xnnpack")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
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
    known = set(models) | set(rt_models.SYNTHETIC_MODELS)
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"bench_runtime: no such model: {', '.join(unknown)} (known: "
              f"{', '.join(sorted(known))})", file=sys.stderr)
        return 2

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in names:
            if name in rt_models.SYNTHETIC_MODELS:
                models[name] = work / f"{name}.tflite"
                models[name].write_bytes(rt_models.SYNTHETIC_MODELS[name]())
        # per model, per runtime (0: the peer, then each lib): one figure per round
        medians: dict[str, list[list[float]]] = {n: [[] for _ in range(1 + len(envs))]
                                                 for n in names}
        ratios: dict[str, list[list[float]]] = {n: [[] for _ in envs] for n in names}
        run_counts: dict[str, int] = {}
        for round_no in range(args.rounds):
            for name in names:
                job: dict[str, object] = {
                    "model": str(models[name]), "num_threads": args.threads, "warmup": 5,
                    "runs": args.runs, "max_seconds": 30.0, "kernels": args.kernels}
                measure = _paired_round if args.method == "paired" else _separate_round
                ms, ratio, run_counts[name] = measure(python, job, envs, work, round_no)
                for i, value in enumerate(ms):
                    medians[name][i].append(value)
                for i, value in enumerate(ratio):
                    ratios[name][i].append(value)
        for name in names:
            ref_ms, *edge_ms = (statistics.median(m) for m in medians[name])
            rows.append((name, models[name].stat().st_size, run_counts[name], ref_ms,
                         edge_ms, [statistics.median(r) for r in ratios[name]]))
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
    how = ("both runtimes in one process, invokes interleaved, ratio = median of the per-pair "
           "ratios" if args.method == "paired" else "each runtime in its own process")
    kernels = ("XNNPACK (each runtime's default delegate)" if args.kernels == "xnnpack"
               else "TFLite's builtin kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES)")
    machine, load = _cpu_name(), os.getloadavg()
    print(f"Machine: {machine}, {os.cpu_count()} CPUs; Python {np_version[1]}, "
          f"numpy {np_version[0]}; num_threads={args.threads}; {kernels}; median of up to "
          f"{args.runs} invokes after 5 warm-up runs"
          + (f", median of {args.rounds} such rounds" if args.rounds > 1 else "")
          + f"; {how}; load average at the end "
          f"{' '.join(f'{x:.2f}' for x in load)}.")
    print("tflite-runtime 2.14.0 (PyPI wheel) vs tflite-edge on "
          + "; ".join(f"lib {i + 1}: {lib}" for i, lib in enumerate(libraries)) + ".")
    print()
    labels = [f"lib {i + 1}" for i in range(len(libraries))] if len(libraries) > 1 else [
        "tflite-edge"]
    peer = ("tflite-runtime (ms, in lib 1's pairs)" if args.method == "paired" and len(labels) > 1
            else "tflite-runtime (ms)")
    print(f"| model | size (KB) | runs | {peer} | "
          + " | ".join(f"{lb} (ms) | ratio" for lb in labels) + " |")
    print("| --- | ---: | ---: | ---: | " + " | ".join("---: | ---:" for _ in labels) + " |")
    for name, size, runs, ref_ms, edge_ms, ratio in rows:
        print(f"| {name} | {size // 1024} | {runs} | {ref_ms:.3f} | "
              + " | ".join(f"{e:.3f} | {q:.2f}" for e, q in zip(edge_ms, ratio, strict=True))
              + " |")
    geos = [statistics.geometric_mean([r[5][i] for r in rows])
            for i in range(len(libraries))] if rows else []
    if rows:
        print("| geometric mean | | | | " + " | ".join(f"| {g:.2f}" for g in geos) + " |")
    ref_us = min(ref_o["seconds_per_round"]) * 1e6
    print()
    print("Per-invoke overhead, tiny model (float32 [1,4] ADD), best of 5 x "
          f"{args.overhead_runs} rounds of set_tensor + invoke + get_tensor:")
    print()
    print("| runtime | µs per round | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| tflite-runtime 2.14.0 | {ref_us:.2f} | 1.00 |")
    edge_us = [min(o["seconds_per_round"]) * 1e6 for o in edge_o]
    for label, us in zip(labels, edge_us, strict=True):
        print(f"| {label} | {us:.2f} | {us / ref_us:.2f} |")
    if args.json:
        report = {
            "machine": machine, "cpus": os.cpu_count(), "python": np_version[1],
            "numpy": np_version[0], "num_threads": args.threads, "kernels": args.kernels,
            "method": args.method, "runs": args.runs, "rounds": args.rounds,
            "load_average_at_end": list(load), "libraries": libraries,
            "models": [{"name": name, "bytes": size, "runs": runs, "tflite_runtime_ms": ref_ms,
                        "tflite_edge_ms": edge_ms, "ratios": ratio}
                       for name, size, runs, ref_ms, edge_ms, ratio in rows],
            "geometric_mean": geos,
            "overhead_us": {"tflite_runtime": ref_us, "tflite_edge": edge_us},
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
