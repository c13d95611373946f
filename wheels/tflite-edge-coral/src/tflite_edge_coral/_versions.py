"""The TensorFlow-version rule: libedgetpu runs only with the runtime it was built for.

libedgetpu compiles parts of TensorFlow Lite into itself (its custom op, the delegate
interface, ``TfLiteContext``'s layout). Loaded next to a runtime of another TensorFlow
version it fails to load, fails in ``edgetpu-custom-op`` at run time, or crashes: Coral's most
reported problem. The rule checked here: the same TensorFlow major.minor version. Patch
releases keep those structures, so ``2.14.0`` and ``2.14.1`` match.
"""

from __future__ import annotations

import re

ALLOW_MISMATCH_ENV = "TFLITE_EDGE_CORAL_ALLOW_TF_MISMATCH"

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def major_minor(version: str) -> tuple[int, int]:
    """``"2.14.1"`` -> ``(2, 14)``; ``"2.15.0-rc1"`` -> ``(2, 15)``."""
    m = _VERSION.match(version)
    if m is None:
        raise ValueError(f"not a TensorFlow version: {version!r}")
    return int(m.group(1)), int(m.group(2))


def versions_match(libedgetpu_tf: str, runtime_tf: str) -> bool:
    """True when libedgetpu built for ``libedgetpu_tf`` may run with ``runtime_tf``."""
    return major_minor(libedgetpu_tf) == major_minor(runtime_tf)


def mismatch_message(libedgetpu_tf: str, runtime_tf: str, library: str, runtime: str) -> str:
    """The refusal: both versions, why, and the ways out."""
    a, b = major_minor(libedgetpu_tf), major_minor(runtime_tf)
    return (
        f"TensorFlow version mismatch: libedgetpu ({library}) was built for TensorFlow "
        f"{libedgetpu_tf}, but the TensorFlow Lite runtime ({runtime}) is TensorFlow "
        f"{runtime_tf}.\n"
        "libedgetpu only works with the TensorFlow version it was compiled against; with "
        "another one the delegate fails to load, the edgetpu-custom-op fails, or the process "
        "crashes. Either:\n"
        f"  - install a tflite-edge-coral-lib built for TensorFlow {b[0]}.{b[1]}: "
        "`edgeforge build libedgetpu-source` compiles libedgetpu against the TensorFlow "
        "source edgeforge builds the runtime from (docs/coral.md, 'Building libedgetpu from "
        "source'), or\n"
        f"  - use a tflite-edge runtime of TensorFlow {a[0]}.{a[1]}.\n"
        f"To load it anyway (at your own risk), set {ALLOW_MISMATCH_ENV}=1."
    )
