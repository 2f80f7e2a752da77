"""The compiled ops, and how torch.compile traces them.

`torch.ops.rnn_fused.layer_forward` runs one layer of a cell in one direction,
time-major; its autograd and autocast kernels are C++ (csrc/ops/).
`module_forward`, which the modules call, runs their layers through it. This
module gives the layer op pair fake implementations, so that torch.compile and
torch.export can trace them (module_forward decomposes into them), refuses a
derivative of the backward op itself, and wraps the `plan` and `backends`
queries and the CPU's ISA setting.
"""
from typing import List, NamedTuple, Optional

import torch

from . import _C  # noqa: F401  (loads the kernels and registers the ops)

# The modules' cells by torch.nn's mode, and plan()'s short names for them.
CELL_OF_MODE = {"RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu", "RNN_IDENTITY": "rnn_identity",
                "GRU": "gru", "LSTM": "lstm"}
_PLAN_CELLS = {"rnn": "rnn_tanh", **{cell: cell for cell in CELL_OF_MODE.values()}}


# Fixed once the library has loaded and its kernel families registered; read
# here once, since a call of the op inside torch.export's trace would be traced.
_BACKENDS = tuple(torch.ops.rnn_fused.backends())


def backends() -> List[str]:
    """The backend names of this build: 'auto', then each kernel family's."""
    return list(_BACKENDS)


def cpu_isa() -> str:
    """The vector ISA the CPU kernels run: 'avx512', 'avx2' or 'baseline' (SSE2 on
    x86-64, NEON on aarch64). The best this CPU has, unless RNN_FUSED_CPU_ISA
    (read once) or set_cpu_isa asked for a lower one."""
    return torch.ops.rnn_fused.cpu_isa()


def cpu_isas() -> List[str]:
    """The ISAs this CPU runs, best first."""
    return list(torch.ops.rnn_fused.cpu_isas())


def set_cpu_isa(isa: str) -> None:
    """Runs the CPU kernels compiled for `isa`, one of cpu_isas(), from the next
    call on: for tests and benchmarks of each ISA on one machine."""
    torch.ops.rnn_fused.set_cpu_isa(isa)


class Plan(NamedTuple):
    """What a layer call runs: `backend` is the kernel family ('per-step',
    'persistent' or 'cluster'), or None where the call would raise; `reason`
    says why, in words."""
    backend: Optional[str]
    reason: str


def plan(batch: int, hidden_size: int, steps: int = 1, dtype: torch.dtype = torch.float32,
         device="cpu", backend: str = "auto", cell: str = "rnn", proj_size: int = 0,
         resets_per_step: bool = False) -> Plan:
    """The kernel family that one layer and direction of a module takes for these
    sizes on `device` with `backend`, and why. cell: 'rnn' (FusedRNN, any
    nonlinearity), 'gru', 'lstm', or the op's names; proj_size: an LSTM's;
    resets_per_step: reset states given one per step. The kernels decide with the
    same function, so this is what runs (RNN_FUSED_BACKEND included)."""
    if cell not in _PLAN_CELLS:
        raise ValueError(f"Unknown cell {cell!r}. Select from " + ", ".join(map(repr, _PLAN_CELLS)))
    path, reason = torch.ops.rnn_fused.plan(steps, batch, hidden_size, dtype,
                                            torch.device(device), backend, _PLAN_CELLS[cell],
                                            proj_size, resets_per_step)
    return Plan(path or None, reason)


def _check_devices(input, **tensors):
    """Mixed devices would otherwise reach these fake kernels through the Meta key
    (a meta tensor among CPU ones) and yield uninitialized outputs."""
    for name, tensor in tensors.items():
        if tensor is not None and tensor.device != input.device:
            raise RuntimeError(f"Input and {name} tensors are not at the same device, found "
                               f"input tensor at {input.device} and {name} tensor at "
                               f"{tensor.device}")


def _saved_shape(cell: str, steps, batch, hidden):
    """The cell's saved values: 4 per unit for GRU and LSTM, none for Elman."""
    return (steps, batch, 4 * hidden) if cell in ("gru", "lstm") else (0,)


@torch.library.register_fake("rnn_fused::layer_forward")
def _(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h, reset_c, cell,
      reverse, backend, weight_hr=None):
    torch._check(input.dim() == 3, lambda: "expected input of shape [T, B, input_size]")
    _check_devices(input, weight_ih=weight_ih, weight_hh=weight_hh, bias_ih=bias_ih,
                   bias_hh=bias_hh, hx=hx, cx=cx, mask=mask, reset_h=reset_h, reset_c=reset_c,
                   weight_hr=weight_hr)
    steps, batch = input.shape[:2]
    # h is P wide where weight_hr [P, H] projects it; c and the gates stay H wide.
    width = weight_hh.shape[1]
    hidden = width if weight_hr is None else weight_hr.shape[1]
    lstm = cell == "lstm"
    return (input.new_empty((steps, batch, width)), input.new_empty((batch, width)),
            input.new_empty((batch, hidden) if lstm else (0,)),
            input.new_empty((steps, batch, hidden) if lstm else (0,)),
            input.new_empty(_saved_shape(cell, steps, batch, hidden)))


@torch.library.register_fake("rnn_fused::layer_backward")
def _(grad_output, grad_h_n, grad_c_n, grad_cells, input, weight_ih, weight_hh, hx, cx, mask,
      reset_h, reset_c, output, cells, saved, cell, reverse, has_bias, output_mask,
      backend="auto", weight_hr=None):
    _check_devices(input, grad_output=grad_output, weight_ih=weight_ih, weight_hh=weight_hh,
                   hx=hx, cx=cx, output=output, weight_hr=weight_hr)
    lstm = cell == "lstm"
    masked = mask is not None
    products = (input.shape, weight_ih.shape, weight_hh.shape)
    bias = weight_hh.shape[:1] if has_bias else (0,)
    c_shape = cx.shape if lstm else (0,)
    # The kernels return contiguous gradients whatever the inputs' strides.
    shapes = tuple(shape if wanted else (0,) for shape, wanted in zip(products, output_mask)) + (
        bias, bias, hx.shape, c_shape, reset_h.shape if masked else (0,),
        reset_c.shape if masked and lstm else (0,),
        weight_hr.shape if weight_hr is not None else (0,))
    return tuple(input.new_empty(shape) for shape in shapes)


def _no_double_backward(ctx, *grads):
    raise NotImplementedError(
        "rnn_fused::layer_backward, the fused backward, has no derivative of its own; the "
        "modules' gradients of gradients (create_graph=True) take a differentiable formulation "
        "(csrc/ops/double_backward.h)")


def _no_context(ctx, inputs, output):
    pass


# The forward's autograd (C++) calls the backward op below autograd, or, when
# autograd records the backward (create_graph=True), a differentiable
# formulation instead; the op called directly under autograd raises a clear
# error rather than return gradients with no graph.
torch.library.register_autograd("rnn_fused::layer_backward", _no_double_backward,
                                setup_context=_no_context)
