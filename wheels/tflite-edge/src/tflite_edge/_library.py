"""Finding, loading and declaring ``libtensorflowlite_c``.

Every C function tflite-edge calls is declared here, once, with its argument and result
types (the table ``_FUNCTIONS``). The library is loaded lazily, on first use, and kept:
that handle is the package's only module-level state.

Where the library comes from, first match wins:

1. ``TFLITE_EDGE_LIBRARY=/path/to/libtensorflowlite_c.so`` (like esbuild's
   ``ESBUILD_BINARY_PATH``). Set but missing or not loadable is an error naming the path;
   it never falls through to another library silently.
2. The ``tflite-edge-lib`` distribution: ``tflite_edge_lib.library_path()``, the binary
   wheel pip picked for this machine.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_float,
    c_int,
    c_int32,
    c_size_t,
    c_void_p,
)
from dataclasses import dataclass
from typing import Any, Callable

ENV_VAR = "TFLITE_EDGE_LIBRARY"

#: Status codes of ``TfLiteStatus`` (c_api_types.h).
STATUS_NAMES = {
    0: "kTfLiteOk",
    1: "kTfLiteError",
    2: "kTfLiteDelegateError",
    3: "kTfLiteApplicationError",
    4: "kTfLiteDelegateDataNotFound",
    5: "kTfLiteDelegateDataWriteError",
    6: "kTfLiteDelegateDataReadError",
    7: "kTfLiteUnresolvedOps",
    8: "kTfLiteCancelled",
}


class LibraryNotFoundError(ImportError):
    """No usable ``libtensorflowlite_c`` was found (or the one named could not be loaded)."""


class TfLiteQuantizationParams(Structure):
    _fields_ = [("scale", c_float), ("zero_point", c_int32)]


class TfLiteXNNPackDelegateOptions(Structure):
    """tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h (2.14)."""

    _fields_ = [("num_threads", c_int32), ("flags", ctypes.c_uint32),
                ("weights_cache", c_void_p), ("handle_variable_ops", ctypes.c_bool)]


#: ``void (*reporter)(void* user_data, const char* format, va_list args)``.
#: ``va_list`` travels as one pointer-sized value on every ABI tflite-edge targets
#: (x86_64 and aarch64 pass it by reference, armv7/riscv64/i386 pass a pointer-sized value).
ErrorReporterCallback = CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)

_P = c_void_p  # every opaque TfLite* pointer

# name: (restype, argtypes). Kept in header order (tensorflow/lite/core/c/c_api.h, then
# c_api_experimental.h). Every one exists in TFLite 2.14's libtensorflowlite_c.
_FUNCTIONS: dict[str, tuple[Any, list[Any]]] = {
    "TfLiteVersion": (c_char_p, []),
    "TfLiteSchemaVersion": (c_int, []),
    "TfLiteModelCreateWithErrorReporter": (_P, [c_void_p, c_size_t, ErrorReporterCallback, _P]),
    "TfLiteModelDelete": (None, [_P]),
    "TfLiteInterpreterOptionsCreate": (_P, []),
    "TfLiteInterpreterOptionsDelete": (None, [_P]),
    "TfLiteInterpreterOptionsSetNumThreads": (None, [_P, c_int32]),
    "TfLiteInterpreterOptionsAddDelegate": (None, [_P, _P]),
    "TfLiteInterpreterOptionsSetErrorReporter": (None, [_P, ErrorReporterCallback, _P]),
    "TfLiteInterpreterCreate": (_P, [_P, _P]),
    "TfLiteInterpreterDelete": (None, [_P]),
    "TfLiteInterpreterGetInputTensorCount": (c_int32, [_P]),
    "TfLiteInterpreterInputTensorIndices": (POINTER(c_int), [_P]),
    "TfLiteInterpreterGetInputTensor": (_P, [_P, c_int32]),
    "TfLiteInterpreterResizeInputTensor": (c_int, [_P, c_int32, POINTER(c_int), c_int32]),
    "TfLiteInterpreterAllocateTensors": (c_int, [_P]),
    "TfLiteInterpreterInvoke": (c_int, [_P]),
    "TfLiteInterpreterGetOutputTensorCount": (c_int32, [_P]),
    "TfLiteInterpreterOutputTensorIndices": (POINTER(c_int), [_P]),
    "TfLiteInterpreterGetOutputTensor": (_P, [_P, c_int32]),
    "TfLiteInterpreterGetTensor": (_P, [_P, c_int]),
    "TfLiteTensorType": (c_int, [_P]),
    "TfLiteTensorNumDims": (c_int32, [_P]),
    "TfLiteTensorDim": (c_int32, [_P, c_int32]),
    "TfLiteTensorByteSize": (c_size_t, [_P]),
    "TfLiteTensorData": (c_void_p, [_P]),
    "TfLiteTensorName": (c_char_p, [_P]),
    "TfLiteTensorQuantizationParams": (TfLiteQuantizationParams, [_P]),
    "TfLiteTensorCopyFromBuffer": (c_int, [_P, c_void_p, c_size_t]),
    "TfLiteTensorCopyToBuffer": (c_int, [_P, c_void_p, c_size_t]),
    # common.h (exported by the library's version script, TfLite*): resizes a dynamic
    # tensor's own block, which string tensors are.
    "TfLiteTensorRealloc": (c_int, [c_size_t, _P]),
    # c_api_experimental.h
    "TfLiteInterpreterResetVariableTensors": (c_int, [_P]),
    "TfLiteInterpreterModifyGraphWithDelegate": (c_int, [_P, _P]),
    "TfLiteInterpreterGetSignatureCount": (c_int32, [_P]),
    "TfLiteInterpreterGetSignatureKey": (c_char_p, [_P, c_int32]),
    "TfLiteInterpreterGetSignatureRunner": (_P, [_P, c_char_p]),
    "TfLiteSignatureRunnerGetInputCount": (c_size_t, [_P]),
    "TfLiteSignatureRunnerGetInputName": (c_char_p, [_P, c_int32]),
    "TfLiteSignatureRunnerResizeInputTensor": (c_int, [_P, c_char_p, POINTER(c_int), c_int32]),
    "TfLiteSignatureRunnerAllocateTensors": (c_int, [_P]),
    "TfLiteSignatureRunnerGetInputTensor": (_P, [_P, c_char_p]),
    "TfLiteSignatureRunnerInvoke": (c_int, [_P]),
    "TfLiteSignatureRunnerGetOutputCount": (c_size_t, [_P]),
    "TfLiteSignatureRunnerGetOutputName": (c_char_p, [_P, c_int32]),
    "TfLiteSignatureRunnerGetOutputTensor": (_P, [_P, c_char_p]),
    "TfLiteSignatureRunnerDelete": (None, [_P]),
    # delegates/xnnpack/xnnpack_delegate.h: the C API's op resolver applies no default
    # delegate, so tflite-edge applies XNNPACK itself, as tflite_runtime's does.
    "TfLiteXNNPackDelegateOptionsDefault": (TfLiteXNNPackDelegateOptions, []),
    "TfLiteXNNPackDelegateCreate": (_P, [POINTER(TfLiteXNNPackDelegateOptions)]),
    "TfLiteXNNPackDelegateDelete": (None, [_P]),
}

# Not every build of the C library has these (they are experimental); the rest are required.
_OPTIONAL = frozenset(
    name
    for name in _FUNCTIONS
    if name.startswith(("TfLiteSignatureRunner", "TfLiteXNNPack"))
    or name
    in {
        "TfLiteInterpreterGetSignatureCount",
        "TfLiteInterpreterGetSignatureKey",
        "TfLiteInterpreterGetSignatureRunner",
        "TfLiteInterpreterResetVariableTensors",
        "TfLiteInterpreterModifyGraphWithDelegate",
        "TfLiteTensorRealloc",
    }
)


class _Missing:
    """Stands in for an optional C function this build of the library lacks."""

    def __init__(self, name: str, path: str) -> None:
        self._name = name
        self._path = path

    def __call__(self, *args: object) -> Any:
        raise NotImplementedError(f"{self._name} is not exported by {self._path}")


class CApi:
    """The declared C functions of one loaded library, as attributes named like the C ones."""

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        missing = []
        for name, (restype, argtypes) in _FUNCTIONS.items():
            try:
                fn = getattr(cdll, name)
            except AttributeError:
                if name not in _OPTIONAL:
                    missing.append(name)
                setattr(self, name, _Missing(name, path))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)
        if missing:
            raise LibraryNotFoundError(
                f"{path} is not a TensorFlow Lite C library: it lacks {', '.join(missing)}"
            )

    def __getattr__(self, name: str) -> Any:  # for type checkers: attributes are set above
        raise AttributeError(name)


@dataclass(frozen=True)
class LoadedLibrary:
    """The library tflite-edge uses: where it is, why that one, and its declared API."""

    path: str
    source: str  # "TFLITE_EDGE_LIBRARY" or "tflite-edge-lib"
    api: CApi
    version: str
    vsnprintf: Callable[..., int] | None

    def format_message(self, fmt: bytes | None, va_list: int | None) -> str:
        """Render a printf-style TFLite error message (format + va_list) to text."""
        if fmt is None:
            return ""
        if self.vsnprintf is None or va_list is None:
            return fmt.decode("utf-8", "replace")
        buf = ctypes.create_string_buffer(4096)
        # A va_list can be consumed once only: one call, with a buffer large enough for
        # every message TFLite writes (its own reporters use 1 KiB or less).
        self.vsnprintf(buf, len(buf), fmt, va_list)
        return buf.value.decode("utf-8", "replace")


@dataclass(frozen=True)
class LibraryCandidate:
    """Where the library would be loaded from, without loading it (for ``doctor``)."""

    path: str | None
    source: str
    problem: str | None  # why it can't be used, or None


_lock = threading.Lock()
_loaded: LoadedLibrary | None = None


def _install_hint() -> str:
    return (
        "Install the binary for this machine with `pip install tflite-edge-lib` "
        "(pip builds it from source when no wheel matches the platform), "
        f"or point {ENV_VAR} at a libtensorflowlite_c shared library "
        "(for example one built with `edgeforge build`)."
    )


def find_library() -> LibraryCandidate:
    """Say which library would be used, and whether it exists, without loading it."""
    override = os.environ.get(ENV_VAR)
    if override is not None:
        if not override:
            return LibraryCandidate(None, ENV_VAR, f"{ENV_VAR} is set but empty")
        if not os.path.isfile(override):
            return LibraryCandidate(
                override, ENV_VAR, f"{ENV_VAR}={override}: no such file"
            )
        return LibraryCandidate(override, ENV_VAR, None)
    try:
        import tflite_edge_lib
    except ImportError:
        return LibraryCandidate(
            None, "tflite-edge-lib", "the tflite-edge-lib package is not installed"
        )
    try:
        path = os.fspath(tflite_edge_lib.library_path())
    except (FileNotFoundError, OSError) as exc:
        return LibraryCandidate(None, "tflite-edge-lib", str(exc))
    if not os.path.isfile(path):
        return LibraryCandidate(
            path, "tflite-edge-lib", f"tflite-edge-lib is installed but {path} is missing"
        )
    return LibraryCandidate(path, "tflite-edge-lib", None)


def _find_vsnprintf() -> Callable[..., int] | None:
    try:
        if sys.platform == "win32":
            libc = ctypes.cdll.msvcrt
            fn = libc._vsnprintf
        else:
            libc = ctypes.CDLL(None)
            fn = libc.vsnprintf
    except (OSError, AttributeError):
        return None
    fn.restype = c_int
    fn.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
    return fn


def _load(candidate: LibraryCandidate) -> LoadedLibrary:
    if candidate.problem is not None or candidate.path is None:
        raise LibraryNotFoundError(
            f"tflite-edge cannot find libtensorflowlite_c: {candidate.problem}. {_install_hint()}"
        )
    path = candidate.path
    try:
        cdll = ctypes.CDLL(os.path.abspath(path))
    except OSError as exc:
        raise LibraryNotFoundError(
            f"tflite-edge cannot load {path} (from {candidate.source}): {exc}. {_install_hint()}"
        ) from exc
    api = CApi(cdll, path)
    version = (api.TfLiteVersion() or b"").decode("ascii", "replace")
    return LoadedLibrary(
        path=os.path.abspath(path),
        source=candidate.source,
        api=api,
        version=version,
        vsnprintf=_find_vsnprintf(),
    )


def load_library() -> LoadedLibrary:
    """Load the library on first call and return the same handle afterwards."""
    global _loaded
    loaded = _loaded
    if loaded is not None:
        return loaded
    with _lock:
        if _loaded is None:
            _loaded = _load(find_library())
        return _loaded


def loaded_library() -> LoadedLibrary | None:
    """The library if it has been loaded already, else None (never loads it)."""
    return _loaded

