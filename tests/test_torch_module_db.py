"""PyTorch's own test inputs for nn.RNN, nn.GRU and nn.LSTM (the ModuleInfos of
torch.testing._internal.common_modules, which ship in the wheel), run with
FusedRNN, FusedGRU and FusedLSTM in nn's place: every constructor and forward
input torch's module tests use gives nn's outputs and gradients, and every
error input raises nn's exception type with nn's message."""
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
# Importing torch.testing._internal would freeze torch.backends' flags for the
# whole process (its common_utils calls disable_global_flags()), and other tests
# set them: torch's own context manager restores them after the import.
with torch.backends.__allow_nonbracketed_mutation():
    from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

from rnn_fused import FusedGRU, FusedLSTM, FusedRNN

from helpers import TOLERANCES, report

FUSED = {nn.RNN: FusedRNN, nn.GRU: FusedGRU, nn.LSTM: FusedLSTM}
INFOS = [info for info in module_db if info.module_cls in FUSED]


def module_inputs(info, training, device="cpu"):
    return info.module_inputs_func(info, device=device, dtype=torch.float64, requires_grad=True,
                                   training=training)


def input_cases():
    for info in INFOS:
        for training in (True, False):
            for index, _ in enumerate(module_inputs(info, training)):
                mode = "train" if training else "eval"
                yield pytest.param(info, training, index,
                                   id=f"{info.module_cls.__name__}-{mode}-{index}")


def tensors_of(value):
    """The tensors in a module's input or output, in order."""
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in tensors_of(item)]
    return []


def fresh(value):
    """The same input, its tensors new leaves, so each module gets its own gradients."""
    if isinstance(value, PackedSequence):
        return value._replace(data=fresh(value.data))
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (tuple, list)):
        return type(value)(fresh(item) for item in value)
    return value


@pytest.mark.parametrize("info, training, index", list(input_cases()))
def test_torch_module_inputs_match_nn(device, info, training, index):
    case = module_inputs(info, training, device)[index]
    args, kwargs = case.constructor_input.args, case.constructor_input.kwargs
    reference = info.module_cls(*args, **kwargs, dtype=torch.float64, device=device)
    fused = FUSED[info.module_cls](*args, **kwargs, dtype=torch.float64, device=device)
    fused.load_state_dict(reference.state_dict())
    if device == "cuda" and kwargs.get("proj_size", 0) > 0:
        # Declined by every CUDA family until CUDA's loop has run projections on a GPU.
        with pytest.raises(ValueError, match="proj_size > 0"):
            fused(*case.forward_input.args, **case.forward_input.kwargs)
        return
    reference.train(training)
    fused.train(training)
    results = []
    for module in (reference, fused):
        forward_args = fresh(case.forward_input.args)
        forward_kwargs = {k: fresh(v) for k, v in case.forward_input.kwargs.items()}
        outputs = tensors_of(module(*forward_args, **forward_kwargs))
        leaves = [t for t in tensors_of(forward_args) + tensors_of(list(forward_kwargs.values()))
                  if t.requires_grad] + list(module.parameters())
        grads = torch.autograd.grad(sum(o.sin().sum() for o in outputs), leaves,
                                    allow_unused=True)
        results.append(outputs + [g for g in grads if g is not None])
    assert len(results[0]) == len(results[1])
    for k, (expected, actual) in enumerate(zip(*results)):
        report(f"tensor {k}", actual, expected, **TOLERANCES[torch.float64])


def error_cases():
    for info in INFOS:
        errors = info.module_error_inputs_func(info, device="cpu", dtype=torch.float32,
                                               requires_grad=False, training=True)
        for index, _ in enumerate(errors):
            yield pytest.param(info, index, id=f"{info.module_cls.__name__}-{index}")


@pytest.mark.parametrize("info, index", list(error_cases()))
def test_torch_error_inputs_raise_nn_errors(device, info, index):
    error = info.module_error_inputs_func(info, device=device, dtype=torch.float32,
                                          requires_grad=False, training=True)[index]
    case = error.module_error_input
    args, kwargs = case.constructor_input.args, case.constructor_input.kwargs
    fused_cls = FUSED[info.module_cls]
    if error.error_on == ModuleErrorEnum.CONSTRUCTION_ERROR:
        with pytest.raises(error.error_type, match=error.error_regex):
            fused_cls(*args, **kwargs)
    else:
        module = fused_cls(*args, **kwargs)
        with pytest.raises(error.error_type, match=error.error_regex):
            module(*case.forward_input.args, **case.forward_input.kwargs)
