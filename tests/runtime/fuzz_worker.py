"""Fuzz worker: feeds mutated models to tflite_edge.Interpreter, one case after another.

Usage: python fuzz_worker.py SEEDS.json FIRST END, or python fuzz_worker.py --replay
MODEL... (saved cases, under the same RLIMIT_AS as the workers: some crash only there).
SEEDS.json: {"seed": int, "models": [paths]}. Before each case it prints "case N" (flushed),
so when the process dies the parent knows which case killed it; at the end it prints
"summary {json}". Each case is reproducible from (seed, N): see mutate().

A case passes when loading the model either works (then allocate_tensors and invoke are
tried too) or raises one of the exceptions tflite_runtime raises for bad models
(ValueError, RuntimeError, and what pybind11 makes of C++ exceptions: MemoryError,
IndexError, OverflowError). Any other exception is reported; a crash
(signal) or a hang (SIGALRM after ALARM_SECONDS) is caught by the parent, which also sees
"stage run" once the model has loaded.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

# A hang is no answer in this long. Legal cases can be slow: case 17475 of the CI seed (16
# CASTs, one input [322371444, 3] of bool: ~1 GB in, ~1 GB out) invokes in 2.5-5 s on an idle
# machine and ran past 20 s in a loaded CI run (2026-12-01 22:36).
ALARM_SECONDS = 60
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


# The parts of schema.fbs (TFLite 2.14) the structural mutations aim at: per table, field id
# -> a scalar ("i8", "u32", ...), "str", "vec:<scalar>", a table name, "[<table>]" (a vector
# of tables) or "opts" (a union member: any table, its fields taken as scalars).
SCHEMA: dict[str, dict[int, str]] = {
    "Model": {0: "u32", 1: "[OperatorCode]", 2: "[SubGraph]", 3: "str", 4: "[Buffer]",
              5: "vec:i32", 6: "[Metadata]", 7: "[SignatureDef]"},
    "OperatorCode": {0: "i8", 1: "str", 2: "i32", 3: "i32"},
    "SubGraph": {0: "[Tensor]", 1: "vec:i32", 2: "vec:i32", 3: "[Operator]", 4: "str"},
    "Tensor": {0: "vec:i32", 1: "i8", 2: "u32", 3: "str", 4: "Quantization", 5: "u8",
               6: "Sparsity", 7: "vec:i32", 8: "u8"},
    "Operator": {0: "u32", 1: "vec:i32", 2: "vec:i32", 3: "u8", 4: "opts", 5: "vec:u8",
                 6: "i8", 7: "vec:u8", 8: "vec:i32", 9: "u64", 10: "u64"},
    "Quantization": {0: "vec:f32", 1: "vec:f32", 2: "vec:f32", 3: "vec:i64", 4: "u8",
                     6: "i32"},
    "Sparsity": {0: "vec:i32", 1: "vec:i32", 2: "[DimensionMetadata]"},
    "DimensionMetadata": {0: "i8", 1: "i32", 2: "u8", 3: "opts", 4: "u8", 5: "opts"},
    "Buffer": {1: "u64", 2: "u64"},
    "Metadata": {0: "str", 1: "u32"},
    "SignatureDef": {0: "[TensorMap]", 1: "[TensorMap]", 2: "str", 4: "u32"},
    "TensorMap": {0: "str", 1: "u32"},
}
_WIDTH = {"i8": 1, "u8": 1, "i16": 2, "i32": 4, "u32": 4, "f32": 4, "i64": 8, "u64": 8}


class Layout:
    """Where a model's flatbuffer keeps what TFLite parses: scalar fields and vector
    elements (position, kind), offsets to tables/vectors/strings (position of the uoffset),
    and tables (position, vtable position, vtable length)."""

    def __init__(self, data: bytes) -> None:
        self.scalars: list[tuple[int, str]] = []
        self.offsets: list[int] = []
        self.targets: list[int] = []
        self.tables: list[tuple[int, int, int]] = []
        from tflite_edge._flatbuffer import ModelFormatError, ModelReader

        with contextlib.suppress(ModelFormatError, RecursionError):
            self._walk(ModelReader(data)._model, "Model", 0)

    def _walk(self, table: Any, name: str, depth: int) -> None:
        if depth > 6 or len(self.tables) > 20000:
            return
        self.tables.append((table._pos, table._vt, table._vt_len))
        fields = SCHEMA.get(name)
        if fields is None:  # a union member: every present field taken as a 32-bit scalar
            for field_id in range((table._vt_len - 4) // 2):
                at = table._offset(field_id)
                if at:
                    self.scalars.append((at, "i32"))
            return
        for field_id, kind in fields.items():
            at = table._offset(field_id)
            if not at:
                continue
            if kind in _WIDTH:
                self.scalars.append((at, kind))
                continue
            self.offsets.append(at)
            if kind == "str":
                self.targets.append(table._deref(field_id))
            elif kind.startswith("vec:"):
                elem = kind[4:]
                vec = table._vector(field_id, _WIDTH[elem])
                if vec is not None:
                    self.targets.append(vec[0] - 4)
                    start, n = vec
                    for i in range(min(n, 64)):  # shapes, tensor indices, scales...
                        self.scalars.append((start + i * _WIDTH[elem], elem))
            elif kind.startswith("["):
                children = table.tables(field_id) or []
                vec = table._vector(field_id, 4)
                if vec is not None:
                    self.targets.append(vec[0] - 4)
                    self.offsets.extend(vec[0] + 4 * i for i in range(min(vec[1], 256)))
                for child in children[:256]:
                    self._walk(child, kind[1:-1], depth + 1)
            else:  # a table, or a union member
                child = table.table(field_id)
                if child is not None:
                    self.targets.append(child._pos)
                    self._walk(child, kind if kind in SCHEMA else "?", depth + 1)


def _boundary(rng: random.Random, kind: str) -> bytes:
    width = _WIDTH[kind]
    if kind == "f32":
        value = rng.choice((0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"),
                            3.4e38, -3.4e38, 1e-45, 1e-30, 65536.0))
        return struct.pack("<f", value)
    bits = 8 * width
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    value = rng.choice((0, 1, 2, 3, 4, 7, 8, -1, -2, lo, lo + 1, hi, hi - 1, 255, 256,
                        0x7FFF, 0x8000, 0xFFFF, 0x10000, 1 << 20, 1 << 24, 0x7FFFFFFF,
                        rng.randrange(lo, hi + 1)))
    return (value & ((1 << bits) - 1)).to_bytes(width, "little")


def _structural(rng: random.Random, kind: str, buf: bytearray, layout: Layout) -> bool:
    """One mutation aimed at the model's layout; False when the layout has nothing for it."""
    if kind == "boundary":
        if not layout.scalars:
            return False
        at, scalar = rng.choice(layout.scalars)
        value = _boundary(rng, scalar)
    elif kind == "offset":
        if not layout.offsets:
            return False
        at = rng.choice(layout.offsets)
        old = struct.unpack_from("<I", buf, at)[0]
        how = rng.randrange(5)
        if how == 0 and layout.targets:  # another table, vector or string of the model
            new = rng.choice(layout.targets) - at
        elif how == 1:
            new = old + rng.choice((-8, -4, -2, -1, 1, 2, 4, 8))
        elif how == 2:
            new = len(buf) - at + rng.choice((-4, 0, 4))
        elif how == 3:
            new = rng.choice((0, 1, 4, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000))
        else:  # another offset field's target: shared subtrees, cycles
            other = rng.choice(layout.offsets)
            new = other + struct.unpack_from("<I", buf, other)[0] - at
        value = struct.pack("<I", new & 0xFFFFFFFF)
    elif kind == "vtable":
        if not layout.tables:
            return False
        pos, vt, vt_len = rng.choice(layout.tables)
        how = rng.randrange(4)
        if how == 0:  # the table uses another table's vtable
            _, other_vt, _ = rng.choice(layout.tables)
            at, value = pos, struct.pack("<i", pos - other_vt)
        elif how == 1 and vt_len > 4:  # one field moved inside (or out of) its table
            at = vt + 4 + 2 * rng.randrange((vt_len - 4) // 2)
            table_len = struct.unpack_from("<H", buf, vt + 2)[0]
            value = struct.pack("<H", rng.choice((0, 1, 2, 4, table_len - 4, table_len - 1,
                                                  table_len, table_len + 4, 0xFFFF))
                                & 0xFFFF)
        elif how == 2:  # the vtable's own length: fields appear or vanish
            at = vt
            value = struct.pack("<H", rng.choice((4, max(vt_len - 2, 4), vt_len + 2,
                                                  vt_len + 16, 0, 0xFFFE)))
        else:  # the table's length
            at = vt + 2
            value = struct.pack("<H", rng.choice((0, 4, 0xFFFF, rng.randrange(1 << 16))))
    else:
        raise ValueError(kind)
    if at + len(value) > len(buf):
        return False
    buf[at:at + len(value)] = value
    return True


def _position(rng: random.Random, size: int, ranges: list[tuple[int, int]]) -> int:
    if ranges and rng.random() < 0.8:
        start, end = rng.choice(ranges)
        return rng.randrange(start, end)
    return rng.randrange(size)


KINDS = ("flip", "word", "splice", "graft", "truncate", "indel", "boundary", "boundary",
         "boundary", "offset", "offset", "vtable", "vtable")


def mutate(rng: random.Random, data: bytes, ranges: list[tuple[int, int]],
           donors: list[bytes], layout: Layout | None = None) -> tuple[bytes, list[str]]:
    """One mutated model: 1-3 of bit flips, interesting 32-bit words, byte splices (within
    the model and grafts from other models), truncations, insertions/deletions, boundary
    values in scalar fields and vector elements, offset rewrites and vtable rewrites; mostly
    aimed at the structure (not the weights). The layout-aimed kinds apply while the bytes
    have not moved (before a truncation/insertion/deletion), else they become bit flips."""
    buf = bytearray(data)
    done = []
    moved = layout is None
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        kind = rng.choice(KINDS)
        if not buf:
            break
        if kind in ("boundary", "offset", "vtable"):
            if not moved and layout is not None and _structural(rng, kind, buf, layout):
                done.append(kind)
                continue
            kind = "flip"
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
            n = rng.choice((1, 2, 4, 8, 16, 64, 256))
            src = rng.randrange(max(len(buf) - n, 1))
            dst = _position(rng, len(buf), ranges) % len(buf)
            buf[dst:dst + n] = bytes(buf[src:src + n])
        elif kind == "graft":  # bytes of another model, over or into this one's structure
            donor = rng.choice(donors)
            n = rng.choice((4, 16, 64, 256, 1024, 4096))
            src = rng.randrange(max(len(donor) - n, 1))
            dst = _position(rng, len(buf), ranges) % len(buf)
            if rng.random() < 0.7:
                buf[dst:dst + n] = donor[src:src + n]
            else:
                buf[dst:dst] = donor[src:src + n]
                moved = True
        elif kind == "truncate":
            buf = buf[: rng.randrange(len(buf))]
            moved = True
        else:
            at = _position(rng, len(buf), ranges) % len(buf)
            n = rng.choice((1, 2, 4, 8, 64))
            if rng.random() < 0.5:
                del buf[at:at + n]
            else:
                buf[at:at] = bytes(rng.getrandbits(8) for _ in range(n))
            moved = True
        done.append(kind)
    return bytes(buf), done


EXPECTED = (ValueError, RuntimeError, MemoryError, IndexError, OverflowError)


def case_rng(seed: int, case: int) -> random.Random:
    return random.Random(seed * 1_000_003 + case)


def make_case(seed: int, case: int, models: list[bytes], ranges: list[list[tuple[int, int]]],
              layouts: list[Layout] | None = None) -> tuple[int, bytes, list[str]]:
    rng = case_rng(seed, case)
    which = rng.randrange(len(models))
    layout = layouts[which] if layouts is not None else Layout(models[which])
    data, kinds = mutate(rng, models[which], ranges[which], models, layout)
    return which, data, kinds


def run_case(data: bytes) -> str:
    from tflite_edge import Interpreter

    try:
        it = Interpreter(model_content=data, num_threads=1)
    except EXPECTED:
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
    except EXPECTED:
        return "runtime_error"
    return "ran"


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    if sys.argv[1] == "--replay":
        for path in sys.argv[2:]:
            print(f"{path}: {run_case(Path(path).read_bytes())}", flush=True)
        return 0
    spec = json.loads(Path(sys.argv[1]).read_text())
    first, end = int(sys.argv[2]), int(sys.argv[3])
    models = [Path(p).read_bytes() for p in spec["models"]]
    ranges = [structure_ranges(m) for m in models]
    layouts = [Layout(m) for m in models]
    counts: dict[str, int] = {}
    unexpected: list[dict[str, Any]] = []
    for case in range(first, end):
        print(f"case {case}", flush=True)
        signal.alarm(ALARM_SECONDS)
        _, data, _ = make_case(spec["seed"], case, models, ranges, layouts)
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
