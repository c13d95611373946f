"""A drop-in for ``tflite_runtime.interpreter`` over TFLite's C API (ctypes).

``import tflite_edge.interpreter as tflite`` and then ``tflite.Interpreter(...)`` /
``tflite.load_delegate(...)`` work as with tflite_runtime. Tensor indices are TFLite's
global tensor indices (what ``get_input_details()[i]["index"]`` gives), as in tflite_runtime.

What the C API cannot do, and so this module cannot either (each raises a clear error):
tensors of a subgraph no signature runs on are unreachable; only input tensors can be
resized; custom op registerers (``InterpreterWithCustomOps``), the reference kernels
(``BUILTIN_REF``), ``experimental_preserve_all_tensors`` and
``experimental_disable_delegate_clustering`` are not available (docs/runtime.md says why).

One Interpreter is safe to share between threads: each call holds its lock. Different
Interpreters run in parallel (ctypes releases the GIL around every C call, except the
invoke of a model whose invokes take under 10 µs: tflite_edge._shim.FastPath.probe).
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import functools
import gc
import math
import mmap
import os
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import _builtin_ops, _model_checks, _types
from ._flatbuffer import ModelFormatError, ModelReader, TensorInfo
from ._library import ENV_VAR, STATUS_NAMES, CApi, ErrorReporterCallback, load_library
from ._lock import CallLock
from ._shim import PROBED, STALE, fast_path, guarded_api
from .delegates import Delegate, DelegateLoadError, load_delegate

__all__ = [
    "Delegate",
    "DelegateLoadError",
    "Interpreter",
    "OpResolverType",
    "SignatureRunner",
    "load_delegate",
]

_UNSAFE_MESSAGE = (
    "There is at least 1 reference to internal data\n"
    "      in the interpreter in the form of a numpy array or slice. Be sure to\n"
    "      only hold the function returned from tensor() if you are using raw\n"
    "      data access."
)


_CONV_2D = 3  # BuiltinOperator_CONV_2D
_ndarray = np.ndarray  # one global lookup on the hot path

#: Whether an object goes the moment its last reference does (CPython), or only when the
#: garbage collector runs (PyPy).
_REFCOUNTED = sys.implementation.name == "cpython"
#: Collections after which PyPy has freed an array nothing reaches (measured: 2 to 3).
_COLLECTIONS = 5


class OpResolverType(enum.Enum):
    """As tflite_runtime's: AUTO and BUILTIN use the builtin ops plus the default delegate
    (XNNPACK); BUILTIN_WITHOUT_DEFAULT_DELEGATES leaves XNNPACK out; BUILTIN_REF (reference
    kernels) is not reachable through the C API."""

    AUTO = 0
    BUILTIN = 1
    BUILTIN_REF = 2
    BUILTIN_WITHOUT_DEFAULT_DELEGATES = 3


class _ErrorLog:
    """Collects what TFLite reports through its error-reporter callback."""

    def __init__(self, lib: Any) -> None:
        messages: list[str] = []
        fmt = lib.format_message

        def report(_user_data: int | None, format_: bytes | None, args: int | None) -> None:
            messages.append(fmt(format_, args))

        self.messages = messages
        self.callback = ErrorReporterCallback(report)

    def clear(self) -> None:
        del self.messages[:]

    def take(self, fallback: str) -> str:
        text = "\n".join(m.rstrip("\n") for m in self.messages if m) or fallback
        self.clear()
        return text


def _release_interpreter(api: CApi, interpreter: int, keepalive: tuple[Any, ...],
                         default_delegate: list[int]) -> None:
    # The interpreter goes first; the model data, error reporter and delegates it used are
    # in ``keepalive`` and are released only after this returns.
    api.TfLiteInterpreterDelete(interpreter)
    for ptr in default_delegate:
        api.TfLiteXNNPackDelegateDelete(ptr)


class _TensorMemory:
    """The buffer behind every array ``tensor()`` returns: it exports a tensor's memory
    through ``__array_interface__`` and keeps the interpreter's handle alive. numpy ends
    the base chain of every array derived from such an array (slices, reshapes, views of
    views) in this object, so it lives exactly as long as some array can reach that
    memory: the handle tracks it with a weak reference."""

    __slots__ = ("__array_interface__", "__weakref__", "_owner")

    def __init__(self, address: int, shape: tuple[int, ...], dtype: np.dtype[Any],
                 owner: object) -> None:
        self.__array_interface__ = {"version": 3, "data": (address, False),
                                    "shape": shape, "typestr": dtype.str}
        self._owner = owner


class _Handle:
    """Owns one C interpreter and everything it points into. Numpy views from ``tensor()``
    and signature runners hold a reference to it, so the memory they see stays valid."""

    def __init__(self, api: CApi, ptr: int, errors: _ErrorLog, keepalive: tuple[Any, ...]):
        self.api = api
        self.ptr = ptr
        self.errors = errors
        self.views: list[weakref.ref[_TensorMemory]] = []
        self.broken: str | None = None  # set when allocation left a graph unsafe to run
        self.not_ready = False  # a tensor was resized: allocate_tensors() must run first
        # One C interpreter is not thread-safe: every call that reads or changes its state
        # holds this lock, so calls from several threads run one at a time (not reentrant:
        # tflite_edge._lock).
        self.lock = CallLock()
        self.default_delegate: list[int] = []  # the XNNPACK delegate, deleted after us
        self._finalizer = weakref.finalize(
            self, _release_interpreter, api, ptr, (errors, *keepalive), self.default_delegate
        )

    def track(self, memory: _TensorMemory) -> None:
        if len(self.views) >= 32:
            self._prune()
        self.views.append(weakref.ref(memory))

    def _prune(self) -> int:
        self.views = [v for v in self.views if v() is not None]
        return len(self.views)

    def live_views(self) -> int:
        """How many tensor() buffers some array still reaches. Without reference counting
        (PyPy) an unreachable array lingers until the garbage collector runs, and numpy's
        arrays there (cpyext) take a few collections to go: collect before calling any
        of them alive."""
        live = self._prune()
        for _ in range(0 if _REFCOUNTED else _COLLECTIONS):
            if not live:
                break
            gc.collect()
            live = self._prune()
        return live


def _read_model(model_path: str | os.PathLike[str]) -> Any:
    """The model file's bytes: memory-mapped (as TFLite itself does) when possible."""
    path = os.fspath(model_path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return b""
            try:
                # Copy-on-write, so ctypes can take its address (from_buffer needs a
                # writable buffer); TFLite never writes to it, so no page is ever copied.
                return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
            except (OSError, ValueError):
                return f.read()
    except OSError as exc:
        raise ValueError(f"Could not open '{path}': {exc.strerror or exc}") from exc


# Bytes per element of each schema TensorType (schema.fbs; INT4 is stored one per byte).
_SCHEMA_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 1, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8,
                    11: 16, 12: 8, 13: 8, 14: 8, 15: 4, 16: 2, 17: 1}


def _memory_limit() -> int | None:
    """The most memory this process can get: physical memory, or RLIMIT_AS if lower."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    return min(limits) if limits else None


def _precheck(model: _ModelBytes, what: str) -> None:
    """What TFLite 2.14's InterpreterBuilder and arena do not survive, measured by the fuzz
    test: a verified flatbuffer without a subgraphs vector (null dereference), and tensors
    declared larger than the process can allocate (the arena's ``new`` throws
    std::bad_alloc across the C API, which aborts the process)."""
    try:
        reader = model.reader()
        if not reader.has_subgraphs_vector() or reader.num_subgraphs == 0:
            raise ValueError(f"Could not create an interpreter for {what}: "
                             "No subgraph in the model.")
        size, sg, index, name = reader.largest_tensor(_SCHEMA_ITEMSIZE)
        io_size = reader.io_bytes(_SCHEMA_ITEMSIZE)
    except ModelFormatError as exc:
        raise ValueError(f"Could not create an interpreter for {what}: {exc}") from exc
    limit = _memory_limit()
    if limit is not None and size > limit:
        raise ValueError(
            f"Could not create an interpreter for {what}: tensor {index} ({name!r}) of "
            f"subgraph {sg} declares {size} bytes, more than this process can allocate "
            f"({limit} bytes)"
        )
    if limit is not None and io_size > limit:
        raise ValueError(
            f"Could not create an interpreter for {what}: its inputs and outputs, which are "
            f"all allocated at once, declare {io_size} bytes, more than this process can "
            f"allocate ({limit} bytes)"
        )


def _constants_and_variables(reader: ModelReader, sg: int, buffers: list[Any]
                             ) -> tuple[set[int], set[int]]:
    """The tensors of subgraph ``sg`` with data in the model (constants), and the variable
    ones."""
    constant, variable = set(), set()
    for t, table in enumerate(reader._tensor_tables(sg)):
        b = table.scalar(2, "I", 0)  # Tensor.buffer
        data = buffers[b]._vector(0, 1) if b < len(buffers) else None
        if (data is not None and data[1]) or \
                (b < len(buffers) and buffers[b].scalar(1, "Q", 0) > 1):  # Buffer.offset
            constant.add(t)
        if table.scalar(5, "B", 0):  # Tensor.is_variable
            variable.add(t)
    return constant, variable


def _constant_bytes(table: Any, buffers: list[Any]) -> int | None:
    """How many bytes of data the model holds for a tensor (None: held outside)."""
    b = table.scalar(2, "I", 0)  # Tensor.buffer
    if b >= len(buffers) or buffers[b].scalar(1, "Q", 0) > 1:
        return None
    data = buffers[b]._vector(0, 1)
    return data[1] if data is not None else 0


def _xnnpack_unsafe(reader: ModelReader) -> bool:
    """Whether the model's graph breaks what the XNNPACK delegate takes for granted (it
    aborts or crashes on such graphs, found by the fuzz test; TFLite's own kernels run
    them). First what makes TFLite's Subgraph mark a model inconsistent while building it
    (it then refuses AllocateTensors, but a delegate applied before reads the bad indices):
    tensor indices outside [-1, tensors) in a subgraph's or an operator's inputs/outputs,
    a tensor both input and output of one operator (CheckTensorIndices,
    CheckInputAndOutputForOverlap). Then what every converter guarantees: each tensor
    written by at most one operator, never a constant or a subgraph input; operators in
    execution order (an input is a subgraph input, a constant, a variable or an earlier
    operator's output); no constant among the subgraph's outputs."""
    try:
        buffers = reader._model.tables(4) or []  # Model.buffers
        for sg in range(reader.num_subgraphs):
            n = reader.num_tensors(sg)
            ins, outs = reader.subgraph_io(sg)
            if any(not -1 <= i < n for i in (*ins, *outs)):
                return True
            constant, variable = _constants_and_variables(reader, sg, buffers)
            if constant & set(outs):
                return True
            ready = set(ins) | constant | variable | {-1}
            for _code, inputs, outputs in reader.operators(sg):
                if any(not -1 <= i < n for i in (*inputs, *outputs)) or \
                        set(inputs) & set(outputs):
                    return True
                if any(i not in ready for i in inputs):
                    return True
                written = set(outputs) - {-1}
                if written & ready:  # a second writer, a constant or a subgraph input
                    return True
                ready |= written
            # an operator none of whose outputs is used (XNNPACK's fusion aborts on it)
            used = set(outs).union(*(set(i) for _c, i, _o in reader.operators(sg)))
            if any(outputs and not used.intersection(outputs)
                   for _c, _i, outputs in reader.operators(sg)):
                return True
    except (ModelFormatError, IndexError):
        return True
    return False


# Builtin operators whose kernels take -1 ("no tensor") for some inputs (the kernels that
# call GetOptionalInputTensor or test kTfLiteOptionalTensor in TFLite 2.14): code ->
# positions, None for any. Every other builtin kernel dereferences what GetInput returns
# for -1, a null pointer (SIGSEGV in Prepare: the fuzz test found PAD's).
_OPTIONAL_INPUTS: dict[int, frozenset[int] | None] = {
    9: frozenset({2}),  # FULLY_CONNECTED: bias
    27: frozenset({3}),  # SVDF: bias
    34: frozenset({2}),  # PAD: constant_values
    60: frozenset({2}),  # PADV2: constant_values
    67: frozenset({3}),  # TRANSPOSE_CONV: bias
    16: None, 44: None, 52: None, 46: None,  # LSTM, UNIDIRECTIONAL/BIDIRECTIONAL_SEQUENCE_*
    118: None, 119: None,  # IF, WHILE
}


def _bad_sparsity(sp: Any, shape: tuple[int, ...]) -> str | None:
    """What TFLite's sparse-tensor densification (FormatConverter, also in the XNNPACK
    delegate) assumes of a tensor's SparsityParameters without checking: traversal_order a
    permutation with one dim_metadata per entry, block_map naming original dimensions,
    CSR segments non-decreasing from 0 to the number of indices, with one segment per
    element of the level above, and indices inside their dimension."""
    n, rank = len(sp.traversal_order), len(shape)
    if sorted(sp.traversal_order) != list(range(n)) or len(sp.dim_metadata) != n:
        return "traversal_order is not a permutation of its dimensions"
    if n < rank or len(sp.block_map) != n - rank or \
            sorted(set(sp.block_map)) != sorted(sp.block_map) or \
            any(not 0 <= b < rank for b in sp.block_map):
        return "block_map does not name distinct original dimensions"
    sizes = []
    for i, dim in enumerate(sp.traversal_order):
        if dim >= rank:  # a block dimension: dense, its size is the block's
            size = sp.dim_metadata[i].dense_size
        else:
            size = shape[dim]
            if dim in sp.block_map:
                block = sp.dim_metadata[sp.traversal_order.index(rank + sp.block_map.index(dim))]
                if block.dense_size <= 0 or size % block.dense_size:
                    return f"block size {block.dense_size} does not divide dimension {dim}"
                size //= block.dense_size
        sizes.append(size)
    count = 1
    for i, meta in enumerate(sp.dim_metadata):
        if meta.format == 0:
            if meta.dense_size != sizes[i] or meta.dense_size < 0:
                return f"dense_size {meta.dense_size} of level {i} is not {sizes[i]}"
            count *= meta.dense_size
        else:
            seg, idx = meta.array_segments, meta.array_indices
            if len(seg) != count + 1 or seg[0] != 0 or seg[-1] != len(idx) or \
                    any(a > b for a, b in zip(seg, seg[1:])):
                return f"array_segments of level {i} do not partition its indices"
            if any(not 0 <= j < sizes[i] for j in idx):
                return f"array_indices of level {i} leave dimension size {sizes[i]}"
            count = len(idx)
        if count > 1 << 31:
            return "the sparse levels describe more elements than a tensor can hold"
    return None


def _missing_tensor(reader: ModelReader) -> str | None:
    """Why allocate_tensors() would crash inside TFLite: an operator writing a constant
    tensor (over the model's bytes), a subgraph input or a tensor another operator writes
    (the memory planned for one shape gets another's), an input or output of -1 where a
    builtin kernel needs a tensor (see _OPTIONAL_INPUTS; the kernel's Prepare dereferences
    null), or sparsity parameters densification would read outside of (_bad_sparsity);
    None if none."""
    try:
        buffers = reader._model.tables(4) or []  # Model.buffers
        for sg in range(reader.num_subgraphs):
            constant, _ = _constants_and_variables(reader, sg, buffers)
            taken = constant | set(reader.subgraph_io(sg)[0])
            for node, (_code, _inputs, outputs) in enumerate(reader.operators(sg)):
                clash = taken.intersection(outputs)
                if clash:  # its kernel would write past the memory planned for the tensor
                    return (f"subgraph {sg} node {node} writes tensor {min(clash)}, a "
                            "constant, a subgraph input or another operator's output")
                taken.update(o for o in outputs if o != -1)
            tables = reader._tensor_tables(sg)
            for t in range(reader.num_tensors(sg)):
                info = reader.tensor(t, sg)
                if info is not None and info.sparsity is not None:
                    why = _bad_sparsity(info.sparsity, info.shape)
                    if why:
                        return f"subgraph {sg} tensor {t} ({info.name!r}): sparsity: {why}"
                elif info is not None and t in constant:
                    have = _constant_bytes(tables[t], buffers)
                    need = _SCHEMA_ITEMSIZE.get(tables[t].scalar(1, "b", 0))  # Tensor.type
                    if have is not None and need and tables[t].scalar(1, "b", 0) != 17 and \
                            math.prod(max(d, 0) for d in info.shape) * need > have:
                        return (f"subgraph {sg} tensor {t} ({info.name!r}): its shape "
                                f"{list(info.shape)} needs more than the {have} bytes of data "
                                "the model has for it")
            for node, (code, inputs, outputs) in enumerate(reader.operators(sg)):
                if code == _builtin_ops.CUSTOM or (code in _OPTIONAL_INPUTS
                                       and _OPTIONAL_INPUTS[code] is None):
                    continue
                allowed = _OPTIONAL_INPUTS.get(code) or frozenset()
                for what, indices in (("input", inputs), ("output", outputs)):
                    for i, index in enumerate(indices):
                        if index == -1 and (what == "output" or i not in allowed):
                            names = _builtin_ops.BUILTIN_OPERATOR_NAMES
                            op = names[code] if 0 <= code < len(names) else f"operator {code}"
                            return (f"subgraph {sg} node {node} ({op}): {what} {i} is -1 "
                                    "(no tensor), which its kernel needs")
    except (ModelFormatError, IndexError):
        return None
    return None


def _check_num_threads(num_threads: Any) -> None:
    if num_threads is None:
        return
    if not isinstance(num_threads, int) or isinstance(num_threads, bool):
        raise ValueError("type of num_threads should be int")
    if num_threads < 1:
        raise ValueError("num_threads should >= 1")


def _pin(data: Any) -> Any:
    """The model's bytes in one ctypes array, which TFLite points into for the
    interpreter's whole life (it does not copy them). A ctypes array's memory never moves
    on any Python implementation: a mapped file is used in place, anything else is copied
    once. (``c_char_p(data)`` is no such buffer: on PyPy it copies ``data`` into memory
    owned by the temporary ``c_char_p``.)"""
    array_type = ctypes.c_char * len(data)
    if isinstance(data, mmap.mmap):
        with contextlib.suppress(TypeError, ValueError):
            return array_type.from_buffer(data)
    return array_type.from_buffer_copy(data)


class _ModelBytes:
    """The model's bytes, pinned (see _pin; the interpreter's handle keeps this object
    alive), and a reader of what the C API does not expose, created on first use."""

    def __init__(self, data: Any) -> None:
        self.data = _pin(data)
        self.address: int = ctypes.addressof(self.data)
        self.size = len(data)
        self._reader: ModelReader | None = None

    def reader(self) -> ModelReader:
        if self._reader is None:
            self._reader = ModelReader(memoryview(self.data).cast("B"))
        return self._reader


class _TensorAccess:
    """Reading and writing one ``TfLiteTensor*`` with tflite_runtime's checks and messages."""

    def __init__(self, api: CApi, model: _ModelBytes) -> None:
        self.api = api
        self._reader = model.reader
        self._sparse: dict[tuple[int, int], bool] = {}
        # Fast paths (measured: most of a set_tensor/get_tensor round on a small model is
        # Python and ctypes overhead). Numpy arrays over a tensor's memory, keyed by the
        # ``TfLiteTensor*``, each with the state it was made for: type, data pointer, byte
        # size and dims (and, for reads, the tensor's index and subgraph). A tensor's shape
        # and memory change in allocate_tensors(), resize_tensor_input() and even invoke()
        # (dynamic tensors), and tensors move when TFLite adds some, so that state is read
        # from the C API on every call and an array is used only while all of it matches.
        self._readers: dict[int, tuple[tuple[Any, ...], np.ndarray[Any, Any]]] = {}
        self._writers: dict[int, tuple[tuple[Any, ...], np.ndarray[Any, Any]]] = {}
        self._type = api.TfLiteTensorType
        self._num_dims = api.TfLiteTensorNumDims
        self._dim = api.TfLiteTensorDim
        self._byte_size = api.TfLiteTensorByteSize
        self._data_ptr = api.TfLiteTensorData

    def _fast_dims(self, t: int) -> tuple[int, ...] | None:
        """The tensor's dims, or None if it has none (never raises)."""
        n = self._num_dims(t)
        dim = self._dim
        if n == 2:
            return (dim(t, 0), dim(t, 1))
        if n == 4:
            return (dim(t, 0), dim(t, 1), dim(t, 2), dim(t, 3))
        if n == 1:
            return (dim(t, 0),)
        if n == 3:
            return (dim(t, 0), dim(t, 1), dim(t, 2))
        if n == 0:
            return ()
        if n < 0:
            return None
        return tuple([dim(t, i) for i in range(n)])

    def dims(self, t: int) -> tuple[int, ...]:
        shape = self._fast_dims(t)
        if shape is None:
            raise ValueError("Tensor with no shape found.")
        return shape

    def shape(self, t: int) -> np.ndarray[Any, Any]:
        return np.array(self.dims(t), dtype=np.int32)

    def is_sparse(self, index: int, subgraph: int) -> bool:
        key = (index, subgraph)
        sparse = self._sparse.get(key)
        if sparse is None:
            info = self.info(index, subgraph)
            sparse = self._sparse[key] = info is not None and info.sparsity is not None
        return sparse

    def info(self, index: int, subgraph: int) -> TensorInfo | None:
        try:
            return self._reader().tensor(index, subgraph)
        except ModelFormatError:
            return None

    def details(self, t: int, index: int, subgraph: int) -> dict[str, Any]:
        api = self.api
        ttype = api.TfLiteTensorType(t)
        dtype = _types.NUMPY_TYPES.get(ttype)
        if ttype == _types.NO_TYPE or dtype is None:
            raise ValueError("Could not get tensor details")
        shape = self.shape(t)
        info = self.info(index, subgraph)
        if info is not None and info.shape_signature:
            signature = np.array(info.shape_signature, dtype=np.int32)
        else:
            signature = shape.copy()
        q = api.TfLiteTensorQuantizationParams(t)
        name = api.TfLiteTensorName(t)
        return {
            "name": name.decode("utf-8", "replace") if name else "",
            "index": index,
            "shape": shape,
            "shape_signature": signature,
            "dtype": dtype,
            "quantization": (float(q.scale), int(q.zero_point)),
            "quantization_parameters": {
                "scales": np.array(info.scales if info else (), dtype=np.float32),
                "zero_points": np.array(info.zero_points if info else (), dtype=np.int32),
                "quantized_dimension": info.quantized_dimension if info else 0,
            },
            "sparsity_parameters": _sparsity_dict(info),
        }

    def _data(self, t: int) -> tuple[int | None, int]:
        nbytes = self.api.TfLiteTensorByteSize(t)
        data = self.api.TfLiteTensorData(t)
        if not data and nbytes:
            raise ValueError("Tensor data is null. Run allocate_tensors() first")
        return data, nbytes

    def read(self, t: int, index: int, subgraph: int) -> Any:
        """A copy of the tensor's value (a numpy scalar for 0-d tensors, as tflite_runtime)."""
        cached = self._readers.get(t)
        if cached is not None:
            state, source = cached
            if state == (self._type(t), self._data_ptr(t), self._byte_size(t),
                         self._fast_dims(t), index, subgraph):
                out = source.copy()
                return out if out.ndim else out[()]
        return self._read(t, index, subgraph)

    def _read(self, t: int, index: int, subgraph: int) -> Any:
        ttype = self.api.TfLiteTensorType(t)
        dtype = _types.NUMPY_TYPES.get(ttype)
        if dtype is None or ttype == _types.NO_TYPE:
            raise ValueError("Unknown tensor type.")
        data, nbytes = self._data(t)
        shape = self.dims(t)
        if ttype == _types.STRING:
            return _read_strings(data, nbytes, shape)
        if ttype not in _types.FIXED_SIZE:
            raise ValueError(f"tensor {index} has type {_types.type_name(ttype)}: "
                             "its value cannot be read")
        itemsize = _types.ITEMSIZE[ttype]
        dims = shape
        if math.prod(shape) * itemsize != nbytes or self.is_sparse(index, subgraph):
            shape = (nbytes // itemsize,)  # sparse (or packed) data: flat, as tflite_runtime
        if not nbytes:
            out = np.zeros(shape, dtype=dtype)
        else:
            assert data is not None  # _data raised for a null pointer with bytes
            raw = (ctypes.c_char * nbytes).from_address(data)
            # A ctypes array has the buffer protocol; numpy's stubs before Python 3.12 (no
            # collections.abc.Buffer) take only bytes, bytearray, memoryview, array and mmap.
            source = np.frombuffer(raw, dtype=dtype,  # type: ignore[call-overload]
                                   count=nbytes // itemsize).reshape(shape)
            out = source.copy()
            self._remember(self._readers, t, (ttype, data, nbytes, dims, index, subgraph),
                           source)
        return out if out.ndim else out[()]

    def _write_strings(self, t: int, index: int, array: np.ndarray[Any, Any]) -> None:
        """What tflite_runtime's DynamicBuffer::WriteToTensor does, through the C API:
        string tensors are dynamic (their own malloc'd block), so resize the block to the
        new contents, then copy them in."""
        payload = _pack_strings(array)
        api = self.api
        if (api.TfLiteTensorRealloc(len(payload), t) != 0
                or api.TfLiteTensorByteSize(t) != len(payload)):
            raise ValueError(f"Cannot set tensor {index}: its string buffer could not be "
                             f"resized to {len(payload)} bytes")
        buffer = ctypes.create_string_buffer(payload, len(payload))
        if api.TfLiteTensorCopyFromBuffer(t, buffer, len(payload)) != 0:
            raise ValueError(f"Cannot set tensor {index}: TfLiteTensorCopyFromBuffer failed")

    @staticmethod
    def _remember(cache: dict[int, tuple[tuple[Any, ...], np.ndarray[Any, Any]]], t: int,
                  state: tuple[Any, ...], array: np.ndarray[Any, Any]) -> None:
        if len(cache) >= 256 and t not in cache:  # pointers of tensors that moved
            cache.clear()
        cache[t] = (state, array)

    def view(self, t: int, index: int, owner: _Handle) -> np.ndarray[Any, Any]:
        """A writable numpy array over the tensor's own memory (no copy). Its buffer is a
        _TensorMemory that keeps ``owner`` (the interpreter's handle) alive and that the
        handle tracks: every array derived from this one keeps that object alive too."""
        ttype = self.api.TfLiteTensorType(t)
        if ttype not in _types.FIXED_SIZE:
            raise ValueError(
                f"tensor {index} has type {_types.type_name(ttype)}, which has no numpy view"
            )
        dtype = np.dtype(_types.NUMPY_TYPES[ttype])
        data, nbytes = self._data(t)
        shape = self.dims(t)
        count = math.prod(shape)
        if count * dtype.itemsize != nbytes:
            shape = (nbytes // dtype.itemsize,)
            count = shape[0]
        if not count or not data:
            return np.zeros(shape, dtype=dtype)
        memory = _TensorMemory(data, shape, dtype, owner)
        owner.track(memory)
        return np.asarray(memory)

    def write(self, t: int, index: int, value: Any, what: str = "input") -> None:
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise ValueError("Failed to convert value into readable tensor.") from exc
        cached = self._writers.get(t)
        if cached is not None:
            state, target = cached
            # Same dtype (so the same TfLiteType), same shape (so the same byte count) as
            # the array this tensor was last written from, and the tensor unchanged: copy
            # straight into its memory. numpy handles any strides.
            if (array.dtype == target.dtype and array.shape == state[3]
                    and state == (self._type(t), self._data_ptr(t), self._byte_size(t),
                                  self._fast_dims(t))):
                target[...] = array
                return
        self._write(t, index, array, what)

    def _write(self, t: int, index: int, array: np.ndarray[Any, Any], what: str) -> None:
        api = self.api
        ttype = api.TfLiteTensorType(t)
        vtype = _types.type_from_numpy(array.dtype)
        if vtype != ttype:
            name = api.TfLiteTensorName(t)
            raise ValueError(
                f"Cannot set tensor: Got value of type {_types.type_name(vtype)} but expected "
                f"type {_types.type_name(ttype)} for {what} {index}, "
                f"name: {(name or b'').decode('utf-8', 'replace')} "
            )
        shape = self.dims(t)
        if array.shape != shape:
            if array.ndim != len(shape):
                raise ValueError(
                    f"Cannot set tensor: Dimension mismatch. Got {array.ndim} but expected "
                    f"{len(shape)} for {what} {index}."
                )
            for j, (got, want) in enumerate(zip(array.shape, shape)):
                if got != want:
                    raise ValueError(
                        f"Cannot set tensor: Dimension mismatch. Got {got} but expected "
                        f"{want} for dimension {j} of {what} {index}."
                    )
        if ttype == _types.STRING:
            self._write_strings(t, index, array)
            return
        nbytes = api.TfLiteTensorByteSize(t)
        data = api.TfLiteTensorData(t)
        if not data and nbytes:
            raise ValueError(
                "Cannot set tensor: Tensor is unallocated. Try calling allocate_tensors() first"
            )
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        if not array.flags.c_contiguous:
            array = np.ascontiguousarray(array)
        if array.nbytes != nbytes:
            raise ValueError(
                f"numpy array had {array.nbytes} bytes but expected {nbytes} bytes."
            )
        if api.TfLiteTensorCopyFromBuffer(t, array.ctypes.data, nbytes) != 0:
            raise ValueError(f"Cannot set tensor {index}: TfLiteTensorCopyFromBuffer failed")
        if data and nbytes:
            # TfLiteTensorCopyFromBuffer is a memcpy into the tensor's data: later writes
            # of the same dtype and shape copy into this array over the same bytes instead.
            raw = (ctypes.c_char * nbytes).from_address(data)
            target = np.frombuffer(raw, dtype=array.dtype, count=array.size).reshape(shape)
            self._remember(self._writers, t, (ttype, data, nbytes, shape), target)


def _pack_strings(array: np.ndarray[Any, Any]) -> bytes:
    """TFLite's string-tensor layout (string_util.h): int32 count, int32 offsets[count+1]
    from the buffer's start, then the bytes; str elements as UTF-8, as tflite_runtime."""
    items = []
    for item in array.reshape(-1).tolist():
        if isinstance(item, str):
            item = item.encode("utf-8")
        if not isinstance(item, bytes):
            raise ValueError("Failed to convert value into readable tensor.")
        items.append(item)
    offsets = [4 * (len(items) + 2)]
    for item in items:
        offsets.append(offsets[-1] + len(item))
    header = np.array([len(items), *offsets], dtype="<i4").tobytes()
    return header + b"".join(items)


def _read_strings(data: int | None, nbytes: int, shape: tuple[int, ...]) -> Any:
    """Decode TFLite's string-tensor layout: int32 count, int32 offsets[count+1], bytes."""
    raw = ctypes.string_at(data, nbytes) if data and nbytes else b""
    out = np.empty(shape, dtype=np.object_)
    flat = out.reshape(-1)
    if len(raw) >= 4:
        count = int(np.frombuffer(raw, dtype="<i4", count=1)[0])
        if count < 0 or 4 * (count + 2) > len(raw):
            raise ValueError("malformed string tensor")
        offsets = np.frombuffer(raw, dtype="<i4", count=count + 1, offset=4)
        for i in range(min(count, flat.size)):
            flat[i] = raw[offsets[i] : offsets[i + 1]]
    return out if out.ndim else out[()]


def _sparsity_dict(info: TensorInfo | None) -> dict[str, Any]:
    if info is None or info.sparsity is None:
        return {}
    sp = info.sparsity
    dims: list[dict[str, Any]] = []
    for d in sp.dim_metadata:
        if d.format == 0:
            dims.append({"format": 0, "dense_size": d.dense_size})
        else:
            dims.append({
                "format": 1,
                "array_segments": np.array(d.array_segments, dtype=np.int32),
                "array_indices": np.array(d.array_indices, dtype=np.int32),
            })
    return {
        "traversal_order": np.array(sp.traversal_order, dtype=np.int32),
        "block_map": np.array(sp.block_map, dtype=np.int32),
        "dim_metadata": dims,
    }


class Interpreter:
    """Runs a TFLite model: ``tflite_runtime.interpreter.Interpreter``'s API and behaviour.

    ``model_path`` or ``model_content`` (bytes) gives the model; ``experimental_delegates``
    is a list of delegates from :func:`load_delegate`; ``num_threads`` sets TFLite's (and
    XNNPACK's) thread count. A malformed model raises ``ValueError``; errors TFLite reports
    later (allocation, invoke, delegates) raise ``RuntimeError`` carrying TFLite's message.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        model_content: bytes | bytearray | memoryview | None = None,
        experimental_delegates: Sequence[Delegate] | None = None,
        num_threads: int | None = None,
        experimental_op_resolver_type: OpResolverType = OpResolverType.AUTO,
        experimental_preserve_all_tensors: bool = False,
        experimental_disable_delegate_clustering: bool = False,
    ) -> None:
        if not isinstance(experimental_op_resolver_type, OpResolverType):
            raise ValueError(
                f"Unrecognized passed in op resolver type: {experimental_op_resolver_type}"
            )
        if experimental_op_resolver_type == OpResolverType.BUILTIN_REF:
            raise ValueError(
                "experimental_op_resolver_type=BUILTIN_REF (reference kernels) is not "
                "available through TFLite's C API"
            )
        default_delegates = (
            experimental_op_resolver_type != OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        if experimental_preserve_all_tensors or experimental_disable_delegate_clustering:
            raise ValueError(
                "experimental_preserve_all_tensors / experimental_disable_delegate_clustering "
                "are not available through TFLite's C API"
            )
        if model_path and not model_content:
            data = _read_model(model_path)
            what = f"'{os.fspath(model_path)}'"
        elif model_content and not model_path:
            data = (model_content if isinstance(model_content, (bytes, bytearray))
                    else memoryview(model_content).cast("B"))
            what = "model_content"
        elif not model_content and not model_path:
            raise ValueError("`model_path` or `model_content` must be specified.")
        else:
            raise ValueError("Can't both provide `model_path` and `model_content`")
        _check_num_threads(num_threads)

        lib = load_library()
        api = guarded_api(lib)  # C++ exceptions become Python ones (tflite_edge._shim)
        self._api = api
        errors = _ErrorLog(lib)

        if len(data) < 8:
            raise ValueError(
                f"Could not create a TFLite model from {what}: {len(data)} bytes is too short"
            )
        self._model = _ModelBytes(data)
        del data  # TFLite sees the pinned copy only
        model = api.TfLiteModelCreateWithErrorReporter(
            self._model.address, self._model.size, errors.callback, None
        )
        if not model:
            raise ValueError(
                f"Could not create a TFLite model from {what}: "
                + errors.take("the flatbuffer is not a valid TFLite model")
            )
        try:
            _precheck(self._model, what)
            options = api.TfLiteInterpreterOptionsCreate()
            try:
                api.TfLiteInterpreterOptionsSetErrorReporter(options, errors.callback, None)
                if num_threads is not None:
                    api.TfLiteInterpreterOptionsSetNumThreads(options, num_threads)
                interp = api.TfLiteInterpreterCreate(model, options)
            finally:
                api.TfLiteInterpreterOptionsDelete(options)
        finally:
            # The interpreter keeps its own reference to the model's contents.
            api.TfLiteModelDelete(model)
        if not interp:
            raise ValueError(
                f"Could not create an interpreter for {what}: "
                + errors.take("TfLiteInterpreterCreate failed")
            )
        self._delegates: list[Delegate] = list(experimental_delegates or [])
        self._handle = _Handle(api, interp, errors, (self._model, self._delegates))
        for delegate in self._delegates:
            delegate._attach(self._handle)
        self._tensors = _TensorAccess(api, self._model)
        # The per-call paths: the C calls they make, and what they check, at hand.
        self._get_tensor = api.TfLiteInterpreterGetTensor
        self._invoke = api.TfLiteInterpreterInvoke  # the shim's run with a fast path
        self._lock = self._handle.lock
        self._messages = errors.messages  # the same list object for errors' life
        for delegate in self._delegates:
            errors.clear()
            status = api.TfLiteInterpreterModifyGraphWithDelegate(
                interp, delegate._get_native_delegate_pointer()
            )
            if status != 0:
                raise RuntimeError(errors.take(
                    f"applying {delegate!r} failed ({STATUS_NAMES.get(status, status)})"
                ))
        # Applied at the first allocation, as tflite_runtime's lazy default delegate is.
        self._pending_xnnpack: tuple[int | None] | None = (
            (num_threads,) if default_delegates else None
        )
        self._inputs = self._indices(
            api.TfLiteInterpreterGetInputTensorCount, api.TfLiteInterpreterInputTensorIndices
        )
        self._outputs = self._indices(
            api.TfLiteInterpreterGetOutputTensorCount, api.TfLiteInterpreterOutputTensorIndices
        )
        # Bound inputs/outputs (tflite_edge._shim.FastPath): empty dicts without the shim.
        self._fast = fast_path(api, interp, functools.partial(self._tensors.is_sparse,
                                                              subgraph=0))
        self._writable: dict[int, Any] = self._fast.writable if self._fast else {}
        self._readable: dict[int, Any] = self._fast.readable if self._fast else {}
        if self._fast is not None:
            self._fast.set_io(self._inputs, self._outputs)
            self._invoke = self._fast.probe
        self._invoke_arg = interp if self._fast is None else self._fast.session

    # -- internals -------------------------------------------------------------------

    def _apply_default_delegate(self) -> None:
        """TFLite's default delegate, as tflite_runtime applies it: XNNPACK, at the first
        allocation (after the user's delegates), with the interpreter's thread count; a
        failure to apply it is ignored (TFLite restores the graph), as TFLite ignores it
        for its default delegate."""
        if self._pending_xnnpack is None:
            return
        (num_threads,) = self._pending_xnnpack
        self._pending_xnnpack = None
        if _xnnpack_unsafe(self._model.reader()):
            return  # TFLite's kernels run (or refuse) it; XNNPACK would crash on it
        api = self._api
        try:
            options = api.TfLiteXNNPackDelegateOptionsDefault()
        except NotImplementedError:  # a library built without XNNPACK
            return
        if num_threads is not None:
            options.num_threads = num_threads
        delegate = api.TfLiteXNNPackDelegateCreate(ctypes.byref(options))
        if not delegate:
            return
        self._handle.default_delegate.append(delegate)
        api.TfLiteInterpreterModifyGraphWithDelegate(self._handle.ptr, delegate)
        self._handle.errors.clear()

    def _indices(self, count_fn: Any, indices_fn: Any) -> tuple[int, ...]:
        n = count_fn(self._handle.ptr)
        ptr = indices_fn(self._handle.ptr)
        return tuple(int(ptr[i]) for i in range(n)) if n else ()

    def _check(self, status: int, call: str, exc: type[Exception] = RuntimeError) -> None:
        if status != 0:
            raise exc(self._handle.errors.take(
                f"{call} failed ({STATUS_NAMES.get(status, status)})"
            ))

    def _ensure_safe(self) -> None:
        if self._handle.live_views():
            raise RuntimeError(_UNSAFE_MESSAGE)

    def _unbind(self) -> None:
        """Forget the fast path's bound tensors before a call that may move them."""
        if self._fast is not None:
            self._fast.clear()

    def _tensor_ptr(self, index: int) -> int:
        """The ``TfLiteTensor*`` of tensor ``index`` (an int) in subgraph 0 (on every
        set_tensor/get_tensor: kept small)."""
        ptr: int = self._get_tensor(self._handle.ptr, index)
        if not ptr:
            raise ValueError(
                f"Invalid tensor index {index} exceeds max tensor index {self._num_tensors()}"
            )
        return ptr

    def _num_tensors(self) -> int:
        """Tensors in subgraph 0 now (TFLite adds tensors of its own at allocation)."""
        get = self._api.TfLiteInterpreterGetTensor
        h = self._handle.ptr
        if not get(h, 0):
            return 0
        lo, hi = 1, 2  # get(lo - 1) exists; find the first missing index
        while get(h, hi - 1):
            lo, hi = hi, hi * 2
        while lo < hi:
            mid = (lo + hi) // 2
            if get(h, mid):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _get_tensor_details(self, tensor_index: int, subgraph_index: int) -> dict[str, Any]:
        if int(subgraph_index) != 0:
            raise ValueError(_subgraph_message(subgraph_index))
        index = int(tensor_index)
        return self._tensors.details(self._tensor_ptr(index), index, 0)

    # -- tflite_runtime API ------------------------------------------------------------

    def allocate_tensors(self) -> None:
        with self._handle.lock:
            self._ensure_safe()
            self._unbind()
            if self._handle.broken is None:
                reader = self._model.reader()
                self._handle.broken = (_missing_tensor(reader)
                                       or _model_checks.kernel_params_problem(reader))
            if self._handle.broken:
                raise RuntimeError(self._handle.broken)
            self._apply_default_delegate()
            self._handle.errors.clear()
            self._check(self._api.TfLiteInterpreterAllocateTensors(self._handle.ptr),
                        "AllocateTensors")
            self._check_grouped_convolutions()
            if self._fast is not None:
                self._fast.bind()
                self._probe()

    def _check_grouped_convolutions(self) -> None:
        """TFLite 2.14's CONV_2D accepts an input whose channels are a multiple of the
        filter's (grouped convolution) without checking that the output channels divide
        into those groups; Eval then divides by zero (SIGFPE, found by the fuzz test). Check
        it here, with the shapes allocate_tensors() settled on."""
        self._handle.broken = None  # allocated: what an earlier failure left is gone
        self._handle.not_ready = False
        try:
            ops = self._model.reader().operators(0)
        except ModelFormatError:
            return
        shape = self._tensors.shape
        get = self._api.TfLiteInterpreterGetTensor
        for node, (code, inputs, outputs) in enumerate(ops):
            if code != _CONV_2D or len(inputs) < 2 or not outputs:
                continue
            ptrs = [get(self._handle.ptr, i) for i in (inputs[0], inputs[1], outputs[0])]
            if not all(ptrs):
                continue
            try:
                x, w, y = (shape(p) for p in ptrs)
            except ValueError:
                continue
            if len(x) != 4 or len(w) != 4 or len(y) != 4 or w[3] <= 0:
                continue
            groups = int(x[3]) // int(w[3])
            if groups < 1 or int(y[3]) % groups or int(w[0]) % groups:
                detail = (
                    f"CONV_2D node {node}: input has {x[3]} channels and the filter {w[3]}, "
                    f"so {groups} groups, which do not divide its {w[0]} output channels"
                )
                self._handle.broken = f"{detail}; allocate_tensors() failed"
                raise RuntimeError(detail)

    def invoke(self) -> None:
        # The hot path (issue 11): the lock's two list operations inline (tflite_edge._lock),
        # one test for the rare states, one ctypes call. The lock is written out in the three
        # hot paths (invoke, set_tensor, get_tensor) on purpose: a helper or `with` would
        # add a Python call to each, about what the inline lock saves (docs/benchmarks.md 3b).
        handle = self._handle
        lock = self._lock
        try:
            lock.free.pop()
        except IndexError:
            lock.wait()
        try:
            if handle.views or handle.broken or handle.not_ready or self._messages:
                self._before_invoke()
            # TfLiteInterpreterInvoke(interpreter) or the shim's run(session); ctypes
            # releases the GIL for the call.
            status = self._invoke(self._invoke_arg)
            if status:
                self._invoke_failed(status)
        finally:
            lock.free.append(True)
            if lock.waiting:
                lock.wake()

    def _probe(self) -> None:
        """Time the next invokes again (tflite_edge._shim.FastPath.probe)."""
        fast = self._fast
        assert fast is not None  # called with the fast path only
        self._invoke = fast.probe
        fast.start_probe()

    def _invoke_failed(self, status: int) -> None:
        fast = self._fast
        if fast is not None:
            if status & PROBED:  # the probe is over: keep the GIL for a tiny invoke or not
                self._invoke = fast.chosen()
                status &= ~PROBED
            if status & STALE:
                self._probe()  # tensors changed shape or moved: so may the invoke's time
            status = fast.settle(status)  # a C++ exception raised, stale bindings
        if status:
            self._check(status, "Invoke")

    def _before_invoke(self) -> None:
        handle = self._handle
        if handle.views and handle.live_views():
            raise RuntimeError(_UNSAFE_MESSAGE)
        if handle.broken:
            raise RuntimeError(handle.broken)
        if handle.not_ready:
            raise RuntimeError("Invoke called on model that is not ready.")
        handle.errors.clear()

    def reset_all_variables(self) -> None:
        with self._handle.lock:
            self._handle.errors.clear()
            self._check(self._api.TfLiteInterpreterResetVariableTensors(self._handle.ptr),
                        "ResetVariableTensors")

    def get_input_details(self) -> list[dict[str, Any]]:
        return [self._get_tensor_details(i, 0) for i in self._inputs]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [self._get_tensor_details(i, 0) for i in self._outputs]

    def get_tensor_details(self) -> list[dict[str, Any]]:
        out = []
        for i in range(self._num_tensors()):
            try:
                details = self._get_tensor_details(i, 0)
            except ValueError:  # no type (as tflite_runtime, such tensors are left out)
                continue
            out.append(details)
        return out

    def _model_ops(self) -> list[tuple[Any, tuple[int, ...], tuple[int, ...]]]:
        try:
            return self._model.reader().operators(0, with_custom=True)
        except ModelFormatError:
            return []

    def _get_op_details(self, op_index: int) -> dict[str, Any]:
        """tflite_runtime's details of one node: index, op_name, inputs, outputs. Read from
        the model's flatbuffer (the C API exposes no nodes), so these are the model's
        operators: the nodes a delegate adds when it takes over part of the graph are not
        listed (docs/runtime.md)."""
        index = int(op_index)
        ops = self._model_ops()
        if not 0 <= index < len(ops):
            raise ValueError("Invalid node index")
        (code, custom), inputs, outputs = ops[index]
        if code == _builtin_ops.CUSTOM:
            name = custom if custom is not None else "UnknownCustomOp"
        elif 0 <= code < len(_builtin_ops.BUILTIN_OPERATOR_NAMES):
            name = _builtin_ops.BUILTIN_OPERATOR_NAMES[code]
        else:
            name = ""
        return {"index": index, "op_name": name,
                "inputs": np.array(inputs, dtype=np.int32),
                "outputs": np.array(outputs, dtype=np.int32)}

    def _get_ops_details(self) -> list[dict[str, Any]]:
        return [self._get_op_details(i) for i in range(len(self._model_ops()))]

    def set_tensor(self, tensor_index: int, value: Any) -> None:
        lock = self._lock  # taken and given back inline, as in invoke()
        try:
            lock.free.pop()
        except IndexError:
            lock.wait()
        try:
            try:
                dtype, shape, view, array = self._writable[tensor_index]
            except KeyError:
                pass
            else:
                if (type(value) is _ndarray and (value.dtype is dtype or value.dtype == dtype)
                        and value.shape == shape):
                    # What the checks of write() would pass: a bound input, an ndarray of
                    # its dtype and shape (any strides). No C call.
                    if view is not None:
                        view[:] = value.tobytes()  # C order, as the tensor's
                    else:
                        array[...] = value
                    return
            index = int(tensor_index)
            ptr = self._tensor_ptr(index)
            self._tensors.write(ptr, index, value)
        finally:
            lock.free.append(True)
            if lock.waiting:
                lock.wake()

    def get_tensor(self, tensor_index: int, subgraph_index: int = 0) -> Any:
        if subgraph_index == 0:
            lock = self._lock  # taken and given back inline, as in invoke()
            try:
                lock.free.pop()
            except IndexError:
                lock.wait()
            try:
                return self._readable[tensor_index]()
            except KeyError:
                pass  # not bound: the C API below
            finally:
                lock.free.append(True)
                if lock.waiting:
                    lock.wake()
        if int(subgraph_index) != 0:
            return self._subgraph_tensor(int(tensor_index), int(subgraph_index))
        index = int(tensor_index)
        with self._handle.lock:
            ptr = self._tensor_ptr(index)
            return self._tensors.read(ptr, index, 0)

    def _subgraph_tensor(self, index: int, subgraph: int) -> Any:
        """A copy of tensor ``index`` of another subgraph. The C API reaches a subgraph's
        tensors only through a signature runner on it, which gives that signature's
        inputs; TfLiteContext keeps a subgraph's tensors in one array (common.h: "An
        array of tensors in the interpreter context"), so tensor ``index`` is found from a
        signature input at its known index, with the array's stride measured on subgraph
        0. Subgraphs no signature runs on (control-flow bodies) stay unreachable."""
        signature = next((sig for sig in self._signatures().values()
                          if sig.subgraph_index == subgraph and sig.inputs), None)
        if signature is None:
            raise ValueError(_subgraph_message(subgraph))
        count = self._model.reader().num_tensors(subgraph)
        if not 0 <= index < count:
            raise ValueError(f"Invalid tensor index {index} exceeds max tensor index {count}")
        api, handle = self._api, self._handle
        with handle.lock:
            first, second = self._get_tensor(handle.ptr, 0), self._get_tensor(handle.ptr, 1)
            if not first or not second:
                raise ValueError(_subgraph_message(subgraph))
            runner = api.TfLiteInterpreterGetSignatureRunner(
                handle.ptr, signature.key.encode("utf-8"))
            if not runner:
                raise ValueError(handle.errors.take(f"No signature runner for {signature.key!r}"))
            try:
                name, anchor_index = next(iter(sorted(signature.inputs.items())))
                anchor = api.TfLiteSignatureRunnerGetInputTensor(runner, name.encode("utf-8"))
                if not anchor:
                    raise ValueError(_subgraph_message(subgraph))
                ptr = anchor + (index - anchor_index) * (second - first)
                return self._tensors.read(ptr, index, subgraph)
            finally:
                api.TfLiteSignatureRunnerDelete(runner)

    def tensor(self, tensor_index: int) -> Callable[[], np.ndarray[Any, Any]]:
        """A function returning a numpy view of the tensor's current buffer (no copy).

        Hold the function, not the array: allocate_tensors(), resize_tensor_input() and
        invoke() raise RuntimeError while such an array is alive, as in tflite_runtime.
        """
        index = int(tensor_index)
        handle = self._handle
        tensors = self._tensors
        get = self._api.TfLiteInterpreterGetTensor

        def view() -> np.ndarray[Any, Any]:
            with handle.lock:
                ptr = get(handle.ptr, index)
                if not ptr:
                    raise ValueError(f"Invalid tensor index {index}")
                return tensors.view(ptr, index, handle)

        return view

    def resize_tensor_input(self, input_index: int, tensor_size: Any, strict: bool = False) -> None:
        with self._handle.lock:
            self._ensure_safe()
            self._unbind()
            index = int(input_index)
            dims = np.array(tensor_size, dtype=np.int32)
            if dims.ndim != 1:
                raise ValueError(f"Shape should be 1D instead of {dims.ndim}.")
            if index not in self._inputs:
                self._resize_other(index, dims)
                return
            if strict:
                self._check_strict_resize(index, dims)
            c_dims = np.ascontiguousarray(dims, dtype=np.intc)
            self._handle.errors.clear()
            status = self._api.TfLiteInterpreterResizeInputTensor(
                self._handle.ptr,
                self._inputs.index(index),
                c_dims.ctypes.data_as(ctypes.POINTER(ctypes.c_int)),
                len(c_dims),
            )
            self._check(status, "ResizeInputTensor")

    def _resize_other(self, index: int, dims: np.ndarray[Any, Any]) -> None:
        """What tflite_runtime's resize of a tensor that is not an input comes to, for
        TFLite's C API resizes inputs only (by input position): a bad index and a constant
        tensor raise RuntimeError with TFLite's words; any other tensor's shape is set by
        the op that writes it at the next allocate_tensors() (so a resize is undone there),
        and until then the interpreter is not ready to invoke, as TFLite's. Only the shape
        get_tensor_details() reports in between differs (docs/runtime.md)."""
        ptr = self._get_tensor(self._handle.ptr, index)
        if not ptr:
            raise RuntimeError(
                f"tensor_index < context_.tensors_size && tensor_index >= 0 was not true: "
                f"tensor {index} does not exist ({self._num_tensors()} tensors)"
            )
        try:
            constant = self._model.reader().is_constant(index, 0)
        except ModelFormatError:
            constant = False
        if constant:
            raise RuntimeError("Attempting to resize a fixed-size tensor.")
        if (self._api.TfLiteTensorData(ptr)
                and self._tensors.dims(ptr) == tuple(int(d) for d in dims)):
            return  # TFLite's short cut: same shape, already allocated
        self._handle.not_ready = True

    def _check_strict_resize(self, index: int, dims: np.ndarray[Any, Any]) -> None:
        shape = self._tensors.shape(self._tensor_ptr(index))
        info = self._tensors.info(index, 0)
        signature = info.shape_signature if info and info.shape_signature else tuple(shape)
        if len(dims) != len(shape):
            raise RuntimeError(
                f"ResizeInputTensorStrict: tensor {index} has {len(shape)} dimensions, "
                f"got {len(dims)}"
            )
        for i, (sig, new) in enumerate(zip(signature, dims)):
            if sig != -1 and sig != new:
                raise RuntimeError(
                    f"Attempting to resize dimension {i} of tensor {index} with value {sig} "
                    f"to {new}. ResizeInputTensorStrict only allows mutating unknown "
                    "dimensions identified by -1."
                )

    def _signatures(self) -> dict[str, Any]:
        try:
            return {s.key: s for s in self._model.reader().signatures()}
        except ModelFormatError:
            return {}

    def get_signature_list(self) -> dict[str, dict[str, list[str]]]:
        return {
            key: {"inputs": sorted(sig.inputs), "outputs": sorted(sig.outputs)}
            for key, sig in self._signatures().items()
        }

    def get_signature_runner(self, signature_key: str | None = None) -> SignatureRunner:
        signatures = self._signatures()
        if signature_key is None:
            if len(signatures) != 1:
                raise ValueError(
                    f"SignatureDef signature_key is None and model has {len(signatures)} "
                    "Signatures. None is only allowed when the model has 1 SignatureDef"
                )
            signature_key = next(iter(signatures))
        return SignatureRunner(interpreter=self, signature_key=signature_key)

    def _native_handle(self) -> int:
        """The ``TfLiteInterpreter*`` of the C API."""
        return self._handle.ptr


def _subgraph_message(subgraph_index: Any) -> str:
    return (
        f"subgraph_index={subgraph_index}: TFLite's C API reaches the tensors of another "
        "subgraph only through a signature runner on it, and no signature runs on this one"
    )


def _release_runner(api: CApi, runner: int, handle: _Handle) -> None:
    api.TfLiteSignatureRunnerDelete(runner)


class SignatureRunner:
    """Runs one SignatureDef of a model: ``runner(input_name=array, ...)`` returns a dict of
    output name -> array, as ``tflite_runtime``'s SignatureRunner."""

    def __init__(self, interpreter: Interpreter | None = None,
                 signature_key: str | None = None) -> None:
        if not interpreter:
            raise ValueError("None interpreter provided.")
        if not signature_key:
            raise ValueError("None signature_key provided.")
        signatures = interpreter._signatures()
        if signature_key not in signatures:
            raise ValueError("Invalid signature_key provided.")
        self._interpreter = interpreter
        self._signature = signatures[signature_key]
        self._api = interpreter._api
        handle = interpreter._handle
        self._handle = handle
        handle.errors.clear()
        ptr = self._api.TfLiteInterpreterGetSignatureRunner(
            handle.ptr, signature_key.encode("utf-8")
        )
        if not ptr:
            raise ValueError(handle.errors.take(f"No signature runner for {signature_key!r}"))
        self._ptr: int = ptr
        self._finalizer = weakref.finalize(self, _release_runner, self._api, ptr, handle)

    def _input_ptr(self, name: str) -> int:
        t = self._api.TfLiteSignatureRunnerGetInputTensor(self._ptr, name.encode("utf-8"))
        if not t:
            raise ValueError(f"Invalid Input name ({name}) for SignatureDef")
        return int(t)

    def _output_ptr(self, name: str) -> int:
        t = self._api.TfLiteSignatureRunnerGetOutputTensor(self._ptr, name.encode("utf-8"))
        if not t:
            raise ValueError(f"Invalid Output name ({name}) for SignatureDef")
        return int(t)

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            raise RuntimeError(self._handle.errors.take(
                f"{call} failed ({STATUS_NAMES.get(status, status)})"
            ))

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        with self._handle.lock:  # the runner shares its interpreter's state
            self._interpreter._unbind()  # and may move or reshape subgraph 0's tensors
            return self._run(kwargs)

    def _run(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        sig = self._signature
        if len(kwargs) != len(sig.inputs):
            raise ValueError(
                "Invalid number of inputs provided for running a SignatureDef, "
                f"expected {len(sig.inputs)} vs provided {len(kwargs)}"
            )
        api = self._api
        interp = self._interpreter
        values = {}
        for name, value in kwargs.items():
            if name not in sig.inputs:
                raise ValueError(f"Invalid Input name ({name}) for SignatureDef")
            array = np.asarray(value)
            values[name] = array
            dims = np.ascontiguousarray(array.shape, dtype=np.intc)
            c_dims = dims.ctypes.data_as(ctypes.POINTER(ctypes.c_int))
            tensor_index = sig.inputs[name]
            self._handle.errors.clear()
            if sig.subgraph_index == 0 and tensor_index in interp._inputs:
                # tflite_runtime resizes without the "strict" rule; the C API's runner
                # resize is strict, the interpreter's is not.
                status = api.TfLiteInterpreterResizeInputTensor(
                    self._handle.ptr, interp._inputs.index(tensor_index), c_dims, len(dims)
                )
            else:
                status = api.TfLiteSignatureRunnerResizeInputTensor(
                    self._ptr, name.encode("utf-8"), c_dims, len(dims)
                )
            self._check(status, "ResizeInputTensor")
        interp._apply_default_delegate()
        self._handle.errors.clear()
        self._check(api.TfLiteSignatureRunnerAllocateTensors(self._ptr), "AllocateTensors")
        tensors = interp._tensors
        for name, array in values.items():
            tensors.write(self._input_ptr(name), sig.inputs[name], array, what="input")
        self._handle.errors.clear()
        self._check(api.TfLiteSignatureRunnerInvoke(self._ptr), "Invoke")
        return {  # sorted by name, as tflite_runtime's
            name: tensors.read(self._output_ptr(name), index, sig.subgraph_index)
            for name, index in sorted(sig.outputs.items())
        }

    def get_input_details(self) -> dict[str, dict[str, Any]]:
        tensors = self._interpreter._tensors
        sg = self._signature.subgraph_index
        return {
            name: tensors.details(self._input_ptr(name), index, sg)
            for name, index in sorted(self._signature.inputs.items())
        }

    def get_output_details(self) -> dict[str, dict[str, Any]]:
        tensors = self._interpreter._tensors
        sg = self._signature.subgraph_index
        return {
            name: tensors.details(self._output_ptr(name), index, sg)
            for name, index in sorted(self._signature.outputs.items())
        }


def library_info() -> Mapping[str, str]:
    """Which libtensorflowlite_c is in use (loading it if needed): path, source, version."""
    lib = load_library()
    return {"path": lib.path, "source": lib.source, "version": lib.version, "env_var": ENV_VAR}
