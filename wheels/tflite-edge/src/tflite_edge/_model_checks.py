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
VALID, strides and dilations in [1, 32767]; :func:`kernel_params_problem` says which
operator breaks that, and ``Interpreter.allocate_tensors()`` raises RuntimeError with it.
"""

from __future__ import annotations

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
    """Why a convolution of the model would crash TFLite's kernel (see the module's
    docstring): its padding is neither SAME nor VALID, or a stride or dilation is outside
    [1, what the kernel's params hold]; None if no operator does that (or the model cannot
    be read: TFLite reports that itself)."""
    try:
        for sg, subgraph in enumerate(reader._subgraph_tables()):
            ops = subgraph.tables(3) or []  # SubGraph.operators
            for node, (code, _inputs, _outputs) in enumerate(reader.operators(sg)):
                spec = _CONV_OPTIONS.get(code)
                if spec is None or node >= len(ops):
                    continue
                why = _conv_problem(ops[node], spec)
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
