"""Fuzz worker: feeds mutated models to tflite_edge.Interpreter, one case after another.

Usage: python fuzz_worker.py SEEDS.json FIRST END
SEEDS.json: {"seed": int, "models": [paths]}. Before each case it prints "case N" (flushed),
so when the process dies the parent knows which case killed it; at the end it prints
"summary {json}". Each case is reproducible from (seed, N): see mutate().

A case passes when loading the model either works (then allocate_tensors and invoke are
tried too) or raises ValueError/RuntimeError. Any other exception is reported; a crash
(signal) or a hang (SIGALRM after ALARM_SECONDS) is caught by the parent, which also sees
"stage run" once the model has loaded.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

ALARM_SECONDS = 20
MEMORY_LIMIT = 6 << 30
INTERESTING = (0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF,
               0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000, 0x100000)


def structure_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the model that are not tensor data (tables, vectors, strings): the
    parts TFLite parses. Found with tflite_edge's flatbuffer reader."""
    from tflite_edge._flatbuffer import ModelReader

    reader = ModelReader(data)
    data_ranges = []
    for buf in reader._model.tables(4) or []:  # Model.buffers
        vec = buf._vector(0, 1)  # Buffer.data
        if vec is not None and vec[1] > 64:
            data_ranges.append((vec[0], vec[0] + vec[1]))
    data_ranges.sort()
    out, pos = [], 0
    for start, end in data_ranges:
        if start > pos:
            out.append((pos, start))
        pos = max(pos, end)
    if pos < len(data):
        out.append((pos, len(data)))
    return out


def _position(rng: random.Random, size: int, ranges: list[tuple[int, int]]) -> int:
    if ranges and rng.random() < 0.8:
        start, end = rng.choice(ranges)
        return rng.randrange(start, end)
    return rng.randrange(size)


def mutate(rng: random.Random, data: bytes, ranges: list[tuple[int, int]],
           donors: list[bytes]) -> tuple[bytes, list[str]]:
    """One mutated model: 1-3 of bit flips, truncation, splices, insertions/deletions and
    interesting 32-bit words, mostly aimed at the structure (not the weights)."""
    buf = bytearray(data)
    done = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(("flip", "flip", "word", "word", "splice", "truncate", "indel"))
        if not buf:
            break
        if kind == "flip":
            for _ in range(rng.choice((1, 1, 2, 4, 8, 16))):
                at = _position(rng, len(buf), ranges) % len(buf)
                buf[at] ^= 1 << rng.randrange(8)
        elif kind == "word":
            at = (_position(rng, len(buf), ranges) & ~3) % max(len(buf) - 4, 1)
            value = rng.choice(INTERESTING) if rng.random() < 0.7 else rng.getrandbits(32)
            if rng.random() < 0.3:  # nudge the existing word instead
                old = struct.unpack_from("<I", buf, at)[0] if at + 4 <= len(buf) else 0
                value = (old + rng.choice((-8, -4, -1, 1, 4, 8, 1 << 16))) & 0xFFFFFFFF
            buf[at:at + 4] = struct.pack("<I", value)
        elif kind == "splice":
            donor = rng.choice(donors) if rng.random() < 0.3 else bytes(buf)
            n = rng.choice((1, 2, 4, 8, 16, 64, 256))
            src = rng.randrange(max(len(donor) - n, 1))
            dst = _position(rng, len(buf), ranges) % len(buf)
            buf[dst:dst + n] = donor[src:src + n]
        elif kind == "truncate":
            buf = buf[: rng.randrange(len(buf))]
        else:
            at = _position(rng, len(buf), ranges) % len(buf)
            n = rng.choice((1, 2, 4, 8, 64))
            if rng.random() < 0.5:
                del buf[at:at + n]
            else:
                buf[at:at] = bytes(rng.getrandbits(8) for _ in range(n))
        done.append(kind)
    return bytes(buf), done


def case_rng(seed: int, case: int) -> random.Random:
    return random.Random(seed * 1_000_003 + case)


def make_case(seed: int, case: int, models: list[bytes], ranges: list[list[tuple[int, int]]]
              ) -> tuple[int, bytes, list[str]]:
    rng = case_rng(seed, case)
    which = rng.randrange(len(models))
    data, kinds = mutate(rng, models[which], ranges[which], models)
    return which, data, kinds


def run_case(data: bytes) -> str:
    from tflite_edge import Interpreter

    try:
        it = Interpreter(model_content=data, num_threads=1)
    except ValueError:
        return "rejected"
    print("stage run", flush=True)  # loaded: what follows runs TFLite's kernels
    try:
        it.get_input_details()
        it.get_output_details()
        it.get_signature_list()
        it.allocate_tensors()
        for d in it.get_input_details():
            if d["dtype"] is not np.bytes_ and d["shape"].size and d["shape"].prod() < 1 << 24:
                it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
        for d in it.get_output_details():
            it.get_tensor(d["index"])
        it.get_tensor_details()
    except (ValueError, RuntimeError):
        return "runtime_error"
    return "ran"


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    first, end = int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    models = [Path(p).read_bytes() for p in spec["models"]]
    ranges = [structure_ranges(m) for m in models]
    counts: dict[str, int] = {}
    unexpected: list[dict[str, Any]] = []
    for case in range(first, end):
        print(f"case {case}", flush=True)
        signal.alarm(ALARM_SECONDS)
        _, data, _ = make_case(spec["seed"], case, models, ranges)
        try:
            outcome = run_case(data)
        except Exception as exc:  # anything but ValueError/RuntimeError is a finding
            outcome = "unexpected"
            unexpected.append({"case": case, "error": f"{type(exc).__name__}: {exc}"[:500]})
        counts[outcome] = counts.get(outcome, 0) + 1
        print(f"done {case} {outcome}", flush=True)
    signal.alarm(0)
    print("summary " + json.dumps({"counts": counts, "unexpected": unexpected}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
