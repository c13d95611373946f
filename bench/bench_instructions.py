#!/usr/bin/env python3
"""Instructions per invoke of two or more libtensorflowlite_c builds, counted by callgrind.

A build change (a unity build, new flags) must not make the kernels slower. Wall-clock
latency on a shared 2-core machine moves by 30% between two runs of the same library;
valgrind's instruction count does not (the same total for the same binary and inputs,
whatever else the machine does), so this compares builds where bench_runtime.py cannot.
Each library runs the same models through tflite_edge (num_threads=1, the model's own
inputs filled with a fixed pattern) twice: with the XNNPACK delegate (tflite_edge's default)
and on TFLite's own kernels (BUILTIN_WITHOUT_DEFAULT_DELEGATES); a warm-up invoke, then RUNS
counted invokes; only instructions inside TfLiteInterpreterInvoke are collected. valgrind
emulates no AVX-512: XNNPACK takes its AVX2 kernels here on any CPU.

Usage: python bench/bench_instructions.py LIB [LIB ...] [--models a,b] [--runs N]
  LIB: a libtensorflowlite_c.so (the shim beside it is used as tflite_edge uses it)
The table gives each library's instructions per invoke and the ratio to the first LIB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))

import rt_support  # noqa: E402

MODELS = "face_detection_short_range,hand_recrop,iris_landmark,palm_detection_lite"

JOB = """
import sys, numpy as np
from tflite_edge import Interpreter, OpResolverType
resolver = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if sys.argv[3] == "tflite"
            else OpResolverType.AUTO)
interp = Interpreter(model_path=sys.argv[1], num_threads=1,
                     experimental_op_resolver_type=resolver)
interp.allocate_tensors()
for d in interp.get_input_details():
    n = int(np.prod(d["shape"]))
    data = (np.arange(n) % 251).astype(np.float64) / 251.0
    interp.set_tensor(d["index"], data.astype(d["dtype"]).reshape(d["shape"]))
interp.invoke()
for _ in range(int(sys.argv[2])):
    interp.invoke()
"""


def instructions(library: str, model: Path, runs: int, kernels: str) -> int:
    """Instructions executed inside TfLiteInterpreterInvoke over runs + 1 invokes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        job = Path(tmp) / "job.py"
        job.write_text(JOB)
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                "--collect-atstart=no", "--toggle-collect=TfLiteInterpreterInvoke",
                sys.executable, str(job), str(model), str(runs), kernels]
        subprocess.run(argv, env=rt_support.runtime_env(library), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in callgrind's output for {library}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("libraries", nargs="+")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--runs", type=int, default=3, help="counted invokes after the warm-up")
    args = ap.parse_args(argv)
    models = rt_support.mediapipe_models()
    names = [n for n in args.models.split(",") if n]
    header = " | ".join(f"lib {i + 1} (Minstr/invoke)" for i in range(len(args.libraries)))
    ratios = " | ".join(f"lib {i + 1}/lib 1" for i in range(1, len(args.libraries)))
    print("\n".join(f"- lib {i + 1}: `{lib}`" for i, lib in enumerate(args.libraries)))
    print(f"\n| model | kernels | {header} | {ratios} |")
    print("|" + " --- |" * (2 * len(args.libraries) + 1))
    for name in names:
        for kernels in ("xnnpack", "tflite"):
            # the warm-up invoke is inside the toggle too: per invoke = total / (runs + 1)
            counts = [instructions(lib, models[name], args.runs, kernels) / (args.runs + 1)
                      for lib in args.libraries]
            cells = " | ".join(f"{c / 1e6:.2f}" for c in counts)
            rel = " | ".join(f"{c / counts[0]:.3f}" for c in counts[1:])
            print(f"| {name} | {kernels} | {cells} | {rel} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
