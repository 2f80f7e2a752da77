"""ONNX export of FusedRNN, FusedGRU and FusedLSTM through torch.onnx's dynamo exporter,
its default:

    import rnn_fused.onnx   # registers the translation below with the exporter
    torch.onnx.export(model, args, "model.onnx")

The translation maps the layer op (one call per layer and direction) to ONNX:
without a mask, to ONNX's own RNN, GRU or LSTM operator on the module's own
weights, reordered to ONNX's gate order inside the graph; with a mask, or for an
LSTM with projections (which ONNX's LSTM lacks), to a Scan whose step applies
the mask-reset of docs/semantics.md. docs/export.md says
more. Importing this module needs onnxscript, as torch.onnx.export(dynamo=True)
does; `import rnn_fused` alone never imports it.
"""
import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx_ir as ir
import torch
from onnxscript import opset18 as op
from onnxscript.function_libs.torch_lib import registration as torch_lib_registration
# Scan's outputs are variadic, which onnxscript's op calls cannot count, so the
# Scan node goes straight into the exporter's recorder, as torch.onnx's own
# translation of torch's scan does.
from torch.onnx._internal.exporter import _core

__all__ = ["custom_translation_table"]

# nonlinearity -> ONNX RNN's activation attributes; Affine(x) = alpha·x + beta.
_RNN_ACTIVATIONS = {"tanh": dict(activations=["Tanh"]), "relu": dict(activations=["Relu"]),
                    "identity": dict(activations=["Affine"], activation_alpha=[1.0],
                                     activation_beta=[0.0])}
# nonlinearity -> the Scan step's op.
_STEP_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "identity": "Identity"}
# PyTorch's gate blocks (GRU r, z, n; LSTM i, f, g, o) in ONNX's order (z, r, h; i, o, f, c).
_ONNX_GATE_ORDER = {"gru": (1, 0, 2), "lstm": (0, 3, 1, 2)}
# Numbers each Scan body: ONNX wants a body's names distinct from every name
# around it, which the exporter's own naming does not ensure.
_BODY_IDS = itertools.count()


def custom_translation_table() -> Dict[torch._ops.OpOverload, object]:
    """The `custom_translation_table` argument of torch.onnx.export(dynamo=True) for
    models holding FusedRNN, FusedGRU, FusedLSTM or calling fused_rnn. Importing
    this module registers the same translation (below), so the argument is optional."""
    return {torch.ops.rnn_fused.layer_forward.default: _layer_forward}


def _layer_forward(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h,
                   reset_c, cell: str, reverse: bool, backend: str, weight_hr=None):
    """rnn_fused::layer_forward -> (output [T, B, P], h_n [B, P], c_n [B, H],
    cells [T, B, H], saved); c_n and cells are empty without a cell state, saved
    for the Elman cells. P = H but for an LSTM's projection weight_hr [P, H]."""
    lstm = cell == "lstm"
    elman = cell.startswith("rnn_")
    states = (hx, cx) if lstm else (hx,)
    resets = (reset_h, reset_c) if lstm else (reset_h,)
    layer = (input, weight_ih, weight_hh, bias_ih, bias_hh)
    kind = "rnn" if elman else cell
    nonlinearity = cell[len("rnn_"):] if elman else "tanh"
    if mask is None and weight_hr is None:
        if elman:
            onnx_op, extra = op.RNN, _RNN_ACTIVATIONS[nonlinearity]
        else:
            onnx_op, extra = (op.LSTM, {}) if lstm else (op.GRU, dict(linear_before_reset=1))
        results = onnx_op(input, *_onnx_weights(kind, weight_ih, weight_hh, bias_ih, bias_hh),
                          None, *(op.Unsqueeze(s, [0]) for s in states),
                          direction="reverse" if reverse else "forward",
                          hidden_size=_hidden_size(weight_hh), **extra)
        output = op.Squeeze(results[0], [1])
        finals = [op.Squeeze(f, [0]) for f in results[1:1 + len(states)]]
    else:
        output, cells, _ = _scan(kind, *layer, states, mask, resets, reverse,
                                 nonlinearity=nonlinearity, weight_hr=weight_hr)
        finals = [_last(output, reverse)] + ([_last(cells, reverse)] if lstm else [])
    empty = _constant([], input)
    if elman:
        return output, finals[0], empty, empty, empty
    # Every step's c and gates, which the kernels keep for the backward: a second
    # Scan, which the exporter's optimizer removes where nothing reads them (in
    # every graph of FusedGRU and FusedLSTM).
    _, cells, saved = _scan(cell, *layer, states, mask, resets, reverse, by_products=True,
                            weight_hr=weight_hr)
    if lstm:
        return output, finals[0], finals[1], cells, saved
    return output, finals[0], empty, empty, saved


def _hidden_size(weight_hh) -> int:
    return weight_hh.shape[1]


def _gate_blocks(cell: str, tensor, hidden: int):
    """Reorders PyTorch's gate blocks (along dim 0) into ONNX's order. Slices, not a
    Split: the exporter's optimizer folds them on small weights, and warns on a Split."""
    if cell == "rnn":
        return tensor
    return op.Concat(*(op.Slice(tensor, [k * hidden], [(k + 1) * hidden])
                       for k in _ONNX_GATE_ORDER[cell]), axis=0)


def _onnx_weights(cell: str, weight_ih, weight_hh, bias_ih, bias_hh):
    """W, R and B (None without bias) of ONNX's RNN, GRU and LSTM, one direction."""
    hidden = _hidden_size(weight_hh)
    w = op.Unsqueeze(_gate_blocks(cell, weight_ih, hidden), [0])
    r = op.Unsqueeze(_gate_blocks(cell, weight_hh, hidden), [0])
    if bias_ih is None:
        return w, r, None
    b = op.Concat(_gate_blocks(cell, bias_ih, hidden), _gate_blocks(cell, bias_hh, hidden),
                  axis=0)
    return w, r, op.Unsqueeze(b, [0])


def _last(sequence, reverse: bool):
    """[T, B, H] -> [B, H] at the direction's last processed step."""
    return op.Gather(sequence, 0 if reverse else -1, axis=0)


def _constant(value, like):
    """A constant in like's dtype (a Python number would become float32)."""
    return op.Constant(value=ir.tensor(np.asarray(value, dtype=like.dtype.numpy())))


def _scan(cell: str, input, weight_ih, weight_hh, bias_ih, bias_hh, states: Sequence,
          mask, resets: Sequence, reverse: bool, nonlinearity: str = "tanh",
          by_products: bool = False, weight_hr=None):
    """The layer as a Scan over time, each step as the kernels compute it.

    states and resets: (h,) or (h, c) [B, H]; mask [T, B] or None. After step t
    the carried state is where(m_t == 1, s_t, m_t·s_t + (1 − m_t)·r): the
    kernels' formula, under which a kept row never reads the reset state.
    Returns (output [T, B, P], cells [T, B, H] (LSTM, else None), gates
    [T, B, 4·H], the kernels' `saved` (by_products, else None)). An LSTM with
    weight_hr [P, H] projects each step's h: h_t = (o_t ⊙ tanh(c_t)) W_hrᵀ.

    The step reads W_hh, b_hh and W_hr from the outer graph, except with by_products:
    that Scan carries them as states, because a removed Scan's body still counts
    as a use of what it reads, and the optimizer would keep those weights."""
    lstm = cell == "lstm"
    x_gates = op.MatMul(input, op.Transpose(weight_ih, perm=[1, 0]))
    if bias_ih is not None:
        x_gates = op.Add(x_gates, bias_ih)
    scan_inputs = [x_gates]
    if mask is not None:
        m, one = op.Unsqueeze(mask, [-1]), _constant(1, input)
        # (1 − m_t)·r for every step, before the loop.
        scan_inputs += [m, op.Equal(m, one)] + [op.Mul(op.Sub(one, m), r) for r in resets]
    product = [weight_hh] + ([] if bias_hh is None else [bias_hh])
    weights = product + ([] if weight_hr is None else [weight_hr])

    # The body's inputs: the carried states, then one step of each scan input.
    step = _Step(input.dtype)
    carried = [step.input(f"state{k}") for k in range(len(states))]
    inner = [step.input(f"weight{k}") for k in range(len(weights))] if by_products else weights
    x_t = step.input("x_gates")
    if mask is not None:
        m_t, kept_t = step.input("mask"), step.input("kept", ir.DataType.BOOL)
        blends = [step.input(f"reset_blend{k}") for k in range(len(states))]
    h = carried[0]
    h_gates = step("Gemm", h, *inner[:len(product)], transB=1)
    if cell == "rnn":
        h_new = step(_STEP_ACTIVATIONS[nonlinearity], step("Add", x_t, h_gates))
    elif cell == "gru":
        x_r, x_z, x_n = step.split(x_t, 3)
        h_r, h_z, h_n = step.split(h_gates, 3)
        r = step("Sigmoid", step("Add", x_r, h_r))
        z = step("Sigmoid", step("Add", x_z, h_z))
        n = step("Tanh", step("Add", x_n, step("Mul", r, h_n)))
        h_new = step("Add", n, step("Mul", z, step("Sub", h, n)))
        gates = (r, z, n, h_n)
    else:
        i, f, g, o = step.split(step("Add", x_t, h_gates), 4)
        i, f, g, o = step("Sigmoid", i), step("Sigmoid", f), step("Tanh", g), step("Sigmoid", o)
        c_new = step("Add", step("Mul", f, carried[1]), step("Mul", i, g))
        h_new = step("Mul", o, step("Tanh", c_new))
        if weight_hr is not None:
            h_new = step("Gemm", h_new, inner[-1], transB=1)
        gates = (i, f, g, o)
    new_states = [h_new, c_new] if lstm else [h_new]
    if mask is None:
        carries = new_states
    else:
        carries = [step("Where", kept_t, s, step("Add", step("Mul", m_t, s), b))
                   for s, b in zip(new_states, blends)]
    scan_outputs = list(new_states)
    if by_products:
        carries += inner
        states = [*states, *weights]
        scan_outputs.append(step("Concat", *gates, axis=-1))
    per_step = step.scan(states, scan_inputs, carries, scan_outputs, reverse)[len(states):]
    return (per_step[0], per_step[1] if lstm else None, per_step[-1] if by_products else None)


class _Step:
    """Builds a Scan's body, one step, and records the Scan node."""

    def __init__(self, dtype: ir.DataType):
        self.dtype = dtype
        self.inputs: List[ir.Value] = []
        self.tape = ir.tape.Tape()
        self.prefix = f"rnn_fused_step{next(_BODY_IDS)}_"

    def input(self, name: str, dtype: Optional[ir.DataType] = None) -> ir.Value:
        value = ir.Value(name=self.prefix + name, type=ir.TensorType(dtype or self.dtype))
        self.inputs.append(value)
        return value

    def __call__(self, op_type: str, *inputs: ir.Value, **attributes) -> ir.Value:
        return self.tape.op(op_type, inputs, attributes or None)

    def split(self, value: ir.Value, parts: int) -> Tuple[ir.Value, ...]:
        return tuple(self.tape.op_multi_out("Split", [value], dict(axis=-1, num_outputs=parts),
                                            num_outputs=parts))

    def scan(self, states: Sequence, scan_inputs: Sequence, carries: Sequence,
             scan_outputs: Sequence, reverse: bool) -> Sequence:
        """Records Scan(states, scan_inputs) with this body; returns its outputs: the
        final states, then the scan outputs stacked over time (in time order)."""
        tracer = _core.current_tracer
        if tracer is None:
            raise RuntimeError("rnn_fused.onnx: the translation functions run only inside "
                               "torch.onnx.export(..., dynamo=True)")
        for k, node in enumerate(self.tape.nodes):
            for j, value in enumerate(node.outputs):
                value.name = f"{self.prefix}{node.op_type}{k}_{j}"
        body = ir.Graph(self.inputs, [*carries, *scan_outputs], nodes=self.tape.nodes,
                        name=self.prefix + "body")
        direction = 1 if reverse else 0
        attributes = dict(body=body, num_scan_inputs=len(scan_inputs),
                          scan_input_directions=[direction] * len(scan_inputs),
                          scan_output_directions=[direction] * len(scan_outputs))
        node = ir.Node("", "Scan", [*states, *scan_inputs],
                       ir.convenience.convert_attributes(attributes),
                       num_outputs=len(states) + len(scan_outputs),
                       version=tracer.opset.version)
        tracer.nodes.append(node)
        return node.outputs


# The dynamo exporter builds its table of translations at every call from onnxscript's
# torch_lib registry, and offers no public way to add to it: a translation
# registered there is found without custom_translation_table. A model traced
# without this import stops with a message that names it (_onnx_exporting.py).
torch_lib_registration.torch_op("rnn_fused::layer_forward", trace_only=True)(_layer_forward)
