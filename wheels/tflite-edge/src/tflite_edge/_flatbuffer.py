"""A small, bounds-checked reader for the parts of a ``.tflite`` flatbuffer the C API hides.

The TFLite C API gives a tensor's name, type, current shape and per-tensor quantization,
but not its shape signature, per-channel quantization, sparsity, the number of tensors or
the tensor indices behind a SignatureDef. Those come from the model's flatbuffer
(tensorflow/lite/schema/schema.fbs), read here.

TFLite's own verifier (``TfLiteModelCreate*`` runs ``VerifyAndBuildFromBuffer``) checks the
buffer before this module reads it; this reader still checks every offset it follows and
raises :class:`ModelFormatError` (a ``ValueError``) instead of reading out of bounds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Union

Buffer = Union[bytes, bytearray, memoryview, Any]  # anything struct.unpack_from accepts


class ModelFormatError(ValueError):
    """The bytes are not a well-formed TFLite flatbuffer."""


FILE_IDENTIFIER = b"TFL3"

# Field ids (the position of each field in its table in schema.fbs).
_MODEL_OPERATOR_CODES = 1
_MODEL_SUBGRAPHS = 2
_OPCODE_DEPRECATED_BUILTIN = 0
_OPCODE_CUSTOM_CODE = 1
_OPCODE_BUILTIN = 3
_SUBGRAPH_OPERATORS = 3
_OP_OPCODE_INDEX = 0
_OP_INPUTS = 1
_OP_OUTPUTS = 2
_MODEL_SIGNATURE_DEFS = 7
_SUBGRAPH_TENSORS = 0
_SUBGRAPH_INPUTS = 1
_SUBGRAPH_OUTPUTS = 2
_TENSOR_SHAPE = 0
_TENSOR_TYPE = 1
_TENSOR_BUFFER = 2
_TENSOR_NAME = 3
_MODEL_BUFFERS = 4
_BUFFER_DATA = 0
_BUFFER_OFFSET = 1
_TENSOR_QUANTIZATION = 4
_TENSOR_SPARSITY = 6
_TENSOR_SHAPE_SIGNATURE = 7
_QUANT_SCALE = 2
_QUANT_ZERO_POINT = 3
_QUANT_QUANTIZED_DIMENSION = 6
_SPARSITY_TRAVERSAL_ORDER = 0
_SPARSITY_BLOCK_MAP = 1
_SPARSITY_DIM_METADATA = 2
_DIM_FORMAT = 0
_DIM_DENSE_SIZE = 1
_DIM_SEGMENTS_TYPE = 2
_DIM_SEGMENTS = 3
_DIM_INDICES_TYPE = 4
_DIM_INDICES = 5
_SIGNATURE_INPUTS = 0
_SIGNATURE_OUTPUTS = 1
_SIGNATURE_KEY = 2
_SIGNATURE_SUBGRAPH_INDEX = 4
_TENSORMAP_NAME = 0
_TENSORMAP_TENSOR_INDEX = 1

# union SparseIndexVector { Int32Vector, Uint16Vector, Uint8Vector }: element formats.
_SPARSE_INDEX_FORMATS = {1: "i", 2: "H", 3: "B"}


class _Table:
    """One flatbuffer table: its position and vtable, with checked field access."""

    __slots__ = ("_buf", "_pos", "_size", "_vt", "_vt_len")

    def __init__(self, buf: Buffer, pos: int, size: int) -> None:
        self._buf = buf
        self._size = size
        _check(pos, 4, size)
        self._pos = pos
        vt = pos - _unpack("<i", buf, pos, size)
        _check(vt, 4, size)
        vt_len = _unpack("<H", buf, vt, size)
        if vt_len < 4 or vt_len % 2:
            raise ModelFormatError(f"bad vtable at offset {vt}")
        _check(vt, vt_len, size)
        self._vt = vt
        self._vt_len = vt_len

    def _offset(self, field_id: int) -> int:
        entry = 4 + 2 * field_id
        if entry + 2 > self._vt_len:
            return 0
        off = _unpack("<H", self._buf, self._vt + entry, self._size)
        return self._pos + off if off else 0

    def scalar(self, field_id: int, fmt: str, default: Any) -> Any:
        at = self._offset(field_id)
        return default if not at else _unpack("<" + fmt, self._buf, at, self._size)

    def _deref(self, field_id: int) -> int:
        at = self._offset(field_id)
        if not at:
            return 0
        offset: int = _unpack("<I", self._buf, at, self._size)
        return at + offset

    def table(self, field_id: int) -> _Table | None:
        at = self._deref(field_id)
        return _Table(self._buf, at, self._size) if at else None

    def _vector(self, field_id: int, elem_size: int) -> tuple[int, int] | None:
        at = self._deref(field_id)
        if not at:
            return None
        n = _unpack("<I", self._buf, at, self._size)
        _check(at + 4, n * elem_size, self._size)
        return at + 4, n

    def scalars(self, field_id: int, fmt: str) -> tuple[Any, ...] | None:
        vec = self._vector(field_id, struct.calcsize("<" + fmt))
        if vec is None:
            return None
        start, n = vec
        return struct.unpack_from(f"<{n}{fmt}", self._buf, start)

    def tables(self, field_id: int) -> list[_Table] | None:
        vec = self._vector(field_id, 4)
        if vec is None:
            return None
        start, n = vec
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(_Table(self._buf, at + _unpack("<I", self._buf, at, self._size), self._size))
        return out

    def string(self, field_id: int) -> str | None:
        vec = self._vector(field_id, 1)
        if vec is None:
            return None
        start, n = vec
        return bytes(self._buf[start : start + n]).decode("utf-8", "replace")


def _check(pos: int, length: int, size: int) -> None:
    if pos < 0 or length < 0 or pos + length > size:
        raise ModelFormatError(f"offset {pos}+{length} is outside the {size}-byte model")


def _unpack(fmt: str, buf: Buffer, pos: int, size: int) -> Any:
    _check(pos, struct.calcsize(fmt), size)
    return struct.unpack_from(fmt, buf, pos)[0]


@dataclass(frozen=True)
class DimensionMetadata:
    format: int  # 0 dense, 1 sparse CSR
    dense_size: int = 0
    array_segments: tuple[int, ...] = ()
    array_indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Sparsity:
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimensionMetadata, ...]


@dataclass(frozen=True)
class TensorInfo:
    """What the flatbuffer says about one tensor of one subgraph."""

    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    sparsity: Sparsity | None = None


@dataclass(frozen=True)
class SignatureInfo:
    key: str
    subgraph_index: int
    inputs: dict[str, int] = field(default_factory=dict)  # name -> tensor index
    outputs: dict[str, int] = field(default_factory=dict)


class ModelReader:
    """Lazy, cached access to a TFLite model's subgraphs, tensors and signatures."""

    def __init__(self, buf: Buffer) -> None:
        self._buf = buf
        self._size = len(buf)
        if self._size < 8:
            raise ModelFormatError(f"a TFLite model is at least 8 bytes, got {self._size}")
        root = _unpack("<I", buf, 0, self._size)
        self._model = _Table(buf, root, self._size)
        self._subgraphs: list[_Table] | None = None
        self._tensors: dict[int, list[_Table]] = {}
        self._infos: dict[tuple[int, int], TensorInfo] = {}

    @property
    def file_identifier(self) -> bytes:
        return bytes(self._buf[4:8])

    def _subgraph_tables(self) -> list[_Table]:
        if self._subgraphs is None:
            self._subgraphs = self._model.tables(_MODEL_SUBGRAPHS) or []
        return self._subgraphs

    @property
    def num_subgraphs(self) -> int:
        return len(self._subgraph_tables())

    def _tensor_tables(self, subgraph: int) -> list[_Table]:
        tables = self._tensors.get(subgraph)
        if tables is None:
            subgraphs = self._subgraph_tables()
            if not 0 <= subgraph < len(subgraphs):
                raise ModelFormatError(f"the model has no subgraph {subgraph}")
            tables = subgraphs[subgraph].tables(_SUBGRAPH_TENSORS) or []
            self._tensors[subgraph] = tables
        return tables

    def num_tensors(self, subgraph: int = 0) -> int:
        return len(self._tensor_tables(subgraph))

    def subgraph_io(self, subgraph: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
        subgraphs = self._subgraph_tables()
        if not 0 <= subgraph < len(subgraphs):
            raise ModelFormatError(f"the model has no subgraph {subgraph}")
        table = subgraphs[subgraph]
        return (table.scalars(_SUBGRAPH_INPUTS, "i") or (),
                table.scalars(_SUBGRAPH_OUTPUTS, "i") or ())

    def operator_codes(self) -> list[tuple[int, str | None]]:
        """(builtin operator code, custom code) of each entry of the model's operator_codes
        (the larger of the deprecated and the new code field, as TFLite reads them)."""
        return [(max(oc.scalar(_OPCODE_DEPRECATED_BUILTIN, "b", 0),
                     oc.scalar(_OPCODE_BUILTIN, "i", 0)), oc.string(_OPCODE_CUSTOM_CODE))
                for oc in self._model.tables(_MODEL_OPERATOR_CODES) or []]

    def operators(self, subgraph: int = 0, with_custom: bool = False
                  ) -> list[tuple[Any, tuple[int, ...], tuple[int, ...]]]:
        """(builtin operator code, inputs, outputs) of each operator of the subgraph; with
        ``with_custom`` the first item is (builtin code, custom code) instead."""
        codes: list[Any] = self.operator_codes()
        if not with_custom:
            codes = [code for code, _custom in codes]
        subgraphs = self._subgraph_tables()
        if not 0 <= subgraph < len(subgraphs):
            return []
        out = []
        for op in subgraphs[subgraph].tables(_SUBGRAPH_OPERATORS) or []:
            index = op.scalar(_OP_OPCODE_INDEX, "I", 0)
            code = codes[index] if index < len(codes) else ((-1, None) if with_custom else -1)
            out.append((code, op.scalars(_OP_INPUTS, "i") or (),
                        op.scalars(_OP_OUTPUTS, "i") or ()))
        return out

    def has_subgraphs_vector(self) -> bool:
        return self._model._offset(_MODEL_SUBGRAPHS) != 0

    def largest_tensor(self, itemsizes: dict[int, int]) -> tuple[int, int, int, str]:
        """(bytes, subgraph, index, name) of the tensor whose declared shape needs the most
        memory; ``itemsizes`` maps schema TensorType to bytes per element."""
        best = (0, 0, 0, "")
        for sg in range(self.num_subgraphs):
            for i, t in enumerate(self._tensor_tables(sg)):
                n = itemsizes.get(t.scalar(_TENSOR_TYPE, "b", 0), 8)
                for d in t.scalars(_TENSOR_SHAPE, "i") or ():
                    n *= max(d, 1)
                if n > best[0]:
                    best = (n, sg, i, t.string(_TENSOR_NAME) or "")
        return best

    def io_bytes(self, itemsizes: dict[int, int], subgraph: int = 0) -> int:
        """Declared bytes of the subgraph's distinct input and output tensors."""
        inputs, outputs = self.subgraph_io(subgraph)
        tables = self._tensor_tables(subgraph)
        total = 0
        for i in set(inputs) | set(outputs):
            if 0 <= i < len(tables):
                n = itemsizes.get(tables[i].scalar(_TENSOR_TYPE, "b", 0), 8)
                for d in tables[i].scalars(_TENSOR_SHAPE, "i") or ():
                    n *= max(d, 1)
                total += n
        return total

    def tensor(self, index: int, subgraph: int = 0) -> TensorInfo | None:
        """The tensor's flatbuffer info, or None when the model has no such tensor (TFLite
        adds tensors of its own at run time, after the model's)."""
        key = (subgraph, index)
        info = self._infos.get(key)
        if info is not None:
            return info
        tables = self._tensor_tables(subgraph)
        if not 0 <= index < len(tables):
            return None
        info = _tensor_info(tables[index])
        self._infos[key] = info
        return info

    def is_constant(self, index: int, subgraph: int = 0) -> bool:
        """Whether the tensor's buffer holds data (weights): TFLite maps it read-only."""
        tables = self._tensor_tables(subgraph)
        if not 0 <= index < len(tables):
            return False
        buffer = tables[index].scalar(_TENSOR_BUFFER, "I", 0)
        buffers = self._model.tables(_MODEL_BUFFERS) or []
        if not 0 < buffer < len(buffers):
            return False
        data = buffers[buffer]._vector(_BUFFER_DATA, 1)
        return bool(data and data[1]) or buffers[buffer].scalar(_BUFFER_OFFSET, "Q", 0) > 1

    def signatures(self) -> list[SignatureInfo]:
        out = []
        for sig in self._model.tables(_MODEL_SIGNATURE_DEFS) or []:
            out.append(
                SignatureInfo(
                    key=sig.string(_SIGNATURE_KEY) or "",
                    subgraph_index=sig.scalar(_SIGNATURE_SUBGRAPH_INDEX, "I", 0),
                    inputs=_tensor_map(sig.tables(_SIGNATURE_INPUTS) or []),
                    outputs=_tensor_map(sig.tables(_SIGNATURE_OUTPUTS) or []),
                )
            )
        return out


def _tensor_map(entries: list[_Table]) -> dict[str, int]:
    return {
        (e.string(_TENSORMAP_NAME) or ""): e.scalar(_TENSORMAP_TENSOR_INDEX, "I", 0)
        for e in entries
    }


def _tensor_info(t: _Table) -> TensorInfo:
    shape = t.scalars(_TENSOR_SHAPE, "i") or ()
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    qdim = 0
    quant = t.table(_TENSOR_QUANTIZATION)
    if quant is not None:
        s = quant.scalars(_QUANT_SCALE, "f") or ()
        z = quant.scalars(_QUANT_ZERO_POINT, "q") or ()
        if s and len(s) == len(z):  # what InterpreterBuilder::ParseQuantization accepts
            scales = s
            # TfLiteAffineQuantization keeps zero points as int32.
            zero_points = tuple(((v + 2**31) % 2**32) - 2**31 for v in z)
            qdim = quant.scalar(_QUANT_QUANTIZED_DIMENSION, "i", 0)
    return TensorInfo(
        name=t.string(_TENSOR_NAME) or "",
        shape=shape,
        shape_signature=t.scalars(_TENSOR_SHAPE_SIGNATURE, "i"),
        scales=scales,
        zero_points=zero_points,
        quantized_dimension=qdim,
        sparsity=_sparsity(t.table(_TENSOR_SPARSITY)),
    )


def _sparsity(sp: _Table | None) -> Sparsity | None:
    if sp is None:
        return None
    dims = []
    for d in sp.tables(_SPARSITY_DIM_METADATA) or []:
        fmt = d.scalar(_DIM_FORMAT, "b", 0)
        if fmt == 0:
            dims.append(DimensionMetadata(format=0, dense_size=d.scalar(_DIM_DENSE_SIZE, "i", 0)))
        else:
            dims.append(
                DimensionMetadata(
                    format=1,
                    array_segments=_sparse_index_vector(d, _DIM_SEGMENTS_TYPE, _DIM_SEGMENTS),
                    array_indices=_sparse_index_vector(d, _DIM_INDICES_TYPE, _DIM_INDICES),
                )
            )
    return Sparsity(
        traversal_order=sp.scalars(_SPARSITY_TRAVERSAL_ORDER, "i") or (),
        block_map=sp.scalars(_SPARSITY_BLOCK_MAP, "i") or (),
        dim_metadata=tuple(dims),
    )


def _sparse_index_vector(d: _Table, type_field: int, value_field: int) -> tuple[int, ...]:
    fmt = _SPARSE_INDEX_FORMATS.get(d.scalar(type_field, "B", 0))
    values = d.table(value_field)
    if fmt is None or values is None:
        return ()
    return values.scalars(0, fmt) or ()
