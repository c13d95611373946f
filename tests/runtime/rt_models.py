"""Models the runtime tests generate themselves, each with a numpy reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from tflite_writer import (
    OP_ADD,
    OP_CAST,
    OP_CONV_2D,
    OP_FULLY_CONNECTED,
    OPTIONS_CONV_2D,
    OPTIONS_FULLY_CONNECTED,
    PADDING_VALID,
    Model,
    Op,
    Table,
    Tensor,
)

# numpy dtypes the dtype model round-trips through CAST, with test values for each.
DTYPES: dict[str, Any] = {
    "float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8,
    "int16": np.int16, "int32": np.int32, "int64": np.int64, "bool": np.bool_,
}


@dataclass(frozen=True)
class Int8Params:
    in_scale: float = 0.05
    in_zp: int = -3
    conv_out_scale: float = 0.11
    conv_out_zp: int = 5
    fc_out_scale: float = 0.23
    fc_out_zp: int = -7


def int8_model(seed: int = 7, p: Int8Params = Int8Params()) -> tuple[bytes, dict[str, Any]]:
    """x int8 [1,2,2,3] -> CONV_2D 1x1 (per-channel int8, 4 filters) -> c int8 [1,2,2,4]
    -> FULLY_CONNECTED (per-tensor int8, 5 units) -> y int8 [4,5]. Outputs: c and y.

    Returns the model bytes and its constants (for :func:`int8_reference`)."""
    rng = np.random.default_rng(seed)
    w_conv = rng.integers(-127, 128, size=(4, 1, 1, 3), dtype=np.int8)
    conv_scales = tuple(float(np.float32(s)) for s in (0.02, 0.031, 0.017, 0.044))
    b_conv = rng.integers(-300, 300, size=4).astype(np.int32)
    w_fc = rng.integers(-127, 128, size=(5, 4), dtype=np.int8)
    fc_scale = 0.013
    b_fc = rng.integers(-500, 500, size=5).astype(np.int32)
    f32 = np.float32
    tensors = [
        Tensor("x", np.int8, (1, 2, 2, 3), scales=(p.in_scale,), zero_points=(p.in_zp,)),
        Tensor("conv_w", np.int8, (4, 1, 1, 3), data=w_conv, scales=conv_scales,
               zero_points=(0, 0, 0, 0), quantized_dimension=0),
        Tensor("conv_b", np.int32, (4,), data=b_conv,
               scales=tuple(float(f32(p.in_scale) * f32(s)) for s in conv_scales),
               zero_points=(0, 0, 0, 0)),
        Tensor("c", np.int8, (1, 2, 2, 4), scales=(p.conv_out_scale,),
               zero_points=(p.conv_out_zp,)),
        Tensor("fc_w", np.int8, (5, 4), data=w_fc, scales=(fc_scale,), zero_points=(0,)),
        Tensor("fc_b", np.int32, (5,), data=b_fc,
               scales=(float(f32(p.conv_out_scale) * f32(fc_scale)),), zero_points=(0,)),
        Tensor("y", np.int8, (4, 5), scales=(p.fc_out_scale,), zero_points=(p.fc_out_zp,)),
    ]
    conv_options = (Table().set(0, "b", PADDING_VALID).set(1, "i", 1).set(2, "i", 1)
                    .set(4, "i", 1).set(5, "i", 1))
    ops = [
        Op(OP_CONV_2D, [0, 1, 2], [3], OPTIONS_CONV_2D, conv_options, version=3),
        Op(OP_FULLY_CONNECTED, [3, 4, 5], [6], OPTIONS_FULLY_CONNECTED, Table(), version=4),
    ]
    model = Model(tensors, ops, inputs=[0], outputs=[3, 6], signature_key="serving_default")
    consts = {"w_conv": w_conv, "conv_scales": conv_scales, "b_conv": b_conv,
              "w_fc": w_fc, "fc_scale": fc_scale, "b_fc": b_fc, "params": p}
    return model.to_bytes(), consts


def _requantize(acc: np.ndarray[Any, Any], real_scale: Any, out_scale: float,
                out_zp: int) -> np.ndarray[Any, Any]:
    q = np.round(acc.astype(np.float64) * real_scale / out_scale) + out_zp
    return np.clip(q, -128, 127).astype(np.int8)


def int8_reference(x: np.ndarray[Any, Any], consts: dict[str, Any]) -> dict[str, Any]:
    """The int8 model computed with numpy in float64 (TFLite's fixed-point rescaling may
    round differently by at most 1 in the last place)."""
    p: Int8Params = consts["params"]
    xi = x.astype(np.int64) - p.in_zp
    w = consts["w_conv"][:, 0, 0, :].astype(np.int64)
    acc = xi @ w.T + consts["b_conv"]
    real = np.float32(p.in_scale) * np.array(consts["conv_scales"], dtype=np.float32)
    c = _requantize(acc, real.astype(np.float64), p.conv_out_scale, p.conv_out_zp)
    ci = c.reshape(4, 4).astype(np.int64) - p.conv_out_zp
    acc2 = ci @ consts["w_fc"].astype(np.int64).T + consts["b_fc"]
    real2 = float(np.float32(p.conv_out_scale) * np.float32(consts["fc_scale"]))
    y = _requantize(acc2, real2, p.fc_out_scale, p.fc_out_zp)
    return {"c": c, "y": y}


def dtypes_model() -> bytes:
    """For every dtype T in DTYPES: input in_T -> CAST -> f32_T (float32) -> CAST -> out_T.

    Exercises set_tensor/get_tensor/tensor() on each type and CAST's exact conversions."""
    tensors: list[Tensor] = []
    ops: list[Op] = []
    inputs: list[int] = []
    outputs: list[int] = []
    for name, dt in DTYPES.items():
        base = len(tensors)
        tensors += [Tensor(f"in_{name}", dt, (2, 3)), Tensor(f"f32_{name}", np.float32, (2, 3)),
                    Tensor(f"out_{name}", dt, (2, 3))]
        ops += [Op(OP_CAST, [base], [base + 1]), Op(OP_CAST, [base + 1], [base + 2])]
        inputs.append(base)
        outputs += [base + 1, base + 2]
    return Model(tensors, ops, inputs, outputs).to_bytes()


def dtype_values(dt: Any, seed: int = 0) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(seed)
    if dt is np.bool_:
        return rng.integers(0, 2, size=(2, 3)).astype(np.bool_)
    if np.issubdtype(dt, np.floating):
        return (rng.integers(-1000, 1000, size=(2, 3)) / 8).astype(dt)  # exact in f16
    info = np.iinfo(dt)
    lo, hi = max(info.min, -30000), min(info.max, 30000)
    return rng.integers(lo, hi, size=(2, 3), endpoint=True).astype(dt)


def add_model(n: int = 4, dynamic: bool = False) -> bytes:
    """y = x + x for float32 x of shape [1, n] (a tiny model for per-invoke overhead);
    ``dynamic`` makes the batch dimension -1 in the shape signature."""
    sig = (-1, n) if dynamic else None
    tensors = [Tensor("x", np.float32, (1, n), shape_signature=sig),
               Tensor("y", np.float32, (1, n), shape_signature=sig)]
    ops = [Op(OP_ADD, [0, 0], [1], 11, Table())]
    return Model(tensors, ops, [0], [1], signature_key="add").to_bytes()


def cast_chain_model(n: int = 1 << 22) -> bytes:
    """bool [n] -> CAST float32 -> CAST int32 -> CAST uint8 -> CAST float32: plain elementwise
    loops over large tensors, which no delegate takes (a benchmark of TFLite's own CAST
    kernel, the op of the fuzz corpus's slow 1 GB case)."""
    chain = [("x", np.bool_), ("f", np.float32), ("i", np.int32), ("u", np.uint8),
             ("y", np.float32)]
    tensors = [Tensor(name, dt, (n,)) for name, dt in chain]
    ops = [Op(OP_CAST, [i], [i + 1]) for i in range(len(chain) - 1)]
    return Model(tensors, ops, [0], [len(chain) - 1]).to_bytes()


@dataclass(frozen=True)
class Elementwise:
    """One elementwise op over [n]-element tensors, without options (the op's defaults), and
    its numpy reference."""
    opcode: int  # a BuiltinOperator of schema.fbs
    inputs: tuple[Any, ...]
    output: Any
    reference: Callable[..., Any]

    def model(self, n: int = 1 << 22) -> bytes:
        tensors = [Tensor(f"x{i}", dt, (n,)) for i, dt in enumerate(self.inputs)]
        tensors.append(Tensor("y", self.output, (n,)))
        k = len(self.inputs)
        return Model(tensors, [Op(self.opcode, list(range(k)), [k])], list(range(k)),
                     [k]).to_bytes()


_I32, _F32, _BOOL = np.int32, np.float32, np.bool_
#: Integer, bool and float elementwise ops that TFLite's own kernels run (XNNPACK takes no
#: integer or bool op), for bench/bench_runtime.py and their test against numpy.
ELEMENTWISE: dict[str, Elementwise] = {
    "add_i32": Elementwise(OP_ADD, (_I32, _I32), _I32, np.add),
    "sub_i32": Elementwise(41, (_I32, _I32), _I32, np.subtract),
    "mul_i32": Elementwise(18, (_I32, _I32), _I32, np.multiply),
    "div_f32": Elementwise(42, (_F32, _F32), _F32, np.divide),
    "maximum_i32": Elementwise(55, (_I32, _I32), _I32, np.maximum),
    "less_i32": Elementwise(58, (_I32, _I32), _BOOL, np.less),
    "equal_i32": Elementwise(71, (_I32, _I32), _BOOL, np.equal),
    "neg_i32": Elementwise(59, (_I32,), _I32, np.negative),
    "abs_i32": Elementwise(101, (_I32,), _I32, np.abs),
    "select_i32": Elementwise(64, (_BOOL, _I32, _I32), _I32, np.where),
    "logical_and": Elementwise(86, (_BOOL, _BOOL), _BOOL, np.logical_and),
    "squared_difference_i32": Elementwise(99, (_I32, _I32), _I32,
                                          lambda a, b: np.square(a - b)),
}

#: Models a benchmark can name beside mediapipe's (bench/bench_runtime.py --models): TFLite's
#: own elementwise kernels on 4M-element tensors.
SYNTHETIC_MODELS: dict[str, Callable[[], bytes]] = {
    "cast_chain_4m": cast_chain_model,
    **{f"{name}_4m": op.model for name, op in ELEMENTWISE.items()},
}
