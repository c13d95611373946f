"""Write small TFLite models (flatbuffers, schema.fbs) from Python, for the runtime tests.

A minimal flatbuffer writer: objects are laid out front to back, each child after the
table or vector that points at it, so every uoffset is positive, and every scalar, vector
and table is aligned as the flatbuffers verifier requires.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_SIZES = {"b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "f": 4, "q": 8, "Q": 8, "d": 8}


@dataclass
class Table:
    """A flatbuffer table: field id -> (kind, value).

    kind is a struct format char for a scalar, "str", "table", "[table]" (vector of
    tables), "[X]" (vector of scalars of format X) or "bytes" (a [ubyte] vector, 16-aligned).
    """

    fields: dict[int, tuple[str, Any]] = field(default_factory=dict)

    def set(self, field_id: int, kind: str, value: Any) -> Table:
        if value is not None:
            self.fields[field_id] = (kind, value)
        return self


def _inline_size(kind: str) -> int:
    return _SIZES.get(kind, 4)


def build(root: Table, file_identifier: bytes = b"TFL3") -> bytes:
    buf = bytearray(8)
    buf[4:8] = file_identifier
    pending: list[tuple[int, str, Any]] = []

    def pad_to(align: int, extra: int = 0) -> None:
        while (len(buf) + extra) % align:
            buf.append(0)

    def write_table(t: Table) -> int:
        ids = sorted(t.fields)
        n = ids[-1] + 1 if ids else 0
        layout: dict[int, int] = {}
        off = 4
        for fid in sorted(ids, key=lambda f: -_inline_size(t.fields[f][0])):
            size = _inline_size(t.fields[fid][0])
            off = (off + size - 1) // size * size
            layout[fid] = off
            off += size
        table_size = (off + 3) // 4 * 4
        pad_to(2)
        vt_pos = len(buf)
        buf.extend(struct.pack(f"<HH{n}H", 4 + 2 * n, table_size,
                               *[layout.get(i, 0) for i in range(n)]))
        pad_to(8)
        pos = len(buf)
        buf.extend(bytes(table_size))
        struct.pack_into("<i", buf, pos, pos - vt_pos)
        for fid, at in layout.items():
            kind, value = t.fields[fid]
            if kind in _SIZES:
                struct.pack_into("<" + kind, buf, pos + at, value)
            else:
                pending.append((pos + at, kind, value))
        return pos

    def write_object(kind: str, value: Any) -> int:
        if kind == "table":
            return write_table(value)
        if kind == "str":
            data = value.encode("utf-8")
            pad_to(4)
            pos = len(buf)
            buf.extend(struct.pack("<I", len(data)) + data + b"\0")
            return pos
        if kind == "bytes":
            pad_to(16, 4)
            pos = len(buf)
            buf.extend(struct.pack("<I", len(value)) + bytes(value))
            return pos
        if kind == "[table]":
            pad_to(4)
            pos = len(buf)
            buf.extend(struct.pack("<I", len(value)) + bytes(4 * len(value)))
            for i, t in enumerate(value):
                pending.append((pos + 4 + 4 * i, "table", t))
            return pos
        if kind.startswith("[") and kind[1:-1] in _SIZES:
            fmt = kind[1:-1]
            pad_to(max(4, _SIZES[fmt]), 4)
            pos = len(buf)
            buf.extend(struct.pack(f"<I{len(value)}{fmt}", len(value), *value))
            return pos
        raise ValueError(f"unknown kind {kind}")

    root_pos = write_table(root)
    struct.pack_into("<I", buf, 0, root_pos)
    while pending:
        at, kind, value = pending.pop(0)
        target = write_object(kind, value)
        struct.pack_into("<I", buf, at, target - at)
    pad_to(16)
    return bytes(buf)


# ---- TFLite schema (tensorflow/lite/schema/schema.fbs) -----------------------------------

TENSOR_TYPES = {  # numpy dtype -> schema TensorType
    np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int32): 2,
    np.dtype(np.uint8): 3, np.dtype(np.int64): 4, np.dtype(np.bool_): 6,
    np.dtype(np.int16): 7, np.dtype(np.int8): 9, np.dtype(np.bytes_): 5,  # 5: STRING
}
OP_ADD, OP_CONV_2D, OP_FULLY_CONNECTED, OP_CAST = 0, 3, 9, 53
OPTIONS_CONV_2D, OPTIONS_FULLY_CONNECTED, OPTIONS_CAST = 1, 8, 37
PADDING_VALID = 1


@dataclass
class Tensor:
    name: str
    dtype: Any
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any] | None = None
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    shape_signature: tuple[int, ...] | None = None


@dataclass
class Op:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    options_type: int = 0
    options: Table | None = None
    version: int = 1


@dataclass
class Model:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    signature_key: str | None = None
    description: str = "tflite-edge test model"

    def index(self, name: str) -> int:
        return next(i for i, t in enumerate(self.tensors) if t.name == name)

    def to_bytes(self) -> bytes:
        buffers = [Table()]  # buffer 0: the empty sentinel
        tensor_tables = []
        for t in self.tensors:
            buffer_index = 0
            if t.data is not None:
                buffers.append(Table().set(0, "bytes",
                                           np.ascontiguousarray(t.data, t.dtype).tobytes()))
                buffer_index = len(buffers) - 1
            tt = (Table().set(0, "[i]", list(t.shape))
                  .set(1, "b", TENSOR_TYPES[np.dtype(t.dtype)])
                  .set(2, "I", buffer_index)
                  .set(3, "str", t.name))
            if t.scales:
                tt.set(4, "table", Table()
                       .set(2, "[f]", list(t.scales))
                       .set(3, "[q]", list(t.zero_points))
                       .set(6, "i", t.quantized_dimension))
            if t.shape_signature is not None:
                tt.set(7, "[i]", list(t.shape_signature))
            tensor_tables.append(tt)
        codes: list[tuple[int, int]] = []
        op_tables = []
        for op in self.ops:
            key = (op.opcode, op.version)
            if key not in codes:
                codes.append(key)
            ot = (Table().set(0, "I", codes.index(key))
                  .set(1, "[i]", op.inputs).set(2, "[i]", op.outputs))
            if op.options is not None:
                ot.set(3, "B", op.options_type).set(4, "table", op.options)
            op_tables.append(ot)
        subgraph = (Table().set(0, "[table]", tensor_tables)
                    .set(1, "[i]", self.inputs).set(2, "[i]", self.outputs)
                    .set(3, "[table]", op_tables).set(4, "str", "main"))
        model = (Table().set(0, "I", 3)
                 .set(1, "[table]", [Table().set(0, "b", min(c, 127)).set(2, "i", v)
                                     .set(3, "i", c) for c, v in codes])
                 .set(2, "[table]", [subgraph])
                 .set(3, "str", self.description)
                 .set(4, "[table]", buffers))
        if self.signature_key is not None:
            def tensor_map(indices: list[int]) -> list[Table]:
                return [Table().set(0, "str", self.tensors[i].name).set(1, "I", i)
                        for i in indices]
            model.set(7, "[table]", [Table()
                                     .set(0, "[table]", tensor_map(self.inputs))
                                     .set(1, "[table]", tensor_map(self.outputs))
                                     .set(2, "str", self.signature_key)
                                     .set(4, "I", 0)])
        return build(model)
