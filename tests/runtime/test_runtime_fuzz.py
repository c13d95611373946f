"""Fuzz: mutated real models never crash the process that loads them.

At least 10,000 mutated models (bit flips, 32-bit words, byte splices, truncations,
insertions/deletions; 80% of them aimed at the flatbuffer's structure rather than the
weights) from real mediapipe models and the generated ones go through
Interpreter -> allocate_tensors -> invoke in worker subprocesses. A worker that dies names
the case that killed it (saved under $EDGEFORGE_CACHE/fuzz-crashes for replay) and is
restarted after it. TFLITE_EDGE_FUZZ_CASES overrides the count.

Any crash while *loading* a model (Interpreter construction: TFLite's flatbuffer
verifier, tflite-edge's own checks, InterpreterBuilder) fails the test. Crashes while
*running* a model that passed all of those (allocate_tensors/invoke, inside TFLite's
kernels and the XNNPACK delegate) are reported with their replay files and bounded
(at most 0.2% of cases), not prevented; measured on TFLite 2.14.1, 20,000 cases: 4 aborts
where TFLite's arena or XNNPACK throws std::bad_alloc through the C API (tflite_runtime's
pybind11 layer turns these into MemoryError; through ctypes the process aborts), 5 other
SIGSEGV/SIGABRT in XNNPACK's handling of corrupted graphs (tflite_runtime crashes on some
of the same inputs too, and raises RuntimeError on others). Workers run under a 6 GiB
RLIMIT_AS; shapes declared in the flatbuffer that cannot fit are rejected at load.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import rt_models
import rt_support

HERE = Path(__file__).resolve().parent
CASES = int(os.environ.get("TFLITE_EDGE_FUZZ_CASES", "10000"))
WORKERS = max(1, min(4, os.cpu_count() or 1))
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


def _run_chunk(spec_path: Path, first: int, end: int, env: dict[str, str],
               findings: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> None:
    start = first
    while start < end:
        proc = subprocess.Popen([sys.executable, str(HERE / "fuzz_worker.py"), str(spec_path),
                                 str(start), str(end)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
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
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
        if proc.returncode == 0 and summary is not None:
            summaries.append({"counts": counts, "unexpected": summary["unexpected"]})
            return
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
    findings: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    bounds = [CASES * i // WORKERS for i in range(WORKERS + 1)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=_run_chunk, args=(spec, bounds[i], bounds[i + 1], env,
                                                          findings, summaries))
               for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
    crashes = [f for f in findings if f["kind"] == "crashed"]
    assert not crashes, f"{report}\ncrashes while loading:\n" + "\n".join(map(str, crashes))
    # Measured and bounded, not prevented: crashes inside TFLite's kernels/XNNPACK while
    # allocating or invoking a model that passed every load-time check (see the docstring).
    run_stage = [f for f in findings if f["kind"] != "crashed"]
    for f in run_stage:
        print("run-stage finding:", {k: v for k, v in f.items() if k != "stderr"})
    assert len(run_stage) <= max(10, CASES // 500), f"{report}\n" + "\n".join(
        map(str, run_stage))
    assert not unexpected, f"{report}\nunexpected exceptions:\n" + "\n".join(map(str, unexpected))
    # The fuzzer reaches both sides: models TFLite rejects and models that still run.
    assert counts.get("rejected", 0) > CASES // 20, report
    assert counts.get("ran", 0) > CASES // 20, report
