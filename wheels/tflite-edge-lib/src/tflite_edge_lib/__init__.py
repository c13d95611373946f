"""tflite-edge-lib: the TensorFlow Lite C library (libtensorflowlite_c) for one platform.

This distribution carries only binaries, one ``py3-none-<platform>`` wheel per target:
``lib/`` holds the shared library (and ``include/`` its C API headers), put there by
edgeforge's build pipeline. ``tflite-edge`` (``import tflite_edge``) loads the
library through :func:`library_path`; nothing here needs a particular CPython ABI.
"""

from __future__ import annotations

import sys
from pathlib import Path

__version__ = "2.14.1"

_HERE = Path(__file__).resolve().parent

if sys.platform == "win32":
    LIBRARY_NAMES = ("tensorflowlite_c.dll", "libtensorflowlite_c.dll")
elif sys.platform == "darwin":
    LIBRARY_NAMES = ("libtensorflowlite_c.dylib", "libtensorflowlite_c.so")
else:
    LIBRARY_NAMES = ("libtensorflowlite_c.so",)


def library_dir() -> Path:
    return _HERE / "lib"


def library_path() -> Path:
    """The bundled ``libtensorflowlite_c`` (``tflite_edge_lib/lib/libtensorflowlite_c.so``
    on Linux). Raises FileNotFoundError when this installation carries none (a source
    checkout, or a broken install)."""
    for name in LIBRARY_NAMES:
        path = library_dir() / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"tflite-edge-lib {__version__} has no {LIBRARY_NAMES[0]} in {library_dir()}: "
        "this installation carries no library (reinstall with `pip install --force-reinstall "
        "tflite-edge-lib`, or set TFLITE_EDGE_LIBRARY)"
    )


__all__ = ["__version__", "library_dir", "library_path"]
