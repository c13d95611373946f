"""tflite-edge: TensorFlow Lite for edge devices, a drop-in for ``tflite_runtime``.

``from tflite_edge import Interpreter, load_delegate`` or
``import tflite_edge.interpreter as tflite``. The native library (libtensorflowlite_c)
comes from the ``tflite-edge-lib`` wheel for this machine, or from ``TFLITE_EDGE_LIBRARY``.
``python -m tflite_edge doctor`` says which one is used and why.
"""

from __future__ import annotations

from ._library import ENV_VAR, LibraryNotFoundError
from .delegates import Delegate, DelegateLoadError, DelegatePlugin
from .interpreter import Interpreter, OpResolverType, SignatureRunner, load_delegate

__version__ = "2.14.1"

__all__ = [
    "ENV_VAR",
    "Delegate",
    "DelegateLoadError",
    "DelegatePlugin",
    "Interpreter",
    "LibraryNotFoundError",
    "OpResolverType",
    "SignatureRunner",
    "__version__",
    "load_delegate",
]
