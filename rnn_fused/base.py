"""FusedRecurrentBase: the forward that FusedRNN, FusedGRU and FusedLSTM share.

It takes what the torch.nn module it replaces takes (a tensor or a
PackedSequence; batched or unbatched; batch_first), plus `mask` and
`reset_state`, checks it with that module's exception types and messages, and
hands time-major tensors to the subclass's `_run_layers`. States travel as
tuples: (h,) for RNN and GRU, (h, c) for LSTM.
"""
from numbers import Number
from typing import List, Optional, Tuple, Union

import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ._checks import check_same_device, prepare_mask, reset_like, split_reset_state
from .utils import lengths_to_mask

States = Tuple[torch.Tensor, ...]


def let_dynamo_trace_rnn_modules() -> None:
    """torch.compile refuses every nn.RNN, nn.GRU and nn.LSTM instance, ours
    included, unless torch._dynamo.config.allow_rnn is set; set it unless the
    user chose a value. Importing the config loads torch._dynamo (about a
    second, once per process)."""
    import torch._dynamo.config as dynamo_config
    is_default = getattr(dynamo_config, "_is_default", lambda name: True)
    if is_default("allow_rnn"):
        dynamo_config.allow_rnn = True


class FusedRecurrentBase:
    """Mixed in before nn.RNN, nn.GRU or nn.LSTM. Subclasses set `_name` and
    `_state_names`, and implement `_run_layers`."""

    _name = "FusedRNN"
    _state_names: Tuple[str, ...] = ("hx",)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def flatten_parameters(self) -> None:
        """A no-op: the kernels read each weight where it is, and need no cuDNN buffer."""

    def _run_layers(self, input: torch.Tensor, states: States, weights: List[torch.Tensor],
                    mask: Optional[torch.Tensor], resets: Optional[States],
                    last_steps: Optional[torch.Tensor]) -> Tuple[torch.Tensor, States]:
        """input [T, B, D]; states and resets [L·dirs, B, H] each; mask [T, B].
        Returns (output [T, B, dirs·H], final states)."""
        raise NotImplementedError

    def _current_weights(self) -> List[torch.Tensor]:
        """The weights in nn.RNN's flat order, read where they are at this call:
        torch.func.functional_call swaps entries of _parameters, and a
        parametrization replaces the attribute. (nn.RNN's _update_flat_weights
        finds the same ones, at several times the cost.)"""
        params = self._parameters
        weights = []
        for name in self._flat_weights_names:
            weight = params.get(name)
            weights.append(getattr(self, name) if weight is None else weight)
        return weights

    def _states_of(self, hx) -> Optional[States]:
        if hx is None:
            return None
        if len(self._state_names) == 1:
            return (hx,)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"{self._name}: hx must be an (h_0, c_0) pair of tensors, got "
                            f"{type(hx).__name__}")
        return tuple(hx)

    def _result(self, states: States):
        return states[0] if len(states) == 1 else states

    def _split_reset_state(self, reset_state
                           ) -> Tuple[Optional[States], Optional[float]]:
        """(tensors, None), (None, number) or (None, None)."""
        if len(self._state_names) == 2 and isinstance(reset_state, (tuple, list, torch.Tensor)):
            if (isinstance(reset_state, torch.Tensor) or len(reset_state) != 2
                    or not all(isinstance(t, torch.Tensor) for t in reset_state)):
                raise TypeError(f"{self._name}: reset_state must be an (h, c) pair of tensors "
                                f"shaped like hx, or a number, got {type(reset_state).__name__}")
            return tuple(reset_state), None
        tensor, value = split_reset_state(reset_state)
        return (None if tensor is None else (tensor,)), value

    def _check_state_dims(self, states: States, dim: int) -> None:
        kind = "batched 3-D" if dim == 3 else "unbatched 2-D"
        if len(states) == 1:
            if states[0].dim() != dim:
                raise RuntimeError(f"For {kind} input, hx should also be {dim}-D but got "
                                   f"{states[0].dim()}-D tensor")
        elif any(s.dim() != dim for s in states):
            raise RuntimeError(f"For {kind} input, hx and cx should also be {dim}-D but got "
                               f"({states[0].dim()}-D, {states[1].dim()}-D) tensors")

    def forward(self, input: Union[torch.Tensor, PackedSequence], hx=None,
                mask: Optional[torch.Tensor] = None,
                reset_state: Union[None, Number, torch.Tensor, States] = None):
        states = self._states_of(hx)
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, states, mask, reset_state)
        dim = input.dim()
        if dim != 3 and dim != 2:
            raise ValueError(f"{self._name}: Expected input to be 2D or 3D, got {dim}D tensor "
                             "instead")
        batched = dim == 3
        if states is not None:
            self._check_state_dims(states, dim)
        if mask is not None:
            layout = "[B, T]" if batched and self.batch_first else "[T, B]" if batched else "[T]"
            mask = prepare_mask(mask, input, layout)
        reset_tensors, reset_value = self._split_reset_state(reset_state)
        if not batched:
            if reset_tensors is not None and any(t.dim() != 2 for t in reset_tensors):
                raise ValueError("For unbatched 2-D input, reset_state should be 2-D "
                                 f"[L*dirs, H] but got shape "
                                 f"{tuple(tuple(t.shape) for t in reset_tensors)}")
            input = input.unsqueeze(1)
            states = None if states is None else tuple(s.unsqueeze(1) for s in states)
            mask = None if mask is None else mask.unsqueeze(1)
            reset_tensors = (None if reset_tensors is None
                             else tuple(t.unsqueeze(1) for t in reset_tensors))
        elif self.batch_first:
            input = input.transpose(0, 1)
            mask = None if mask is None else mask.t()
        output, finals = self._forward_time_major(input, states, mask, reset_tensors,
                                                  reset_value)
        if not batched:
            return output.squeeze(1), self._result(tuple(f.squeeze(1) for f in finals))
        return (output.transpose(0, 1) if self.batch_first else output), self._result(finals)

    def _forward_packed(self, packed: PackedSequence, states: Optional[States], mask,
                        reset_state):
        if mask is not None or reset_state is not None:
            raise ValueError(f"{self._name}: a PackedSequence input takes its mask from its "
                             "lengths and resets to hx; pass mask=None and reset_state=None")
        if states is not None and any(s.dim() != 3 for s in states):
            raise RuntimeError("For a PackedSequence input, hx should be 3-D but got "
                               f"{tuple(s.dim() for s in states)}-D tensors")
        # pad_packed_sequence restores the user's batch order, which hx is in.
        padded, lengths = pad_packed_sequence(packed)
        lengths = lengths.to(padded.device)
        # Resets at the pads make the reverse direction start each sequence from hx.
        mask = lengths_to_mask(lengths, padded.shape[0]).t().to(padded.dtype)
        output, finals = self._forward_time_major(padded, states, mask, None, None,
                                                  last_steps=lengths - 1)
        # Back to packed order: time-major over the length-sorted batch.
        if packed.sorted_indices is not None:
            output = output.index_select(1, packed.sorted_indices)
        batch_sizes = packed.batch_sizes
        valid = (torch.arange(output.shape[1]).unsqueeze(0) < batch_sizes.unsqueeze(1))
        data = output[valid.to(output.device)]
        return (PackedSequence(data, batch_sizes, packed.sorted_indices,
                               packed.unsorted_indices), self._result(finals))

    def _forward_time_major(self, input: torch.Tensor, states: Optional[States],
                            mask: Optional[torch.Tensor], reset_tensors: Optional[States],
                            reset_value: Optional[float],
                            last_steps: Optional[torch.Tensor] = None,
                            ) -> Tuple[torch.Tensor, States]:
        """The torch.nn module's checks (its exception types), then the layers.
        input [T, B, D], states and reset_tensors [L·dirs, B, H] each, mask [T, B]."""
        steps, batch, features = input.shape
        weights = self._current_weights()
        autocast = torch._C._is_any_autocast_enabled()
        if input.dtype != weights[0].dtype and not autocast:
            raise ValueError(f"{self._name} input dtype ({input.dtype}) does not match weight "
                             f"dtype ({weights[0].dtype}). Convert input: "
                             f"input.to({weights[0].dtype}), or convert model: "
                             f"model.to({input.dtype})")
        if features != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {features}")
        if steps == 0:
            raise RuntimeError(f"Expected sequence length to be larger than 0 in {self._name}")
        check_same_device(weights[0], "parameter", input)
        expected = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if states is None:
            states = tuple(input.new_zeros(expected) for _ in self._state_names)
        else:
            for k, state in enumerate(states):
                if state.shape != expected:
                    which = "hidden" if len(states) == 1 else f"hidden[{k}]"
                    raise RuntimeError(f"Expected {which} size {expected}, got "
                                       f"{list(state.shape)}")
                check_same_device(state, "hidden", input)
                if state.dtype != input.dtype and not autocast:
                    raise RuntimeError(f"{self._name}: expected {self._state_names[k]} of "
                                       f"dtype {input.dtype} (the input's), got {state.dtype}")
        resets = None
        if mask is not None:
            # Without a mask nothing resets: tensors are still checked below.
            resets = tuple(reset_like(None if reset_tensors is None else reset_tensors[k],
                                      reset_value, state) for k, state in enumerate(states))
        elif reset_tensors is not None:
            for tensor, state in zip(reset_tensors, states):
                reset_like(tensor, None, state)
        return self._run_layers(input, states, weights, mask, resets, last_steps)
