#!/usr/bin/env python3
"""Per-invoke overhead of tflite-edge vs tflite-runtime 2.14.0, as a ratio in one run.

The round a small model at a high rate pays for: two ``set_tensor`` (two inputs),
``invoke``, ``get_tensor``. Models (generated): ``add2x4``, a one-op ADD of two float32
[1,4] inputs, where the round is all overhead, and ``fc1ms``, FULLY_CONNECTED layers whose
invoke takes 1-2 ms, where the kernel dominates. Runtimes: tflite-runtime 2.14.0, tflite-edge
(with its shim, ``libtflite_edge_shim.so`` beside the library: bound tensors, one ctypes
call per round), tflite-edge on the plain C API (the same library copied alone into a
temporary directory, so no shim is found) and, with ``--baseline REV``, tflite-edge's Python
package as of that git revision on the same library (before/after in one run). All run in
the same Python (the tflite-runtime venv under $EDGEFORGE_CACHE), one process per runtime
and repeat, interleaved: runtime A, B, C, A, B, C, ...; reported: the best repeat's µs per
round for each, as wall time and as the timing thread's CPU time (``time.thread_time``, which
leaves out what other processes on a shared machine take), and the ratios to tflite-runtime.

Usage: TFLITE_EDGE_LIBRARY=/path/libtensorflowlite_c.so python bench/bench_invoke.py
       [--rounds N] [--repeats N] [--threads N] [--baseline REV] [--paired BLOCKS]

``--paired BLOCKS`` instead loads tflite-runtime and tflite-edge into one process and times
BLOCKS blocks of ``--rounds`` rounds, alternating the two (A B, B A, ...), and reports the
median of the blocks' pair ratios: on this shared VM the speed drifts between seconds, which
the separate processes above see differently.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rt_support  # noqa: E402
from bench_runtime import _cpu_name  # noqa: E402
from tflite_writer import (  # noqa: E402
    OP_ADD,
    OP_FULLY_CONNECTED,
    OPTIONS_FULLY_CONNECTED,
    Model,
    Op,
    Table,
    Tensor,
)

RUNTIMES = ("tflite_runtime", "tflite_edge", "tflite_edge_plain")
LABELS = {"tflite_runtime": "tflite-runtime", "tflite_edge": "tflite-edge",
          "tflite_edge_plain": "tflite-edge, plain C API",
          "tflite_edge_baseline": "tflite-edge at the baseline"}


def add_model(n: int = 4) -> bytes:
    """z = x + y, float32 [1, n] each: the round is all overhead."""
    tensors = [Tensor("x", np.float32, (1, n)), Tensor("y", np.float32, (1, n)),
               Tensor("z", np.float32, (1, n))]
    return Model(tensors, [Op(OP_ADD, [0, 1], [2], 11, Table())], [0, 1], [2]).to_bytes()


def fc_model(width: int = 1024, layers: int = 4, seed: int = 3) -> bytes:
    """h = x + y, then ``layers`` FULLY_CONNECTED [width x width] (float32, batch 8): a
    model whose invoke takes about 1-2 ms on one core, with the same two inputs."""
    rng = np.random.default_rng(seed)
    batch = 8
    tensors = [Tensor("x", np.float32, (batch, width)), Tensor("y", np.float32, (batch, width)),
               Tensor("h0", np.float32, (batch, width))]
    ops = [Op(OP_ADD, [0, 1], [2], 11, Table())]
    prev = 2
    for i in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        tensors.append(Tensor(f"w{i}", np.float32, (width, width), data=w))
        tensors.append(Tensor(f"h{i + 1}", np.float32, (batch, width)))
        ops.append(Op(OP_FULLY_CONNECTED, [prev, len(tensors) - 2, -1], [len(tensors) - 1],
                      OPTIONS_FULLY_CONNECTED, Table()))
        prev = len(tensors) - 1
    return Model(tensors, ops, [0, 1], [len(tensors) - 1]).to_bytes()


def _round_timer(it: Any) -> Callable[[int], tuple[float, float, Any]]:
    """A function that times ``n`` rounds (two set_tensor, invoke, get_tensor) on the
    allocated interpreter ``it``: (wall s, thread CPU s) per round and the last output."""
    import time

    a, b = (d["index"] for d in it.get_input_details())
    out = it.get_output_details()[0]["index"]
    shape = it.get_input_details()[0]["shape"]
    x = np.full(shape, 1.5, np.float32)
    y = np.full(shape, 2.0, np.float32)
    set_tensor, invoke, get_tensor = it.set_tensor, it.invoke, it.get_tensor

    def timed(n: int) -> tuple[float, float, Any]:
        result = None
        t0, c0 = time.perf_counter(), time.thread_time()
        for _ in range(n):
            set_tensor(a, x)
            set_tensor(b, y)
            invoke()
            result = get_tensor(out)
        return (time.perf_counter() - t0) / n, (time.thread_time() - c0) / n, result

    return timed


def job(runtime: str, model: str, rounds: int, threads: int) -> dict[str, float]:
    """One process's measurement (runs under the reference venv's Python)."""
    if runtime == "tflite_runtime":
        from tflite_runtime.interpreter import Interpreter
    else:
        from tflite_edge.interpreter import Interpreter
    it = Interpreter(model_path=model, num_threads=threads)
    it.allocate_tensors()
    timed = _round_timer(it)
    timed(max(rounds // 10, 10))
    seconds, cpu, result = timed(rounds)
    return {"us_per_round": seconds * 1e6, "cpu_us_per_round": cpu * 1e6,
            "checksum": float(np.asarray(result).sum())}


def paired_job(model: str, rounds: int, threads: int, blocks: int) -> dict[str, list[float]]:
    """tflite-runtime and tflite-edge (with the shim) in this process, ``blocks`` blocks of
    ``rounds`` rounds each, alternating A B, B A, ...: µs per round of each block, paired."""
    from tflite_edge.interpreter import Interpreter as EdgeInterpreter
    from tflite_runtime.interpreter import Interpreter as RuntimeInterpreter

    timers = []
    outputs: list[Any] = []
    for cls in (RuntimeInterpreter, EdgeInterpreter):
        it = cls(model_path=model, num_threads=threads)
        it.allocate_tensors()
        timed = _round_timer(it)
        outputs.append(np.array(timed(max(rounds // 10, 10))[2]))
        timers.append(timed)
    if not np.allclose(outputs[0], outputs[1], rtol=1e-4):
        raise SystemExit(f"the runtimes disagree on the output: {outputs}")
    times: list[list[float]] = [[], []]
    for k in range(blocks):
        for i in ((0, 1) if k % 2 == 0 else (1, 0)):
            times[i].append(timers[i](rounds)[0] * 1e6)
    return {"tflite_runtime": times[0], "tflite_edge": times[1]}


def _report_paired(python: Path, library: str, rounds: int, threads: int, blocks: int) -> int:
    env = rt_support.runtime_env(library)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data, n in (("add2x4", add_model(), rounds),
                              ("fc1ms", fc_model(), max(rounds // 50, 50))):
            path = Path(tmp) / f"{name}.tflite"
            path.write_bytes(data)
            argv = [str(python), __file__, "--paired-job", str(path), str(n), str(threads),
                    str(blocks)]
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1800)
            if proc.returncode:
                raise SystemExit(f"paired job on {name} failed:\n{proc.stderr[-2000:]}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            ref, edge = r["tflite_runtime"], r["tflite_edge"]
            ratio = statistics.median(e / t for t, e in zip(ref, edge, strict=True))
            rows.append((name, n, statistics.median(ref), statistics.median(edge), ratio))
    print(f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} after the run; num_threads={threads}; both runtimes in "
          f"one process, {blocks} blocks of rounds each, alternating (A B, B A, ...); the "
          "ratio is the median of the blocks' pair ratios.")
    print(f"tflite-runtime 2.14.0 (PyPI wheel) vs tflite-edge on {library}.")
    print()
    print("| model | rounds per block | tflite-runtime (µs, median block) | tflite-edge (µs) "
          "| ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, n, ref_us, edge_us, ratio in rows:
        print(f"| {name} | {n} | {ref_us:.2f} | {edge_us:.2f} | **{ratio:.2f}** |")
    return 0


def micro(model: str, repeats: int) -> dict[str, dict[str, float]]:
    """Per call, in this process (run under the reference venv's Python): tflite-runtime's
    and tflite-edge's set_tensor, invoke, get_tensor, the whole round (two set_tensor,
    invoke, get_tensor), and the lock each call of
    tflite-edge takes (tflite_edge._lock.CallLock inline) against threading.RLock's
    acquire()/release(). Best of ``repeats`` x 20000 calls, timing thread's CPU time, ns."""
    import threading
    import time
    import timeit

    from tflite_edge._lock import CallLock
    from tflite_edge.interpreter import Interpreter as Edge
    from tflite_runtime.interpreter import Interpreter as Reference

    def lock_pair(lock: CallLock) -> None:
        try:
            lock.free.pop()
        except IndexError:
            lock.wait()
        try:
            pass
        finally:
            lock.free.append(True)
            if lock.waiting:
                lock.wake()

    def rlock_pair(lock: threading.RLock) -> None:
        lock.acquire()
        try:
            pass
        finally:
            lock.release()

    def rlock_with(lock: threading.RLock) -> None:  # what tflite-edge did before issue 11
        with lock:
            pass

    x = np.full((1, 4), 1.5, np.float32)
    spaces: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for name, cls in (("tflite_runtime", Reference), ("tflite_edge", Edge)):
        it = cls(model_path=model, num_threads=1)
        it.allocate_tensors()
        spaces[name] = {"set_tensor": ("f(0, x)", {"f": it.set_tensor, "x": x}),
                        "invoke": ("f()", {"f": it.invoke}),
                        "get_tensor": ("f(2)", {"f": it.get_tensor}),
                        "round": ("s(0, x); s(1, x); i(); g(2)",
                                  {"s": it.set_tensor, "i": it.invoke, "g": it.get_tensor,
                                   "x": x})}
    # tflite-edge's invoke with the run that releases the GIL, as a model whose invokes take
    # 10 µs or more gets it (a tiny one like this keeps the GIL: FastPath.probe).
    released = Edge(model_path=model, num_threads=1)
    released.allocate_tensors()
    if released._fast is not None:
        released._invoke = released._fast.run
        spaces["gil_released"] = {"invoke": ("f()", {"f": released.invoke})}
    spaces["lock"] = {"CallLock": ("f(lock)", {"f": lock_pair, "lock": CallLock()}),
                      "RLock": ("f(lock)", {"f": rlock_pair, "lock": threading.RLock()}),
                      "with RLock": ("f(lock)", {"f": rlock_with, "lock": threading.RLock()})}
    best: dict[str, dict[str, float]] = {}
    n = 20000
    for _ in range(repeats):
        for name, calls in spaces.items():
            for call, (stmt, namespace) in calls.items():
                t = timeit.timeit(stmt, globals=namespace, number=n, timer=time.thread_time)
                slot = best.setdefault(name, {})
                slot[call] = min(slot.get(call, float("inf")), t / n * 1e9)
    return best


def _report_micro(python: Path, library: str, repeats: int) -> int:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "add2x4.tflite"
        path.write_bytes(add_model())
        proc = subprocess.run([str(python), __file__, "--micro-job", str(path), str(repeats)],
                              capture_output=True, text=True, env=rt_support.runtime_env(library),
                              timeout=900)
    if proc.returncode:
        raise SystemExit(f"--micro failed:\n{proc.stderr[-2000:]}")
    best = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, load average {load_before:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after; add2x4 in one process, best of {repeats} "
          "x 20000 calls, the thread's CPU time per call (ns).")
    print()
    print("| call | tflite-runtime (ns) | tflite-edge (ns) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for call in ("set_tensor", "invoke", "get_tensor", "round"):
        ref, edge = best["tflite_runtime"][call], best["tflite_edge"][call]
        print(f"| {call} | {ref:.0f} | {edge:.0f} | {edge / ref:.2f} |")
    print()
    if "gil_released" in best:
        print(f"tflite-edge's invoke releasing the GIL (what it does for invokes of 10 µs "
              f"and more): {best['gil_released']['invoke']:.0f} ns.")
    print(f"Lock taken and given back, in a function: CallLock inline "
          f"{best['lock']['CallLock']:.0f} ns, threading.RLock acquire()/release() "
          f"{best['lock']['RLock']:.0f} ns, `with` on a threading.RLock "
          f"{best['lock']['with RLock']:.0f} ns.")
    return 0


def _export_package(revision: str, dest: Path) -> Path:
    """tflite-edge's Python package as of a git revision of this checkout (its src dir)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision,
                              "wheels/tflite-edge/src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "wheels" / "tflite-edge" / "src"


def _run(python: Path, runtime: str, model: Path, rounds: int, threads: int,
         env: dict[str, str]) -> dict[str, float]:
    argv = [str(python), __file__, "--job", runtime, str(model), str(rounds), str(threads)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode:
        raise SystemExit(f"{runtime} on {model.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--job"]:
        runtime, model, rounds, threads = argv[1], argv[2], int(argv[3]), int(argv[4])
        print(json.dumps(job(runtime, model, rounds, threads)))
        return 0
    if argv[:1] == ["--paired-job"]:
        print(json.dumps(paired_job(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))))
        return 0
    if argv[:1] == ["--micro-job"]:
        print(json.dumps(micro(argv[1], int(argv[2]))))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20000, help="timed rounds, tiny model")
    ap.add_argument("--repeats", type=int, default=5, help="processes per runtime and model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--micro", action="store_true",
                    help="instead: each call's cost in one process (both runtimes, and the "
                         "lock tflite-edge takes per call against threading.RLock)")
    ap.add_argument("--paired", type=int, metavar="BLOCKS", default=0,
                    help="instead: tflite-runtime and tflite-edge in one process, BLOCKS "
                         "blocks of --rounds rounds each, alternating; the median pair ratio "
                         "(what a machine whose speed drifts leaves comparable)")
    ap.add_argument("--baseline", metavar="REV",
                    help="also run tflite-edge's Python package as of this git revision "
                         "(with the shim, the same library): before/after in one run")
    args = ap.parse_args(argv)
    runtimes = RUNTIMES + (("tflite_edge_baseline",) if args.baseline else ())

    library, reason = rt_support.find_library()
    if library is None:
        print(f"bench_invoke: {reason}", file=sys.stderr)
        return 2
    python, reason = rt_support.reference_python()
    if python is None:
        print(f"bench_invoke: {reason}", file=sys.stderr)
        return 2
    if args.micro:
        return _report_micro(python, library, args.repeats)
    if args.paired:
        return _report_paired(python, library, args.rounds, args.threads, args.paired)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = work / "plain" / Path(library).name  # the library alone: no shim beside it
        plain.parent.mkdir()
        shutil.copy2(library, plain)
        envs = {"tflite_runtime": dict(os.environ), "tflite_edge": rt_support.runtime_env(library),
                "tflite_edge_plain": rt_support.runtime_env(str(plain))}
        if args.baseline:
            envs["tflite_edge_baseline"] = rt_support.runtime_env(
                library, extra_path=[str(_export_package(args.baseline, work / "baseline"))])
        models = {"add2x4": (add_model(), args.rounds),
                  "fc1ms": (fc_model(), max(args.rounds // 50, 50))}
        for name, (data, rounds) in models.items():
            path = work / f"{name}.tflite"
            path.write_bytes(data)
            for _ in range(args.repeats):
                for runtime in runtimes:
                    r = _run(python, runtime, path, rounds, args.threads, envs[runtime])
                    results.setdefault((name, runtime), []).append(r)
    version = subprocess.run(
        [str(python), "-c", "import numpy, sys; print(numpy.__version__, sys.version.split()[0])"],
        capture_output=True, text=True, check=True).stdout.split()
    print(f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, load average {load_before:.2f} "
          f"before the run, {os.getloadavg()[0]:.2f} after; Python {version[1]}, numpy "
          f"{version[0]}; num_threads={args.threads}; best of {args.repeats} processes per "
          "runtime, interleaved; wall time and the timing thread's CPU time "
          "(time.thread_time: what other processes on the machine take away is left out).")
    print(f"tflite-runtime 2.14.0 (PyPI wheel) vs tflite-edge on {library}.")
    print()
    others = runtimes[1:]
    print("| model | rounds | tflite-runtime wall / CPU (µs) | "
          + " | ".join(f"{LABELS[rt]} wall / CPU (µs) | ratio" for rt in others) + " |")
    print("| --- | ---: | ---: |" + " ---: | ---: |" * len(others))
    for name, (_, rounds) in models.items():
        sums = [r["checksum"] for rt in runtimes for r in results[(name, rt)]]
        if not np.allclose(sums, sums[0], rtol=1e-4):
            raise SystemExit(f"{name}: the runtimes disagree on the output: {sums}")
        wall = {rt: min(r["us_per_round"] for r in results[(name, rt)]) for rt in runtimes}
        cpu = {rt: min(r["cpu_us_per_round"] for r in results[(name, rt)]) for rt in runtimes}
        cells = [f"{wall['tflite_runtime']:.2f} / {cpu['tflite_runtime']:.2f}"]
        for rt in others:
            cells.append(f"{wall[rt]:.2f} / {cpu[rt]:.2f}")
            cells.append(f"{wall[rt] / wall['tflite_runtime']:.2f} / "
                         f"{cpu[rt] / cpu['tflite_runtime']:.2f}")
        print(f"| {name} | {rounds} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
