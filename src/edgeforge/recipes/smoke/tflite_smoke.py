"""Smoke test of a tflite-edge-lib wheel: the real runtime (tflite_edge) runs a real model.

Run by the target's Python (under qemu-user) and by the host's; edgeforge compares the JSON
this prints. The model comes from the recipe's smoke-only source (EDGEFORGE_SOURCE_MEDIAPIPE).
Inputs are a fixed pattern, so every machine computes the same thing.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import tflite_edge_lib
from tflite_edge import Interpreter
from tflite_edge.interpreter import OpResolverType

MODEL = "face_detection_short_range.tflite"


def pattern(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    n = int(np.prod(shape))
    values = (np.arange(n, dtype=np.int64) * 37 % 255).astype(np.float64) / 127.5 - 1.0
    return values.reshape(shape).astype(dtype)


def run(model: Path, resolver: OpResolverType) -> dict[str, object]:
    interpreter = Interpreter(model_path=str(model), num_threads=1,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], pattern(tuple(detail["shape"]), detail["dtype"]))
    interpreter.invoke()
    outputs = {}
    for detail in interpreter.get_output_details():
        out = interpreter.get_tensor(detail["index"]).astype(np.float64)
        outputs[detail["name"]] = {
            "shape": [int(d) for d in out.shape],
            "head": [float(v) for v in out.ravel()[:8]],
            "sum": float(out.sum()),
            "max": float(out.max()),
        }
    return outputs


def main() -> int:
    model = Path(os.environ["EDGEFORGE_SOURCE_MEDIAPIPE"]) / MODEL
    result = {
        "machine": platform.machine(),
        "library": Path(tflite_edge_lib.library_path()).name,
        "xnnpack": run(model, OpResolverType.AUTO),
        "reference_kernels": run(model, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES),
    }
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
