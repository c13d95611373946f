"""TfLiteType (tensorflow/lite/core/c/c_api_types.h) <-> numpy, as tflite_runtime maps them."""

from __future__ import annotations

from typing import Any

import numpy as np

NO_TYPE = 0
FLOAT32 = 1
INT32 = 2
UINT8 = 3
INT64 = 4
STRING = 5
BOOL = 6
INT16 = 7
COMPLEX64 = 8
INT8 = 9
FLOAT16 = 10
FLOAT64 = 11
COMPLEX128 = 12
UINT64 = 13
RESOURCE = 14
VARIANT = 15
UINT32 = 16
UINT16 = 17
INT4 = 18

#: TfLiteTypeGetName's spelling, used in messages exactly as tflite_runtime prints them.
TYPE_NAMES = {
    NO_TYPE: "NOTYPE",
    FLOAT32: "FLOAT32",
    INT32: "INT32",
    UINT8: "UINT8",
    INT64: "INT64",
    STRING: "STRING",
    BOOL: "BOOL",
    INT16: "INT16",
    COMPLEX64: "COMPLEX64",
    INT8: "INT8",
    FLOAT16: "FLOAT16",
    FLOAT64: "FLOAT64",
    COMPLEX128: "COMPLEX128",
    UINT64: "UINT64",
    RESOURCE: "RESOURCE",
    VARIANT: "VARIANT",
    UINT32: "UINT32",
    UINT16: "UINT16",
    INT4: "INT4",
}

#: The numpy scalar type for each TfLiteType (tflite_runtime reports these type objects,
#: e.g. ``numpy.float32``, as a tensor's ``dtype``). INT4 is stored one value per byte.
NUMPY_TYPES: dict[int, type[Any]] = {
    FLOAT32: np.float32,
    INT32: np.int32,
    UINT8: np.uint8,
    INT64: np.int64,
    STRING: np.bytes_,
    BOOL: np.bool_,
    INT16: np.int16,
    COMPLEX64: np.complex64,
    INT8: np.int8,
    FLOAT16: np.float16,
    FLOAT64: np.float64,
    COMPLEX128: np.complex128,
    UINT64: np.uint64,
    RESOURCE: np.object_,
    VARIANT: np.object_,
    UINT32: np.uint32,
    UINT16: np.uint16,
    INT4: np.int8,
}

#: Bytes per element of the fixed-size types.
ITEMSIZE = {t: np.dtype(n).itemsize for t, n in NUMPY_TYPES.items() if n is not np.object_}

#: Types whose bytes are plain fixed-size numbers numpy can view in place.
FIXED_SIZE = frozenset(NUMPY_TYPES) - {STRING, RESOURCE, VARIANT}

# (numpy kind, itemsize) -> TfLiteType: cheaper to look up than dtype objects.
_FROM_KIND: dict[tuple[str, int], int] = {
    ("f", 4): FLOAT32, ("f", 2): FLOAT16, ("f", 8): FLOAT64,
    ("i", 1): INT8, ("i", 2): INT16, ("i", 4): INT32, ("i", 8): INT64,
    ("u", 1): UINT8, ("u", 2): UINT16, ("u", 4): UINT32, ("u", 8): UINT64,
    ("b", 1): BOOL, ("c", 8): COMPLEX64, ("c", 16): COMPLEX128,
}


def type_from_numpy(dtype: np.dtype[Any]) -> int:
    """The TfLiteType a numpy array of this dtype would be (NO_TYPE when none fits)."""
    if dtype.kind in "OSU":
        return STRING
    return _FROM_KIND.get((dtype.kind, dtype.itemsize), NO_TYPE)


def type_name(tflite_type: int) -> str:
    return TYPE_NAMES.get(tflite_type, f"type {tflite_type}")
