// The op schemas of rnn_fused, and the Python module rnn_fused._C that loads
// them. The module itself is empty: importing it runs the registrations here
// and in the kernel files.
#include <Python.h>
#include <torch/library.h>

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(rnn_fused, m) {
  // One layer of a cell ('rnn_tanh', 'rnn_relu', 'rnn_identity', 'gru' or
  // 'lstm': torch.nn's mode in lower case; csrc/cells/registry.h), one
  // direction, time-major. Returns h_t for every step, copies of the last
  // processed h_t and c_t, and what the backward reads: c_t for every step and
  // the cell's saved values. A cell without a cell state takes cx = reset_c =
  // None and returns empty c_n and cells; one that saves nothing an empty
  // saved. `backend` is 'auto' or a kernel family's name (rnn_fused::backends).
  // reset_h and reset_c are [B, ·], or one per step [T, B, ·], block t resetting
  // step t's carry. weight_hr [P, H], LSTM only: h_t = W_hr (o_t ⊙ tanh(c_t)), as nn.LSTM's
  // proj_size; h, hx and reset_h are then P wide and weight_hh is [4·H, P].
  m.def(
      "layer_forward(Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor? bias_ih, "
      "Tensor? bias_hh, Tensor hx, Tensor? cx, Tensor? mask, Tensor? reset_h, Tensor? reset_c, "
      "str cell, bool reverse, str backend, Tensor? weight_hr=None) -> (Tensor output, "
      "Tensor h_n, Tensor c_n, Tensor cells, Tensor saved)");
  // The gradients of input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
  // reset_h, reset_c and weight_hr; those that do not exist, and those of
  // input, weight_ih and weight_hh that output_mask leaves out, are empty
  // tensors. grad_cells is the gradient of every step's c_t. `backend` is the
  // forward's, so that the backward takes the forward's path.
  m.def(
      "layer_backward(Tensor grad_output, Tensor? grad_h_n, Tensor? grad_c_n, "
      "Tensor? grad_cells, Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor hx, "
      "Tensor? cx, Tensor? mask, Tensor? reset_h, Tensor? reset_c, Tensor output, Tensor cells, "
      "Tensor saved, str cell, bool reverse, bool has_bias, bool[3] output_mask, "
      "str backend='auto', Tensor? weight_hr=None) -> (Tensor, Tensor, Tensor, Tensor, Tensor, "
      "Tensor, Tensor, Tensor, Tensor, Tensor)");
  // The forward of FusedRNN, FusedGRU and FusedLSTM (csrc/ops/module_forward.cpp):
  // input as the module takes it (batch_first, or unbatched 2-D), the weights in
  // the module's flat order, hx and reset_state as (h,) or (h, c) (empty: none
  // given), a number to reset to instead, and last_steps, each sequence's last
  // valid step where a packed batch ends early. Returns the output and the
  // final states (h_n,) or (h_n, c_n). reverse: the one direction of a
  // unidirectional stack runs t = T−1 … 0 (fused_rnn's reverse). proj_size > 0:
  // an LSTM that projects h, each direction's weights ending with weight_hr.
  // reset_state may give one state per step ([L·dirs, T, B, ·] in the input's
  // layout). step_states: the third result holds every layer's and direction's
  // h_t (and c_t) at every step, [L·dirs, T, B, ·] in the input's layout; empty
  // otherwise.
  m.def(
      "module_forward(Tensor input, Tensor[] weights, Tensor[] hx, Tensor? mask, "
      "Tensor[] reset_state, float? reset_value, str cell, int num_layers, bool bidirectional, "
      "bool has_bias, bool batch_first, float dropout, bool train, str backend, "
      "Tensor? last_steps, bool reverse=False, int proj_size=0, bool step_states=False) -> "
      "(Tensor, Tensor[], Tensor[])");
  // The kernel family (or '' where the call would raise) that a layer call with
  // these sizes runs on `device`, and the reason in words.
  m.def(
      "plan(int steps, int batch, int hidden_size, ScalarType dtype, Device device, "
      "str backend, str cell='rnn_tanh', int proj_size=0, bool resets_per_step=False) -> "
      "(str, str)");
  // The backend names of this build: 'auto', then each kernel family's.
  m.def("backends() -> str[]");
  // The one-launch CUDA kernels that 'auto' may take (csrc/engine/plan.h).
  m.def("auto_kernels() -> str[]");
}
