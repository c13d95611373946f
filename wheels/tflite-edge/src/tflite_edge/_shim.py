"""tflite-edge's shim (``libtflite_edge_shim.so``): TFLite's C API calls that can throw, made
safe, and a fast path for set_tensor/invoke/get_tensor.

TFLite is C++ inside its C API: a ``std::bad_alloc`` (or any other exception) thrown by the
runtime leaves the C function, and through ctypes that is ``std::terminate``, the process
gone. The shim, built by edgeforge's pipeline with the same toolchain as
``libtensorflowlite_c`` and shipped beside it in tflite-edge-lib, runs each such call inside
a ``catch (...)`` and returns what was thrown; here that becomes the Python exception
tflite_runtime's pybind11 layer raises for it (``MemoryError`` for ``std::bad_alloc``,
``ValueError``, ``IndexError``, ``OverflowError``, else ``RuntimeError``). It is plain C
over ctypes, so the wheel stays free of any Python ABI, and it does not link the C library:
it gets the C API's functions from the library tflite-edge loaded (by address), so it can
never reach a second copy of TFLite.

Where it comes from: ``libtflite_edge_shim.so`` in the directory of the loaded
``libtensorflowlite_c`` (the wheel's ``lib/``, or beside a ``TFLITE_EDGE_LIBRARY``). A
library without one (an override built elsewhere) runs on the plain C API: everything
works, but a C++ exception aborts the process; ``doctor`` says which it is.
"""

from __future__ import annotations

import _ctypes
import ctypes
import functools
import math
import operator
import os
import sys
import threading
import time
from ctypes import POINTER, Structure, c_char_p, c_int, c_int32, c_size_t, c_void_p
from dataclasses import dataclass
from typing import Any, Callable

from ._library import CApi, ErrorReporterCallback, LoadedLibrary

# The name the tflite recipe stages it under ({shared-library:tflite_edge_shim}) per platform
if sys.platform == "win32":
    SHIM_NAME = "libtflite_edge_shim.dll"
elif sys.platform == "darwin":
    SHIM_NAME = "libtflite_edge_shim.dylib"
else:
    SHIM_NAME = "libtflite_edge_shim.so"
ABI_VERSION = 1
EXCEPTION = 256
STALE = 0x10000
MAX_DIMS = 8
#: Set by FastPath.probe on the run that ends a probe (not a bit the shim returns).
PROBED = 0x20000
#: Invokes timed after each bind, and the median (wall time) below which later invokes keep
#: the GIL: the median, as the first invoke after allocation is slower and another process
#: can take the CPU in the middle of any one.
PROBES = 8
TINY_INVOKE = 10e-6

#: Result kinds (tflite_edge_shim.h) -> the exception pybind11 raises for that C++ type.
EXCEPTION_TYPES: dict[int, type[Exception]] = {
    1: RuntimeError,
    2: MemoryError,
    3: ValueError,
    4: IndexError,
    5: OverflowError,
    6: RuntimeError,  # a C API function the shim was not given
}

#: The C API functions the shim calls, handed over by address (optional ones may be absent).
HANDED_OVER = (
    "TfLiteModelCreateWithErrorReporter",
    "TfLiteInterpreterCreate",
    "TfLiteInterpreterAllocateTensors",
    "TfLiteInterpreterInvoke",
    "TfLiteInterpreterResizeInputTensor",
    "TfLiteInterpreterModifyGraphWithDelegate",
    "TfLiteInterpreterResetVariableTensors",
    "TfLiteXNNPackDelegateCreate",
    "TfLiteInterpreterGetSignatureRunner",
    "TfLiteSignatureRunnerResizeInputTensor",
    "TfLiteSignatureRunnerAllocateTensors",
    "TfLiteSignatureRunnerInvoke",
    "TfLiteTensorType",
    "TfLiteTensorNumDims",
    "TfLiteTensorDim",
    "TfLiteTensorByteSize",
    "TfLiteTensorData",
)


class Binding(Structure):
    """``tflite_edge_shim_binding``: one tensor as it was when bound."""

    _fields_ = [("tensor", c_void_p), ("data", c_void_p), ("bytes", c_size_t),
                ("type", c_int32), ("ndims", c_int32), ("dims", c_int32 * MAX_DIMS)]


class Session(Structure):
    """``tflite_edge_shim_session``: what one fast invoke runs and checks."""

    _fields_ = [("interpreter", c_void_p), ("bindings", c_void_p), ("count", c_int32)]


_P = c_void_p
_PP = POINTER(c_void_p)
_DIMS = POINTER(c_int)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "tflite_edge_shim_abi_version": (c_int, []),
    "tflite_edge_shim_set_function": (c_int, [c_char_p, _P]),
    "tflite_edge_shim_message": (c_char_p, []),
    "tflite_edge_shim_model_create": (c_int, [_P, c_size_t, ErrorReporterCallback, _P, _PP]),
    "tflite_edge_shim_interpreter_create": (c_int, [_P, _P, _PP]),
    "tflite_edge_shim_allocate_tensors": (c_int, [_P]),
    "tflite_edge_shim_resize_input_tensor": (c_int, [_P, c_int32, _DIMS, c_int32]),
    "tflite_edge_shim_modify_graph_with_delegate": (c_int, [_P, _P]),
    "tflite_edge_shim_reset_variable_tensors": (c_int, [_P]),
    "tflite_edge_shim_xnnpack_delegate_create": (c_int, [_P, _PP]),
    "tflite_edge_shim_get_signature_runner": (c_int, [_P, c_char_p, _PP]),
    "tflite_edge_shim_signature_runner_resize_input_tensor": (c_int, [_P, c_char_p, _DIMS,
                                                                     c_int32]),
    "tflite_edge_shim_signature_runner_allocate_tensors": (c_int, [_P]),
    "tflite_edge_shim_signature_runner_invoke": (c_int, [_P]),
    "tflite_edge_shim_bind": (c_int, [_P, POINTER(Binding)]),
    "tflite_edge_shim_invoke": (c_int, [_P]),
    "tflite_edge_shim_run": (c_int, [_P]),
}


class Shim:
    """The loaded shim, with the C API's functions handed over."""

    def __init__(self, path: str, cdll: ctypes.CDLL, api: CApi) -> None:
        self.path = path
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(cdll, name)
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[len("tflite_edge_shim_"):], fn)
        self._cdll = cdll
        # The same run, called without releasing the GIL (FastPath.probe says when). PyPy's
        # ctypes has no PyDLL: there every run releases it.
        self.run_holding_gil = self.run
        pydll = getattr(ctypes, "PyDLL", None)
        if pydll is not None:
            held = pydll(path).tflite_edge_shim_run
            held.restype, held.argtypes = _SIGNATURES["tflite_edge_shim_run"]
            self.run_holding_gil = held
        for name in HANDED_OVER:
            fn = getattr(api, name)
            address = ctypes.cast(fn, c_void_p).value if isinstance(fn, _ctypes.CFuncPtr) \
                else None
            if self.set_function(name.encode("ascii"), address) != 0:
                raise OSError(f"{path} does not take {name}: it is not tflite-edge's shim "
                              f"ABI {ABI_VERSION}")

    def __getattr__(self, name: str) -> Any:  # for type checkers: attributes are set above
        raise AttributeError(name)

    def error(self, result: int, call: str) -> Exception:
        """The Python exception for a result that carries a caught C++ exception."""
        kind = (result & 0xFFFF) - EXCEPTION
        message = (self.message() or b"").decode("utf-8", "replace")
        exc_type = EXCEPTION_TYPES.get(kind, RuntimeError)
        if exc_type is MemoryError:
            return MemoryError(message)
        return exc_type(f"{call}: {message}" if kind == 6 else message)

    def status(self, result: int, call: str) -> int:
        """A TfLiteStatus, or the exception the call threw, raised."""
        if result & 0xFFFF >= EXCEPTION:
            raise self.error(result, call)
        return result & 0xFF


@dataclass(frozen=True)
class ShimState:
    """Whether the shim is in use, and why (for ``doctor``)."""

    shim: Shim | None
    path: str
    problem: str | None


_lock = threading.Lock()
_states: dict[str, ShimState] = {}


def shim_path(library_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(library_path)), SHIM_NAME)


def load_shim(lib: LoadedLibrary) -> ShimState:
    """The shim beside ``lib`` (loaded once per library), or why there is none."""
    state = _states.get(lib.path)
    if state is not None:
        return state
    with _lock:
        state = _states.get(lib.path)
        if state is None:
            state = _states[lib.path] = _load(lib)
        return state


def _load(lib: LoadedLibrary) -> ShimState:
    path = shim_path(lib.path)
    if not os.path.isfile(path):
        return ShimState(None, path, f"no {SHIM_NAME} beside {lib.path}: TFLite's C API is "
                                     "called directly, and a C++ exception thrown inside "
                                     "TFLite (e.g. std::bad_alloc) aborts the process")
    try:
        cdll = ctypes.CDLL(path)
        version = cdll.tflite_edge_shim_abi_version()
        if version != ABI_VERSION:
            return ShimState(None, path, f"{path} has shim ABI {version}, this tflite-edge "
                                         f"needs {ABI_VERSION}: TFLite's C API is called "
                                         "directly")
        return ShimState(Shim(path, cdll, lib.api), path, None)
    except (OSError, AttributeError) as exc:
        return ShimState(None, path, f"{path} cannot be used ({exc}): TFLite's C API is "
                                     "called directly")


class GuardedApi:
    """The C API with every call that can throw routed through the shim: the same names,
    arguments and results as :class:`CApi`'s, but a C++ exception becomes a Python one."""

    def __init__(self, api: CApi, shim: Shim) -> None:
        self._api = api
        self.shim = shim
        s = shim

        def creating(fn: Any, call: str) -> Any:
            def create(*args: Any) -> int | None:
                out = c_void_p()
                s.status(fn(*args, ctypes.byref(out)), call)
                return out.value
            return create

        def guard(fn: Any, call: str) -> Any:
            def guarded(*args: Any) -> int:
                return s.status(fn(*args), call)
            return guarded

        for name, fn in (
            ("TfLiteModelCreateWithErrorReporter", s.model_create),
            ("TfLiteInterpreterCreate", s.interpreter_create),
            ("TfLiteXNNPackDelegateCreate", s.xnnpack_delegate_create),
            ("TfLiteInterpreterGetSignatureRunner", s.get_signature_runner),
        ):
            setattr(self, name, creating(fn, name))
        for name, fn in (
            ("TfLiteInterpreterAllocateTensors", s.allocate_tensors),
            ("TfLiteInterpreterInvoke", s.invoke),
            ("TfLiteInterpreterResizeInputTensor", s.resize_input_tensor),
            ("TfLiteInterpreterModifyGraphWithDelegate", s.modify_graph_with_delegate),
            ("TfLiteInterpreterResetVariableTensors", s.reset_variable_tensors),
            ("TfLiteSignatureRunnerResizeInputTensor",
             s.signature_runner_resize_input_tensor),
            ("TfLiteSignatureRunnerAllocateTensors", s.signature_runner_allocate_tensors),
            ("TfLiteSignatureRunnerInvoke", s.signature_runner_invoke),
        ):
            setattr(self, name, guard(fn, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)


def guarded_api(lib: LoadedLibrary) -> CApi:
    """``lib.api``, guarded by the shim when there is one (else ``lib.api`` itself)."""
    state = load_shim(lib)
    if state.shim is None:
        return lib.api
    api = _guarded.get(lib.path)
    if api is None:
        api = _guarded.setdefault(lib.path, GuardedApi(lib.api, state.shim))
    return api  # type: ignore[return-value]


_guarded: dict[str, GuardedApi] = {}


#: Tensors up to this size are written through a byte view from ``value.tobytes()`` (about
#: half the time of numpy's ``a[...] = value`` for a few floats); larger ones by numpy's
#: copy, which does not copy twice.
SMALL_TENSOR = 512


def _scalar(array: Any) -> Callable[[], Any]:
    """get_tensor of a bound 0-d tensor: a numpy scalar (``array[()]`` copies the value)."""
    return functools.partial(operator.getitem, array, ())


class FastPath:
    """Subgraph 0's inputs and outputs, bound after allocate_tensors(): numpy arrays over
    their memory, so set_tensor/get_tensor copy with no ctypes call at all, while the
    shim's invoke checks after every run that each bound tensor still has the data, byte
    size, type and dims it was bound with (dynamic tensors move and change shape in
    invoke); the bindings are made again when one changed, and once after the first invoke
    when a tensor had no memory yet (dynamic outputs get theirs in invoke).

    ``writable`` (inputs: index -> (dtype, shape, byte view or None, array)) and
    ``readable`` (inputs and outputs: index -> a function returning a copy) are the same
    dict objects for the fast path's life, empty while nothing is bound. Only the
    interpreter's own calls change tensors outside invoke: it clears the bindings before
    each (allocate, resize, signature runners) and binds again after a good allocation.
    ``run(session)`` is the shim's invoke of this interpreter; a result other than 0 goes
    to :meth:`settle`. A tensor without memory at bind time gets a binding that never
    matches, so the run after it reports the bindings stale (the one retry). After each
    bind, :meth:`probe` times ``PROBES`` runs and then (the ``PROBED`` bit) says that
    :meth:`chosen` is to be called from then on: the run that keeps the GIL when their
    median took less than ``TINY_INVOKE``, else the one that releases it, as every other C
    call does. Giving the
    GIL up and taking it back costs about 0.1 µs (bench/bench_invoke.py --micro), a fifth of
    a tiny model's invoke; another thread waits at most as long as such an invoke.
    Bound are the tensors a plain numpy array stands for: fixed-size types, dense, byte
    size = shape x item size.
    """

    def __init__(self, shim: Shim, api: CApi, interpreter: int,
                 is_sparse: Callable[[int], bool]) -> None:
        self._shim = shim
        self._get_tensor = api.TfLiteInterpreterGetTensor
        self._interpreter = interpreter
        self._is_sparse = is_sparse
        self._inputs: tuple[int, ...] = ()
        self._outputs: tuple[int, ...] = ()
        self.writable: dict[int, Any] = {}
        self.readable: dict[int, Any] = {}
        self._bindings: Any = None
        self._session = Session(interpreter, None, 0)
        self.session = ctypes.addressof(self._session)
        self.run: Callable[[int], int] = shim.run
        self.run_holding_gil: Callable[[int], int] = shim.run_holding_gil
        self._times: list[float] = []
        self.unbound = False  # some tensor had no memory at the last bind
        self._retrying = False  # the last bind added a binding that never matches

    def set_io(self, inputs: tuple[int, ...], outputs: tuple[int, ...]) -> None:
        self._inputs = inputs
        self._outputs = outputs

    def clear(self) -> None:
        self.writable.clear()
        self.readable.clear()
        self._session.bindings = None
        self._session.count = 0
        self._bindings = None
        self.unbound = False
        self._retrying = False

    def bind(self, retry: bool = True) -> None:
        """Bind every input and output that a plain numpy array can stand for; with
        ``retry``, rebind after the next run if a tensor has no memory yet."""
        import numpy as np

        from . import _types

        self.clear()
        seen: dict[int, Binding] = {}
        arrays: dict[int, Any] = {}
        never = []  # bindings that never match: a tensor without memory
        for index in (*self._inputs, *self._outputs):
            if index in seen:
                continue
            t = self._get_tensor(self._interpreter, index)
            if not t:
                continue
            b = Binding()
            if self._shim.bind(t, ctypes.byref(b)) != 0 or not b.bytes:
                self.unbound = True
                if retry:
                    never.append(Binding(t, None, ctypes.c_size_t(-1).value, -1, 0))
                continue
            dims = tuple(b.dims[: b.ndims])
            if (b.type not in _types.FIXED_SIZE
                    or math.prod(dims) * _types.ITEMSIZE[b.type] != b.bytes
                    or self._is_sparse(index)):
                continue
            raw = (ctypes.c_char * b.bytes).from_address(b.data)
            arrays[index] = np.frombuffer(raw, dtype=_types.NUMPY_TYPES[b.type]).reshape(dims)
            seen[index] = b
        self._retrying = bool(never)
        if not seen and not never:
            return
        bindings = (Binding * (len(seen) + len(never)))(*seen.values(), *never)
        self._bindings = bindings  # kept alive here; the session points into it
        self._session.bindings = ctypes.addressof(bindings)
        self._session.count = len(bindings)
        # (dtype, shape, byte view, array): what set_tensor compares a value with, ready
        self.writable.update(
            (i, (arrays[i].dtype, arrays[i].shape,
                 memoryview(arrays[i]).cast("B") if arrays[i].nbytes <= SMALL_TENSOR
                 else None, arrays[i]))
            for i in self._inputs if i in arrays)
        self.readable.update((i, a.copy if a.ndim else _scalar(a)) for i, a in arrays.items())

    def start_probe(self) -> None:
        self._times = []

    def probe(self, session: int) -> int:
        """``run``, timed; the ``PROBES``-th result carries ``PROBED``."""
        t0 = time.perf_counter()
        result = self.run(session)
        self._times.append(time.perf_counter() - t0)
        return result | PROBED if len(self._times) >= PROBES else result

    def chosen(self) -> Callable[[int], int]:
        median = sorted(self._times)[len(self._times) // 2] if self._times else 1.0
        return self.run_holding_gil if median < TINY_INVOKE else self.run

    def settle(self, result: int) -> int:
        """What a run's result other than 0 means: the exception it carries raised, the
        bindings made again when a tensor changed; the TfLiteStatus."""
        if result & 0xFFFF >= EXCEPTION:
            self.clear()
            raise self._shim.error(result, "Invoke")
        if result & STALE:
            self.bind(retry=not self._retrying)  # retried once: leave it
        return result & 0xFF


def fast_path(api: CApi, interpreter: int, is_sparse: Callable[[int], bool]
              ) -> FastPath | None:
    """A FastPath when ``api`` is guarded by the shim, else None."""
    if not isinstance(api, GuardedApi):
        return None
    return FastPath(api.shim, api._api, interpreter, is_sparse)
