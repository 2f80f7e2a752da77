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
  // One layer, one direction, time-major. Returns h_t for every step, and h_n,
  // a copy of h_t at the last processed step. `backend` is 'auto', 'per-step' or
  // 'persistent' (csrc/engine/plan.h).
  m.def(
      "rnn_layer_forward(Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor? bias_ih, "
      "Tensor? bias_hh, Tensor hx, Tensor? mask, Tensor? reset_state, str nonlinearity, "
      "bool reverse, str backend) -> (Tensor output, Tensor h_n)");
  // Returns the gradients of input, weight_ih, weight_hh, the bias (shared by
  // bias_ih and bias_hh), hx and reset_state; each one that output_mask leaves
  // out (and reset_state's without a mask) is an empty tensor. grad_h_n adds to
  // grad_output at the last processed step.
  m.def(
      "rnn_layer_backward(Tensor grad_output, Tensor? grad_h_n, Tensor input, "
      "Tensor weight_ih, Tensor weight_hh, Tensor hx, Tensor? mask, Tensor? reset_state, "
      "Tensor output, str nonlinearity, bool reverse, str backend, bool[6] output_mask) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // One GRU ('gru') or LSTM ('lstm') layer, one direction, time-major: h_t for
  // every step, copies of the last processed h_t and c_t, and what the backward
  // reads: c_t for every step and the saved gates [T, B, 4·H]. The GRU takes
  // cx = reset_c = None and returns empty c_n and cells. `backend` is 'auto',
  // 'per-step' or (CUDA) 'persistent'.
  m.def(
      "gated_layer_forward(Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor? bias_ih, "
      "Tensor? bias_hh, Tensor hx, Tensor? cx, Tensor? mask, Tensor? reset_h, Tensor? reset_c, "
      "str cell, bool reverse, str backend) -> (Tensor output, Tensor h_n, Tensor c_n, "
      "Tensor cells, Tensor saved)");
  // The gradients of input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
  // reset_h and reset_c; those that do not exist, and those of input, weight_ih
  // and weight_hh that output_mask leaves out, are empty tensors. grad_cells
  // (LSTM) is the gradient of every step's c_t. `backend` is the forward's, so
  // that the backward takes the forward's path.
  m.def(
      "gated_layer_backward(Tensor grad_output, Tensor? grad_h_n, Tensor? grad_c_n, "
      "Tensor? grad_cells, "
      "Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor hx, Tensor? cx, Tensor? mask, "
      "Tensor? reset_h, Tensor? reset_c, Tensor output, Tensor cells, Tensor saved, str cell, "
      "bool reverse, bool has_bias, bool[3] output_mask, str backend='auto') -> (Tensor, Tensor, "
      "Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  // The path ('per-step', 'persistent', or '' where the call would raise) that a
  // layer call with these sizes takes on `device`, and the reason in words.
  m.def(
      "plan(int steps, int batch, int hidden_size, ScalarType dtype, Device device, "
      "str backend, str cell='rnn') -> (str, str)");
  // The one-launch CUDA kernels that 'auto' may take (csrc/engine/plan.h).
  m.def("auto_kernels() -> str[]");
}
