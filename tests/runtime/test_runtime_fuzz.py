"""Fuzz: mutated real models never crash the process that loads them.

At least 20,000 mutated models from real mediapipe models and the generated ones go through
Interpreter -> allocate_tensors -> invoke in worker subprocesses: bit flips, 32-bit words,
byte splices within a model and grafts from other models, truncations,
insertions/deletions, and mutations aimed at the flatbuffer's layout (fuzz_worker.Layout,
from schema.fbs): boundary values in scalar fields and vector elements (shapes, tensor and
opcode indices, enums, quantization), offset rewrites (to other tables and vectors, out of
bounds, shared subtrees) and vtable rewrites (another table's vtable, fields moved, vtable
and table lengths). A worker that dies names the case that killed it (saved under
$EDGEFORGE_CACHE/fuzz-crashes for replay) and is restarted after it. Chunks of cases go to
a pool of workers, one per core. TFLITE_EDGE_FUZZ_CASES overrides the count.

No crash is allowed, while loading or while running (allocate_tensors/invoke).
tflite-edge's shim (libtflite_edge_shim.so beside the library) turns C++ exceptions thrown
through the C API (std::bad_alloc in the arena, ...) into the Python exceptions
tflite_runtime raises; tflite-edge's own checks refuse (RuntimeError) or run without
XNNPACK the graphs TFLite's kernels or the XNNPACK delegate do not survive (interpreter.py:
_missing_tensor, _xnnpack_unsafe; _model_checks.py: convolution options and quantized
scales the kernels use unchecked); recipes/patches/xnnpack-setup-runtime-memory-status.patch
makes XNNPACK report a workspace it cannot allocate instead of running into it. Measured on
20,000 cases (seed 20231014, 184-308 s with 2 workers on a shared machine, load 3-7):
0 crashes. Before the last two fixes, 4 run-stage crashes: XNNPACK's unallocated workspace
(cases 743 and 3072, a PAD's padding grown to 32,768/65,535 by the mutation; 743 only under
the workers' RLIMIT_AS), CONV_2D padding -1 (5246), DEPTHWISE_CONV_2D stride 2^20 narrowed
to 0 (8230); tests/runtime/test_model_checks.py has each class on a small model. Another seed
(20261201) found one more, a quantized ADD without scales (SIGABRT), now refused too.
Before the shim and the checks, the same cases crashed 22 times in the first 2,000.
Workers run under a 6 GiB RLIMIT_AS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rt_models
import rt_support

HERE = Path(__file__).resolve().parent
CASES = int(os.environ.get("TFLITE_EDGE_FUZZ_CASES", "20000"))
WORKERS = max(1, min(4, os.cpu_count() or 1))
CHUNK = 1000  # cases per worker process (a crash restarts it after the case)
SEED = 20231014
MEDIAPIPE_SEEDS = ("hand_recrop", "face_detection_short_range",
                   "face_detection_full_range_sparse", "iris_landmark")


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def _run_chunk(spec_path: Path, first: int, end: int, env: dict[str, str]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cases [first, end) in worker processes: (findings, summaries)."""
    findings: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    start = first
    while start < end:
        with tempfile.TemporaryFile() as errfile:  # a file: a chatty worker never blocks
            proc = subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), str(spec_path),
                                     str(start), str(end)], stdout=subprocess.PIPE,
                                    stderr=errfile, text=True, env=env)
            last = start
            stage = "load"
            counts: dict[str, int] = {}
            summary = None
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("case "):
                    last = int(line.split()[1])
                    stage = "load"
                elif line.startswith("stage "):
                    stage = line.split()[1]
                elif line.startswith("done "):
                    outcome = line.split()[2]
                    counts[outcome] = counts.get(outcome, 0) + 1
                elif line.startswith("summary "):
                    summary = json.loads(line[len("summary "):])
            proc.wait()
            errfile.seek(0)
            stderr = errfile.read().decode("utf-8", "replace")[-4000:]
        if proc.returncode == 0 and summary is not None:
            summaries.append({"counts": counts, "unexpected": summary["unexpected"]})
            return findings, summaries
        how = _signal_name(proc.returncode)
        kind = "crashed"  # while loading: never acceptable
        if stage == "run":
            if how == "SIGALRM":
                kind = "run_timeout"
            elif "std::bad_alloc" in stderr:
                kind = "run_oom_abort"
            else:
                kind = "run_crash"
        counts[kind] = counts.get(kind, 0) + 1
        summaries.append({"counts": counts, "unexpected": []})
        findings.append({"case": last, "how": how, "stage": stage, "kind": kind,
                         "stderr": stderr[-600:]})
        start = last + 1
    return findings, summaries


def test_mutated_models_never_crash(library: str, mediapipe: dict[str, Path],
                                    tmp_path: Path) -> None:
    seeds = [str(mediapipe[name]) for name in MEDIAPIPE_SEEDS]
    for name, data in (("int8", rt_models.int8_model()[0]),
                       ("dtypes", rt_models.dtypes_model()),
                       ("add", rt_models.add_model(4, dynamic=True))):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(data)
        seeds.append(str(path))
    spec = tmp_path / "seeds.json"
    spec.write_text(json.dumps({"seed": SEED, "models": seeds}))
    env = rt_support.runtime_env(library)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    assert _shim_in_use(library, env), (
        f"{library} has no usable libtflite_edge_shim.so beside it: C++ exceptions would "
        "abort the workers (build the library with edgeforge's tflite recipe)")
    chunks = [(i, min(i + CHUNK, CASES)) for i in range(0, CASES, CHUNK)]
    t0 = time.monotonic()
    findings: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for found, summary in pool.map(lambda c: _run_chunk(spec, c[0], c[1], env), chunks):
            findings += found
            summaries += summary
    elapsed = time.monotonic() - t0
    counts: dict[str, int] = {}
    unexpected = []
    for s in summaries:
        for k, v in s["counts"].items():
            counts[k] = counts.get(k, 0) + v
        unexpected += s["unexpected"]
    report = (f"{CASES} mutated models in {elapsed:.0f}s with {WORKERS} workers: "
              f"{json.dumps(counts, sort_keys=True)}")
    print(report)
    if findings:
        sys.path.insert(0, str(HERE))
        import fuzz_worker

        models = [Path(p).read_bytes() for p in seeds]
        ranges = [fuzz_worker.structure_ranges(m) for m in models]
        keep = rt_support.cache_root() / "fuzz-crashes"
        keep.mkdir(parents=True, exist_ok=True)
        for f in findings:
            which, data, kinds = fuzz_worker.make_case(SEED, f["case"], models, ranges)
            out = keep / f"case-{f['case']}.tflite"
            out.write_bytes(data)
            f.update(seed_model=Path(seeds[which]).name, mutations=kinds, saved=str(out))
    assert sum(counts.values()) == CASES, report
    for f in findings:
        print("finding:", {k: v for k, v in f.items() if k != "stderr"})
    assert not findings, f"{report}\nworkers that died (replay the saved cases):\n" + \
        "\n".join(map(str, findings))
    assert not unexpected, f"{report}\nunexpected exceptions:\n" + "\n".join(map(str, unexpected))
    # The fuzzer reaches both sides: models TFLite rejects and models that still run.
    assert counts.get("rejected", 0) > CASES // 20, report
    assert counts.get("ran", 0) > CASES // 20, report


def _shim_in_use(library: str, env: dict[str, str]) -> bool:
    check = ("from tflite_edge import _library, _shim; "
             "print(_shim.load_shim(_library.load_library()).problem or 'ok')")
    out = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                         text=True, timeout=120)
    print("shim:", out.stdout.strip() or out.stderr[-500:])
    return out.stdout.strip() == "ok"
