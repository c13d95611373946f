"""The crash classes the fuzz test found in TFLite's kernels and XNNPACK, each on a small
model written here (tflite_writer), run in a subprocess (a crash is a failed test, not a
dead pytest) by tflite-edge and, for comparison, by tflite-runtime 2.14.0.

- Convolution options TFLite's kernels use unchecked (tflite_edge._model_checks): a padding
  neither SAME nor VALID (CONV_2D: SIGSEGV through the null data of its size-0 output) and
  a stride or dilation outside [1, 32767] (narrowed into int16 params; DEPTHWISE_CONV_2D's
  stride 65,536 becomes 0: SIGFPE). tflite-edge refuses them in allocate_tensors().
- Quantized ADD/SUB/SQUARED_DIFFERENCE whose scales give a rescaling multiplier outside
  (0, 1), e.g. a uint8 tensor without quantization (TFLITE_CHECK: SIGABRT; found with
  another fuzz seed): refused in allocate_tensors() too.
- XNNPACK's workspace that cannot be allocated (patches/xnnpack-setup-runtime-memory-status.patch):
  xnn_setup_runtime ignored the failure and ran its kernels on NULL + offset (SIGSEGV);
  patched, invoke() raises RuntimeError.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rt_support
from tflite_writer import Model, Op, Table, Tensor

OP_ADD, OP_CONV_2D, OP_DEPTHWISE_CONV_2D, OP_PAD, OP_MEAN = 0, 3, 4, 34, 40
OPTIONS_CONV_2D, OPTIONS_DEPTHWISE, OPTIONS_ADD, OPTIONS_PAD, OPTIONS_REDUCER = 1, 2, 11, 22, 27
F32 = np.float32

# Loads each model, allocates, feeds zeros (ones for the XNNPACK case), invokes; one JSON
# line per model: the stage it reached and the exception. A limit argument caps RLIMIT_AS
# at VmSize + that many bytes after allocation (before the first invoke).
RUN = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "tflite_edge":
    from tflite_edge.interpreter import Interpreter, OpResolverType
else:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
resolver = OpResolverType[sys.argv[2]]
extra = int(sys.argv[3])
for path in sys.argv[4:]:
    print(json.dumps({"model": path, "stage": "start"}), flush=True)
    stage = "allocate"
    try:
        it = Interpreter(model_path=path, num_threads=1, experimental_op_resolver_type=resolver)
        it.allocate_tensors()
        if extra:
            vm = next(int(l.split()[1]) for l in open("/proc/self/status")
                      if l.startswith("VmSize:")) * 1024
            resource.setrlimit(resource.RLIMIT_AS, (vm + extra, vm + extra))
        stage = "invoke"
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.ones(d["shape"], d["dtype"]))
        it.invoke()
        out = it.get_tensor(it.get_output_details()[0]["index"])
        result = {"stage": "ran", "output": out.ravel()[:4].tolist()}
    except Exception as exc:
        result = {"stage": stage, "error": type(exc).__name__, "message": str(exc)}
    print(json.dumps({"model": path, **result}), flush=True)
"""


def _conv(padding: int = 1, stride: tuple[int, int] = (1, 1),
          dilation: tuple[int, int] = (1, 1), depthwise: bool = False,
          options: bool = True) -> bytes:
    """x [1,8,8,4] -> CONV_2D (1x1, 3 filters) or DEPTHWISE_CONV_2D (3x3) -> y, with the
    given options (schema.fbs Conv2DOptions / DepthwiseConv2DOptions)."""
    rng = np.random.default_rng(3)
    if depthwise:
        w = rng.standard_normal((1, 3, 3, 4)).astype(F32)
        opts = (Table().set(0, "b", padding).set(1, "i", stride[0]).set(2, "i", stride[1])
                .set(3, "i", 1).set(5, "i", dilation[0]).set(6, "i", dilation[1]))
        code, options_type, out_c = OP_DEPTHWISE_CONV_2D, OPTIONS_DEPTHWISE, 4
    else:
        w = rng.standard_normal((3, 1, 1, 4)).astype(F32)
        opts = (Table().set(0, "b", padding).set(1, "i", stride[0]).set(2, "i", stride[1])
                .set(4, "i", dilation[0]).set(5, "i", dilation[1]))
        code, options_type, out_c = OP_CONV_2D, OPTIONS_CONV_2D, 3
    tensors = [Tensor("x", F32, (1, 8, 8, 4)), Tensor("w", F32, w.shape, data=w),
               Tensor("b", F32, (out_c,), data=np.zeros(out_c, F32)),
               Tensor("y", F32, (1, 8, 8, out_c))]
    op = Op(code, [0, 1, 2], [3], options_type, opts if options else None)
    return Model(tensors, [op], [0], [3]).to_bytes()


def _add_uint8(quantized: bool) -> bytes:
    """y = x + x on uint8 [1,2,2,4], with scale 0.5 or without quantization (scale 0)."""
    q: dict[str, Any] = {"scales": (0.5,), "zero_points": (0,)} if quantized else {}
    tensors = [Tensor("x", np.uint8, (1, 2, 2, 4), **q), Tensor("y", np.uint8, (1, 2, 2, 4), **q)]
    return Model(tensors, [Op(OP_ADD, [0, 0], [1], OPTIONS_ADD, Table())], [0], [1]).to_bytes()


def _pad_mean(rows: int = 1 << 18, channels: int = 256) -> bytes:
    """x [1,8,8,C] -> PAD to [1,rows,8,C] -> MEAN over H,W -> y [1,1,1,C]: both delegated
    to XNNPACK, the padded tensor (2 GiB) lives in XNNPACK's workspace only."""
    tensors = [Tensor("x", F32, (1, 8, 8, channels)),
               Tensor("paddings", np.int32, (4, 2),
                      data=np.array([[0, 0], [0, rows - 8], [0, 0], [0, 0]], np.int32)),
               Tensor("padded", F32, (1, rows, 8, channels)),
               Tensor("axes", np.int32, (2,), data=np.array([1, 2], np.int32)),
               Tensor("y", F32, (1, 1, 1, channels))]
    ops = [Op(OP_PAD, [0, 1], [2], OPTIONS_PAD, Table()),
           Op(OP_MEAN, [2, 3], [4], OPTIONS_REDUCER, Table().set(0, "B", 1))]  # keep_dims
    return Model(tensors, ops, [0], [4]).to_bytes()


CONV_MODELS = {
    "conv_ok": _conv(),
    "depthwise_ok": _conv(depthwise=True),
    "conv_padding_-1": _conv(padding=-1),
    "conv_no_options": _conv(options=False),
    "conv_dilation_-1": _conv(dilation=(1, -1)),
    "depthwise_stride_65536": _conv(stride=(65536, 1), depthwise=True),
    "depthwise_padding_5": _conv(padding=5, depthwise=True),
    "add_uint8_ok": _add_uint8(quantized=True),
    "add_uint8_unquantized": _add_uint8(quantized=False),
}
CONV_REFUSED = {
    "conv_padding_-1": "(CONV_2D): padding -1 is neither SAME nor VALID",
    "conv_no_options": "(CONV_2D): no options of its type",
    "conv_dilation_-1": "(CONV_2D): dilation_h_factor -1 is outside [1, 32767]",
    "depthwise_stride_65536": "(DEPTHWISE_CONV_2D): stride_w 65536 is outside [1, 32767]",
    "depthwise_padding_5": "(DEPTHWISE_CONV_2D): padding 5 is neither SAME nor VALID",
    "add_uint8_unquantized": "(ADD): quantized tensor 0 has scale 0.0, not a positive number",
}


def _run(python: str | Path, runtime: str, models: dict[str, bytes], work: Path,
         resolver: str = "AUTO", extra: int = 0, library: str | None = None
         ) -> tuple[dict[str, dict[str, Any]], int]:
    """name -> what RUN printed for it (stage "start" only: the process died there), and
    the process's return code."""
    paths = {}
    for name, data in models.items():
        paths[name] = work / f"{name}.tflite"
        paths[name].write_bytes(data)
    env = rt_support.runtime_env(library) if library else None
    proc = subprocess.run([str(python), "-c", RUN, runtime, resolver, str(extra),
                           *map(str, paths.values())], capture_output=True, text=True,
                          env=env, timeout=300)
    by_path = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            by_path[record["model"]] = record
    out = {name: by_path.get(str(p), {"stage": "not reached"}) for name, p in paths.items()}
    return out, proc.returncode


def test_bad_kernel_params_are_refused(library: str, tmp_path: Path) -> None:
    """Each bad option or scale raises RuntimeError in allocate_tensors() naming the node
    and what is wrong; the same models with valid ones run, with XNNPACK and with TFLite's
    own kernels."""
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        results, code = _run(sys.executable, "tflite_edge", CONV_MODELS, tmp_path, resolver,
                             library=library)
        assert code == 0, (resolver, code, results)
        for name, result in results.items():
            if name in CONV_REFUSED:
                assert result["stage"] == "allocate", (resolver, name, result)
                assert result["error"] == "RuntimeError", (resolver, name, result)
                assert f"subgraph 0 node 0 {CONV_REFUSED[name]}" in result["message"], result
            else:
                assert result["stage"] == "ran", (resolver, name, result)


def test_bad_kernel_params_crash_tflite_runtime(reference_python: Path,
                                               tmp_path: Path) -> None:
    """What tflite-runtime 2.14.0 makes of the same models, one process per model: its
    CONV_2D kernel dies on padding -1 (SIGSEGV), without XNNPACK its DEPTHWISE_CONV_2D
    kernel on stride 65,536 (SIGFPE; XNNPACK takes the depthwise node and runs it), its
    quantized ADD on a uint8 tensor without quantization (SIGABRT). The other convolutions
    run, the kernels reading their bad options as they are (docs/runtime.md)."""
    outcome = {}
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        for name in CONV_REFUSED:
            results, code = _run(reference_python, "tflite_runtime",
                                 {name: CONV_MODELS[name]}, tmp_path, resolver)
            outcome[resolver, name] = -code if code < 0 else results[name]["stage"]
    assert outcome["AUTO", "conv_padding_-1"] == 11, outcome  # SIGSEGV
    assert outcome["BUILTIN_WITHOUT_DEFAULT_DELEGATES", "conv_padding_-1"] == 11, outcome
    assert outcome["BUILTIN_WITHOUT_DEFAULT_DELEGATES", "depthwise_stride_65536"] == 8, \
        outcome  # SIGFPE
    assert outcome["AUTO", "depthwise_stride_65536"] == "ran", outcome
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):  # TFLITE_CHECK: abort()
        assert outcome[resolver, "add_uint8_unquantized"] == 6, outcome  # SIGABRT
    for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
        for name in ("conv_no_options", "conv_dilation_-1", "depthwise_padding_5"):
            assert outcome[resolver, name] == "ran", outcome


def test_xnnpack_workspace_that_cannot_be_allocated_is_runtime_error(
        library: str, tmp_path: Path) -> None:
    """With 1 GiB of address space left, XNNPACK's 2 GiB workspace cannot be allocated at
    the first invoke(): RuntimeError from the XNNPACK delegate (unpatched XNNPACK ran its
    kernels into NULL + offset: SIGSEGV). With no limit the same model runs."""
    models = {"pad_mean": _pad_mean()}
    limited, code = _run(sys.executable, "tflite_edge", models, tmp_path, extra=1 << 30,
                         library=library)
    assert code == 0, (code, limited)
    result = limited["pad_mean"]
    assert result["stage"] == "invoke" and result["error"] == "RuntimeError", result
    assert "failed to setup XNNPACK runtime" in result["message"], result
    free, code = _run(sys.executable, "tflite_edge", models, tmp_path, library=library)
    assert code == 0 and free["pad_mean"]["stage"] == "ran", free
    assert free["pad_mean"]["output"] == pytest.approx([64 / (1 << 21)] * 4), free


def test_xnnpack_workspace_tflite_runtime(reference_python: Path, tmp_path: Path) -> None:
    """tflite-runtime 2.14.0 (its own, older XNNPACK) runs the same model within the same
    limit: the clean RuntimeError is where tflite-edge differs (docs/runtime.md)."""
    results, code = _run(reference_python, "tflite_runtime", {"pad_mean": _pad_mean()},
                         tmp_path, extra=1 << 30)
    assert code == 0, (code, results)
    assert results["pad_mean"]["stage"] == "ran", results
