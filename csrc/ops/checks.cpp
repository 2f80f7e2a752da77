#include "checks.h"

#include <string>
#include <vector>

#include <c10/util/Exception.h>

namespace rnn_fused {
namespace {

// "[d0, d1, ...]" through std::to_string, not c10's ostream operator<< for
// IntArrayRef: built with the GPU machines' toolchain, messages formatted that
// way crashed the process instead of raising.
std::string shape_str(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(sizes[i]);
  }
  return s + "]";
}

}  // namespace

void check_like_input(const at::Tensor& t, const char* name, const at::Tensor& input,
                      at::IntArrayRef sizes) {
  TORCH_CHECK(t.device() == input.device(), "rnn_fused: expected ", name,
              " on device ", input.device(), " (the input's), got ", t.device());
  TORCH_CHECK_TYPE(t.scalar_type() == input.scalar_type(), "rnn_fused: expected ", name,
                   " of dtype ", input.scalar_type(), " (the input's), got ",
                   t.scalar_type());
  TORCH_CHECK_VALUE(t.sizes() == sizes, "rnn_fused: expected ", name, " of shape ",
                    shape_str(sizes), ", got ", shape_str(t.sizes()));
}

LayerSizes check_layer_inputs(Cell cell, const at::Tensor& input, const at::Tensor& weight_ih,
                              const at::Tensor& weight_hh, const OptionalTensor& bias_ih,
                              const OptionalTensor& bias_hh, const at::Tensor& hx,
                              const OptionalTensor& cx, const OptionalTensor& mask,
                              const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                              const OptionalTensor& weight_hr) {
  TORCH_CHECK_VALUE(input.dim() == 3,
                    "rnn_fused: expected input of shape [T, B, input_size], got ",
                    shape_str(input.sizes()));
  const auto dtype = input.scalar_type();
  const bool full_precision = dtype == at::kFloat || dtype == at::kDouble;
  if (input.is_cuda()) {
    TORCH_CHECK_TYPE(full_precision || dtype == at::kHalf || dtype == at::kBFloat16,
                     "rnn_fused: on CUDA the input must be float32, float64, float16 or "
                     "bfloat16, got ", dtype);
  } else {
    TORCH_CHECK_TYPE(full_precision, "rnn_fused: on CPU the input must be float32 or float64, "
                     "got ", dtype);
  }
  const CellInfo& c = info(cell);
  const char* rows = c.gates == 1 ? "H" : c.gates == 3 ? "3·H" : "4·H";
  const char* columns = weight_hr.has_value() ? "P" : "H";
  TORCH_CHECK_VALUE(weight_hh.dim() == 2, "rnn_fused: expected weight_hh of shape [", rows,
                    ", ", columns, "], got ", shape_str(weight_hh.sizes()));
  const int64_t hidden = weight_hh.size(0) / c.gates;
  TORCH_CHECK_VALUE(!weight_hr.has_value() || cell == Cell::Lstm,
                    "rnn_fused: only the lstm cell projects h: weight_hr must be None for the ",
                    c.name, " cell");
  TORCH_CHECK_VALUE(!weight_hr.has_value() || weight_hr->dim() == 2,
                    "rnn_fused: expected weight_hr of shape [P, H], got ",
                    shape_str(weight_hr->sizes()));
  const LayerSizes n{cell, input.size(0), input.size(1), input.size(2), hidden,
                     weight_hr.has_value() ? weight_hr->size(0) : hidden};
  TORCH_CHECK(n.steps >= 1, "rnn_fused: expected sequence length to be larger than 0, got input "
              "of shape ", shape_str(input.sizes()));
  const int64_t gate_rows = c.gates * n.hidden;
  check_like_input(weight_hh, "weight_hh", input, {gate_rows, n.output_size});
  if (weight_hr.has_value()) {
    check_like_input(*weight_hr, "weight_hr", input, {n.output_size, n.hidden});
    TORCH_CHECK_VALUE(n.output_size > 0 && n.output_size < n.hidden,
                      "rnn_fused: weight_hr [P, H] must project to 0 < P < H (nn.LSTM's "
                      "proj_size), got ", shape_str(weight_hr->sizes()));
  }
  check_like_input(weight_ih, "weight_ih", input, {gate_rows, n.input_size});
  TORCH_CHECK_VALUE(bias_ih.has_value() == bias_hh.has_value(),
                    "rnn_fused: bias_ih and bias_hh must be given together");
  if (bias_ih.has_value()) {
    check_like_input(*bias_ih, "bias_ih", input, {gate_rows});
    check_like_input(*bias_hh, "bias_hh", input, {gate_rows});
  }
  check_like_input(hx, "hx", input, {n.batch, n.output_size});
  if (c.cell_state) {
    TORCH_CHECK_VALUE(cx.has_value(), "rnn_fused: the ", c.name,
                      " cell needs cx of shape [B, H]");
    check_like_input(*cx, "cx", input, {n.batch, n.hidden});
    TORCH_CHECK_VALUE(reset_h.has_value() == reset_c.has_value(),
                      "rnn_fused: the ", c.name, " cell resets h and c together: give both "
                      "reset states or neither");
  } else {
    TORCH_CHECK_VALUE(!cx.has_value() && !reset_c.has_value(), "rnn_fused: the ", c.name,
                      " cell has no cell state: cx and reset_c must be None");
  }
  if (mask.has_value()) {
    check_like_input(*mask, "mask", input, {n.steps, n.batch});
    TORCH_CHECK_VALUE(reset_h.has_value(),
                      "rnn_fused: a mask needs a reset state of shape [B, H] or, one per "
                      "step, [T, B, H] (P for the h of an LSTM with weight_hr [P, H])");
  }
  // One reset state for every step, or one per step ([T, B, ·]), both alike.
  const bool per_step = reset_h.has_value() && reset_h->dim() == 3;
  const auto reset_sizes = [&](int64_t width) {
    return per_step ? std::vector<int64_t>{n.steps, n.batch, width}
                    : std::vector<int64_t>{n.batch, width};
  };
  if (reset_h.has_value()) {
    check_like_input(*reset_h, "reset_h", input, reset_sizes(n.output_size));
  }
  if (reset_c.has_value()) check_like_input(*reset_c, "reset_c", input, reset_sizes(n.hidden));
  return n;
}

}  // namespace rnn_fused
