#!/usr/bin/env python3
"""Node.js binding (tflite-edge on npm, koffi FFI) vs the Python one: per-invoke cost, and the
npm packages' sizes vs tfjs-tflite-node 0.0.2.

The round (bench_invoke.py's): two ``setTensor``/``set_tensor`` (two float32 inputs),
``invoke``, ``getTensor``/``get_tensor``, on ``add2x4`` (a one-op ADD of [1,4] inputs: all
overhead) and ``fc1ms`` (FULLY_CONNECTED layers, ~1-2 ms of kernel). Runtimes: tflite-runtime
2.14.0 and tflite-edge (Python, with its shim where the wheel has one) in the tflite-runtime
reference venv; tflite-edge for Node, installed by npm from the packages ``edgeforge npm``
generates from the same wheel (a registry on 127.0.0.1, edgeforge.npm.registry), with
``invoke()`` and with ``await invokeAsync()``; and the same C calls through a Node-API addon
(``bench/napi_probe.c``, compiled here), the binding koffi was chosen over. One process per
runtime and repeat, interleaved; reported: the best repeat's µs per round (wall) and CPU µs
(Python: the timing thread's; Node: the process's, V8's own threads included).

Usage: python bench/bench_node.py --wheel-dir DIR [--rounds N] [--repeats N] [--tfjs]
(DIR holds the host's tflite_edge_lib wheel, e.g. build/ci-dist; --tfjs also ``npm pack``s
tfjs-tflite-node 0.0.2 from npm's registry to measure it.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import rt_support  # noqa: E402
from bench_invoke import _run, add_model, fc_model  # noqa: E402
from bench_runtime import _cpu_name  # noqa: E402

from edgeforge.npm import generate, mirror, registry  # noqa: E402

NODE_JOB = r"""
const te = require('tflite-edge');
const [model, rounds, threads, mode] = process.argv.slice(2);
const n = Number(rounds);
(async () => {
  const it = new te.Interpreter(model, { numThreads: Number(threads) });
  it.allocateTensors();
  const [a, b] = it.getInputDetails();
  const out = it.getOutputDetails()[0].index;
  const x = new Float32Array(a.bytes / 4).fill(1.5);
  const y = new Float32Array(b.bytes / 4).fill(2.0);
  let result;
  const set = () => { it.setTensor(a.index, x); it.setTensor(b.index, y); };
  const round = mode === 'async'
    ? async () => { set(); await it.invokeAsync(); result = it.getTensor(out); }
    : () => { set(); it.invoke(); result = it.getTensor(out); };
  for (let i = 0; i < Math.max(n / 10, 10); i++) await round();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  if (mode === 'async') {
    for (let i = 0; i < n; i++) await round();
  } else {
    for (let i = 0; i < n; i++) round();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9 / n;
  const cpu = process.cpuUsage(c0);
  console.log(JSON.stringify({
    us_per_round: seconds * 1e6, cpu_us_per_round: (cpu.user + cpu.system) / n,
    checksum: result.reduce((s, v) => s + v, 0) }));
})();
"""

# The same round through bench/napi_probe.c, a Node-API addon (the tensor indices are read
# through tflite-edge once, outside the timed loop).
NAPI_JOB = r"""
const te = require('tflite-edge');
const probe = require(process.argv[6]);
const [model, rounds, threads] = process.argv.slice(2);
const n = Number(rounds);
const it = new te.Interpreter(model);
const [a, b] = it.getInputDetails();
const out = it.getOutputDetails()[0].index;
const h = probe.create(model, Number(threads));
const x = new Float32Array(a.bytes / 4).fill(1.5);
const y = new Float32Array(b.bytes / 4).fill(2.0);
let result;
const round = () => {
  probe.setTensor(h, a.index, x); probe.setTensor(h, b.index, y); probe.invoke(h);
  result = probe.getTensor(h, out);
};
for (let i = 0; i < Math.max(n / 10, 10); i++) round();
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < n; i++) round();
const seconds = Number(process.hrtime.bigint() - t0) / 1e9 / n;
const cpu = process.cpuUsage(c0);
console.log(JSON.stringify({
  us_per_round: seconds * 1e6, cpu_us_per_round: (cpu.user + cpu.system) / n,
  checksum: result.reduce((s, v) => s + v, 0) }));
"""

LABELS = {"tflite_runtime": "tflite-runtime (Python)", "tflite_edge": "tflite-edge (Python)",
          "node_sync": "tflite-edge (Node, koffi, invoke)",
          "node_async": "tflite-edge (Node, koffi, await invokeAsync)",
          "node_napi": "Node-API addon (bench/napi_probe.c)"}


def build_probe(deps: Path, library: Path, out: Path) -> Path:
    """bench/napi_probe.c compiled against the Node-API headers koffi's package vendors."""
    (koffi,) = deps.glob("koffi-*.tgz")
    with tarfile.open(koffi) as tar:
        tar.extractall(out, [m for m in tar.getmembers()
                             if m.name.startswith("package/vendor/node-api-headers/include/")],
                       filter="data")
    probe = out / "napi_probe.node"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-DNAPI_VERSION=8",
                    "-DNODE_GYP_MODULE_NAME=napi_probe", "-I",
                    str(out / "package/vendor/node-api-headers/include"), "-o", str(probe),
                    str(Path(__file__).resolve().parent / "napi_probe.c"),
                    f"-L{library.parent}", "-ltensorflowlite_c",
                    f"-Wl,-rpath,{library.parent}"], check=True)
    return probe


def _node(project: Path, model: Path, rounds: int, threads: int, mode: str,
          probe: Path) -> dict[str, float]:
    script = "napi.js" if mode == "napi" else "job.js"
    proc = subprocess.run(["node", script, str(model), str(rounds), str(threads), mode,
                           str(probe)], cwd=project, capture_output=True, text=True, timeout=900)
    if proc.returncode:
        raise SystemExit(f"node {mode} on {model.name} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel-dir", type=Path,
                    default=os.environ.get("EDGEFORGE_TFLITE_WHEEL_DIR"),
                    help="the host's tflite_edge_lib wheel (default $EDGEFORGE_TFLITE_WHEEL_DIR)")
    ap.add_argument("--extra-wheels", type=Path, action="append", default=[],
                    help="more wheel directories to package (cross wheels: their sizes)")
    ap.add_argument("--rounds", type=int, default=20000, help="timed rounds, tiny model")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tfjs", action="store_true", help="measure tfjs-tflite-node 0.0.2 too")
    args = ap.parse_args(argv)
    if args.wheel_dir is None or shutil.which("node") is None:
        print("bench_node: needs --wheel-dir (or $EDGEFORGE_TFLITE_WHEEL_DIR) and node/npm",
              file=sys.stderr)
        return 2
    python, reason = rt_support.reference_python()
    if python is None:
        print(f"bench_node: {reason}", file=sys.stderr)
        return 2
    deps = mirror.mirror_dir()
    mirror.fill(deps)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        made = generate.generate([args.wheel_dir, *args.extra_wheels], work / "dirs")
        dirs = [d for g in made for d in (g.main, *g.platforms.values())]
        tarballs = generate.pack(dirs, work / "tgz")
        version = made[0].version
        done = registry.install(work / "app", [f"tflite-edge@{version}"], [work / "tgz", deps])
        (work / "app" / "job.js").write_text(NODE_JOB)
        (work / "app" / "napi.js").write_text(NAPI_JOB)
        (wheel,) = Path(args.wheel_dir).glob("tflite_edge_lib-*x86_64*.whl")
        with zipfile.ZipFile(wheel) as zf:
            lib_files = [n for n in zf.namelist() if n.startswith("tflite_edge_lib/lib/")]
            zf.extractall(work / "lib", lib_files)
        library = str(work / "lib" / "tflite_edge_lib" / "lib" / "libtensorflowlite_c.so")
        shim = any(n.endswith("libtflite_edge_shim.so") for n in lib_files)
        probe = build_probe(deps, Path(library), work / "probe")
        envs = {"tflite_runtime": dict(os.environ), "tflite_edge": rt_support.runtime_env(library)}
        models = {"add2x4": (add_model(), args.rounds),
                  "fc1ms": (fc_model(), max(args.rounds // 50, 50))}
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for name, (data, rounds) in models.items():
            path = work / f"{name}.tflite"
            path.write_bytes(data)
            for _ in range(args.repeats):
                for rt in LABELS:
                    if rt.startswith("node_"):
                        r = _node(work / "app", path, rounds, args.threads, rt[5:], probe)
                    else:
                        r = _run(python, rt, path, rounds, args.threads, envs[rt])
                    results.setdefault((name, rt), []).append(r)
        sizes = {t.name: t.stat().st_size for t in tarballs}
        sizes.update({t.name: t.stat().st_size for t in deps.glob("*.tgz")
                      if "linux-x64" in t.name or t.name.startswith("koffi-")})
        installed = _du(work / "app" / "node_modules")
        tfjs = None
        if args.tfjs:
            proc = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(work),
                                   "--cache", str(work / "cache"), "tfjs-tflite-node@0.0.2"],
                                  capture_output=True, text=True, check=True)
            tfjs = json.loads(proc.stdout)[0]
    node_version = subprocess.check_output(["node", "--version"], text=True).strip()
    print(f"Machine: {_cpu_name()}, {os.cpu_count()} CPUs, load average {load_before:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after; node {node_version}, "
          f"koffi 3.3.4; num_threads={args.threads}; best of {args.repeats} processes per "
          f"runtime, interleaved. Library: {wheel.name} ({'with' if shim else 'without'} the "
          f"shim); npm install of tflite-edge from the local registry: {done.seconds:.1f} s.")
    print()
    rts = list(LABELS)
    print("| model | rounds | " + " | ".join(f"{LABELS[rt]} wall / CPU (µs)" for rt in rts)
          + " |")
    print("| --- | ---: |" + " ---: |" * len(rts))
    for name, (_, rounds) in models.items():
        sums = [r["checksum"] for rt in rts for r in results[(name, rt)]]
        if max(sums) - min(sums) > 1e-4 * max(1.0, abs(sums[0])):
            raise SystemExit(f"{name}: the runtimes disagree on the output: {sums}")
        cells = []
        for rt in rts:
            wall = min(r["us_per_round"] for r in results[(name, rt)])
            cpu = min(r["cpu_us_per_round"] for r in results[(name, rt)])
            cells.append(f"{wall:.2f} / {cpu:.2f}")
        print(f"| {name} | {rounds} | " + " | ".join(cells) + " |")
    print()
    print("| npm package | tarball (bytes) |")
    print("| --- | ---: |")
    for name, size in sorted(sizes.items()):
        print(f"| {name} | {size:,} |")
    print(f"| node_modules of `npm install tflite-edge` on linux-x64 (unpacked) | {installed:,} |")
    if tfjs is not None:
        print(f"| tfjs-tflite-node-0.0.2.tgz (one package: libtensorflowlite_c for "
              f"linux amd64/arm64, darwin arm64, windows amd64, and the addon's source that "
              f"node-gyp compiles at install; {tfjs['unpackedSize']:,} unpacked) | "
              f"{tfjs['size']:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
