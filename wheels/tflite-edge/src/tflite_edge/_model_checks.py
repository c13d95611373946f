"""Operator options TFLite 2.14's kernels use without checking, read from the model.

TFLite's flatbuffer parser copies a convolution's options into the kernel's params as they
are (an options table of another type, or none, leaves them zero), and the kernels' Prepare
checks few of them: CONV_2D checks neither padding, strides nor dilations, DEPTHWISE_CONV_2D
only that dilations are positive, TRANSPOSE_CONV only that strides are positive. Eval then
narrows strides and dilations into the int16 fields of ConvParams/DepthwiseParams
(kernels/internal/types.h), so 65,536 becomes 0, and an unknown padding gives an output of
size 0 that the kernels still write (SIGSEGV through a null data pointer, SIGFPE dividing
by a stride that narrowed to 0; both found by the fuzz test). The XNNPACK delegate refuses
such nodes, so TFLite's own kernels get them. What every converter writes: padding SAME or
VALID, strides and dilations in [1, 32767].

The quantized ADD, SUB and SQUARED_DIFFERENCE kernels rescale their inputs and output by
multipliers derived from the tensors' scales and abort the process (TFLITE_CHECK in
QuantizeMultiplierSmallerThanOneExp) unless each lies in (0, 1): a scale of 0 (a uint8/int8
tensor without quantization), negative or not finite makes one NaN or out of range (found by
the fuzz test: an ADD whose float input became uint8).

:func:`kernel_params_problem` says which operator breaks either, and
``Interpreter.allocate_tensors()`` raises RuntimeError with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import _builtin_ops
from ._flatbuffer import ModelFormatError, ModelReader, _Table

_OP_BUILTIN_OPTIONS_TYPE, _OP_BUILTIN_OPTIONS = 3, 4  # Operator fields (schema.fbs)
_PADDINGS = {0: "SAME", 1: "VALID"}  # schema.fbs: enum Padding : byte
_INT16_MAX = 32767  # the strides/dilations of ConvParams and DepthwiseParams are int16


@dataclass(frozen=True)
class _ConvOptions:
    """Where an operator's options table keeps what its kernel divides and indexes by:
    schema.fbs field ids with their defaults."""

    options_type: int  # the BuiltinOptions union member TFLite's parser accepts
    padding: int  # field id of `padding`
    ints: tuple[tuple[str, int, int], ...]  # (name, field id, default) of strides/dilations
    limit: int  # the largest value the kernel's params hold


_CONV_2D_OPTIONS = _ConvOptions(1, 0, (("stride_w", 1, 0), ("stride_h", 2, 0),
                                       ("dilation_w_factor", 4, 1),
                                       ("dilation_h_factor", 5, 1)), _INT16_MAX)
_CONV_3D_OPTIONS = _ConvOptions(106, 0, (("stride_d", 1, 0), ("stride_w", 2, 0),
                                         ("stride_h", 3, 0), ("dilation_d_factor", 5, 1),
                                         ("dilation_w_factor", 6, 1),
                                         ("dilation_h_factor", 7, 1)), 2**31 - 1)

# BuiltinOperator code -> its options (TFLite 2.14's schema.fbs).
_CONV_OPTIONS: dict[int, _ConvOptions] = {
    3: _CONV_2D_OPTIONS,  # CONV_2D
    4: _ConvOptions(2, 0, (("stride_w", 1, 0), ("stride_h", 2, 0),  # DEPTHWISE_CONV_2D
                           ("dilation_w_factor", 5, 1), ("dilation_h_factor", 6, 1)),
                    _INT16_MAX),
    67: _ConvOptions(49, 0, (("stride_w", 1, 0), ("stride_h", 2, 0)),  # TRANSPOSE_CONV
                     _INT16_MAX),
    132: _CONV_3D_OPTIONS,  # CONV_3D
    141: _CONV_3D_OPTIONS,  # CONV_3D_TRANSPOSE
}


def kernel_params_problem(reader: ModelReader) -> str | None:
    """Why an operator of the model would crash TFLite's kernel (see the module's
    docstring): a convolution whose padding is neither SAME nor VALID or whose stride or
    dilation is outside [1, what the kernel's params hold], or a quantized ADD, SUB or
    SQUARED_DIFFERENCE whose scales give a multiplier outside (0, 1); None if no operator
    does that (or the model cannot be read: TFLite reports that itself)."""
    try:
        for sg, subgraph in enumerate(reader._subgraph_tables()):
            ops = subgraph.tables(3) or []  # SubGraph.operators
            for node, (code, inputs, outputs) in enumerate(reader.operators(sg)):
                spec = _CONV_OPTIONS.get(code)
                why = None
                if spec is not None and node < len(ops):
                    why = _conv_problem(ops[node], spec)
                elif code in _RESCALING_SHIFT:
                    why = _rescale_problem(reader, sg, code, inputs, outputs)
                if why:
                    name = _builtin_ops.BUILTIN_OPERATOR_NAMES[code]
                    return f"subgraph {sg} node {node} ({name}): {why}"
    except (ModelFormatError, IndexError):
        return None
    return None


def _conv_problem(op: _Table, spec: _ConvOptions) -> str | None:
    options = None
    if op.scalar(_OP_BUILTIN_OPTIONS_TYPE, "B", 0) == spec.options_type:
        options = op.table(_OP_BUILTIN_OPTIONS)
    if options is None:  # TFLite's parser leaves every parameter 0
        return "no options of its type (padding, strides), which its kernel needs"
    padding = options.scalar(spec.padding, "b", 0)
    if padding not in _PADDINGS:
        return f"padding {padding} is neither SAME nor VALID (its kernel computes no output size)"
    for name, field_id, default in spec.ints:
        value = options.scalar(field_id, "i", default)
        if not 1 <= value <= spec.limit:
            return (f"{name} {value} is outside [1, {spec.limit}], the values its kernel "
                    "divides by and indexes with")
    return None


# Quantized kernels that rescale by multipliers from the scales (TFLite 2.14 add.cc, sub.cc,
# squared_difference.cc): code -> (left_shift for 8-bit, for int16; None: unsupported).
_RESCALING_SHIFT: dict[int, tuple[int, int | None]] = {
    0: (20, 15),  # ADD
    41: (20, 15),  # SUB
    99: (7, None),  # SQUARED_DIFFERENCE (int8 only): the output multiplier is squared
}
_QUANTIZED_TYPES = {3: 8, 9: 8, 7: 16}  # schema TensorType UINT8, INT8, INT16 -> bits


def _rescale_problem(reader: ModelReader, sg: int, code: int, inputs: tuple[int, ...],
                     outputs: tuple[int, ...]) -> str | None:
    n = reader.num_tensors(sg)
    if len(inputs) < 2 or not outputs or any(not 0 <= t < n for t in (*inputs[:2], outputs[0])):
        return None  # TFLite refuses it (or _missing_tensor does)
    tables = reader._tensor_tables(sg)
    dtype = tables[inputs[0]].scalar(1, "b", 0)  # Tensor.type
    bits = _QUANTIZED_TYPES.get(dtype) if code != 99 or dtype == 9 else None
    shift = None if bits is None else _RESCALING_SHIFT[code][0 if bits == 8 else 1]
    if shift is None:
        return None  # float or int32 (no rescaling), or a type the kernel refuses
    scales = []
    for t in (inputs[0], inputs[1], outputs[0]):
        info = reader.tensor(t, sg)
        # TFLite's kernels read the per-tensor scale; none (or per-channel ones) is 0
        scale = info.scales[0] if info is not None and len(info.scales) == 1 else 0.0
        if not (math.isfinite(scale) and scale > 0):
            return (f"quantized tensor {t} has scale {scale}, not a positive number: the "
                    "kernel's rescaling multipliers would not be in (0, 1)")
        scales.append(scale)
    twice_max = 2 * max(scales[0], scales[1])
    if code == 99:
        output_multiplier = twice_max * twice_max / (2 ** (2 * shift) * scales[2])
    else:
        output_multiplier = twice_max / (2 ** shift * scales[2])
    if not 0 < output_multiplier < 1:
        return (f"its input scales {scales[0]}, {scales[1]} and output scale {scales[2]} "
                f"give an output multiplier of {output_multiplier}, outside (0, 1)")
    return None
