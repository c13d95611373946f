#!/usr/bin/env python3
"""Where a model's time goes in tflite-edge and in tflite-runtime 2.14.0, side by side.

Runs bench_runtime.py's paired job (both runtimes in one process, invokes interleaved) under
``perf record`` and prints perf's top symbols by library, as a markdown table, with the pairs'
median ratio. Give the build directory's unstripped libtensorflowlite_c.so (``--lib``): the
wheel's copy keeps no names for XNNPACK's hidden kernels. perf is for benchmarks only (not in
ci/setup.sh; Debian's ``linux-perf``).

Usage: python bench/bench_profile.py MODEL --lib PATH [--pairs N] [--top N]
       [--kernels xnnpack|builtin]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))

import rt_models  # noqa: E402
import rt_support  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a mediapipe model name or one of rt_models.SYNTHETIC_MODELS")
    ap.add_argument("--lib", type=Path, required=True, help="an unstripped libtensorflowlite_c")
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--kernels", choices=("xnnpack", "builtin"), default="xnnpack")
    args = ap.parse_args(argv)
    perf = shutil.which("perf")
    if perf is None:
        print("bench_profile: no perf on PATH (Debian: apt install linux-perf)", file=sys.stderr)
        return 2
    if not args.lib.is_file():
        print(f"bench_profile: no such library: {args.lib}", file=sys.stderr)
        return 2
    python, reason = rt_support.reference_python()
    if python is None:
        print(f"bench_profile: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.model in rt_models.SYNTHETIC_MODELS:
            model = work / f"{args.model}.tflite"
            model.write_bytes(rt_models.SYNTHETIC_MODELS[args.model]())
        else:
            models = rt_support.mediapipe_models()
            if args.model not in models:
                print(f"bench_profile: no such model: {args.model} (known: "
                      f"{', '.join(sorted([*models, *rt_models.SYNTHETIC_MODELS]))})",
                      file=sys.stderr)
                return 2
            model = models[args.model]
        jobs = work / "jobs.json"
        jobs.write_text(json.dumps([{"kind": "paired_bench", "model": str(model),
                                     "num_threads": 1, "warmup": 5, "runs": args.pairs,
                                     "max_seconds": 600.0, "kernels": args.kernels}]))
        data = work / "perf.data"
        subprocess.run([perf, "record", "-q", "-o", str(data), "--", str(python),
                        str(REPO / "tests" / "runtime" / "runtime_jobs.py"), "tflite_edge",
                        str(jobs)], check=True, capture_output=True,
                       env=rt_support.runtime_env(str(args.lib.resolve())))
        result = json.loads(Path(str(jobs) + ".out").read_text())[0]
        if "error" in result:
            raise SystemExit(f"{args.model}: {result['error']}")
        report = subprocess.run([perf, "report", "-i", str(data), "--sort", "dso,symbol",
                                 "--stdio"], check=True, capture_output=True, text=True).stdout
    ref, edge = result["runtime_times"], result["edge_times"]
    ratio = statistics.median(e / t for t, e in zip(ref, edge, strict=True))
    print(f"{args.model}: {len(edge)} pairs, tflite-runtime {statistics.median(ref) * 1e3:.3f} "
          f"ms, tflite-edge {statistics.median(edge) * 1e3:.3f} ms, median pair ratio "
          f"{ratio:.2f} ({args.kernels}; tflite-edge on {args.lib}).")
    print()
    print("| share of samples | library | symbol |")
    print("| ---: | --- | --- |")
    shown = 0
    for line in report.splitlines():
        fields = line.split()
        if shown >= args.top or not fields or not fields[0].endswith("%") or line.startswith("#"):
            continue
        # "  17.03%  libtensorflowlite_c.so  [.] xnn_f32_igemm_..."
        rest = fields[3:]
        while rest and rest[-1] == "-":  # perf's empty columns after the symbol
            rest.pop()
        share, dso, symbol = fields[0], fields[1], " ".join(rest)
        print(f"| {share} | {dso} | `{symbol}` |")
        shown += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
