// Op schemas of rnn_fused and the Python module rnn_fused._C that loads them.
// The module itself is empty: importing it runs the registrations below and in
// the kernel files.
#include <Python.h>
#include <torch/library.h>

extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(rnn_fused, m) {
  // One layer, one direction, time-major. Returns h_t for every step.
  m.def(
      "rnn_layer_forward(Tensor input, Tensor weight_ih, Tensor weight_hh, Tensor? bias_ih, "
      "Tensor? bias_hh, Tensor hx, Tensor? mask, Tensor? reset_state, str nonlinearity, "
      "bool reverse) -> Tensor");
  // Returns the gradients of input (empty unless input_requires_grad), weight_ih,
  // weight_hh, the bias (shared by bias_ih and bias_hh), hx and reset_state
  // (zeros without a mask).
  m.def(
      "rnn_layer_backward(Tensor grad_output, Tensor input, Tensor weight_ih, "
      "Tensor weight_hh, Tensor hx, Tensor? mask, Tensor? reset_state, Tensor output, "
      "str nonlinearity, bool reverse, bool input_requires_grad) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}
