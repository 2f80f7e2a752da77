// rnn_fused::module_forward, the forward of FusedRNN, FusedGRU and FusedLSTM:
// torch.nn's checks of what a module's forward takes (its exception types and
// messages; rnn_fused's own for the mask and the reset state), the layouts
// (batch_first, unbatched), every layer and direction of the cell through
// layer_forward, dropout between layers, and the final states. The one
// boundary where a module call's arguments are checked: the Python fronts only
// unpack a PackedSequence and the states' tuples. CompositeImplicitAutograd:
// autograd, torch.compile and export see the layer ops it calls.
#include <cctype>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/TensorOperators.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/dropout.h>
#include <ATen/ops/full_like.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "../cells/registry.h"
#include "layer_op.h"

namespace rnn_fused {
namespace {

// "torch.float32", as Python prints a dtype.
std::string dtype_name(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

// "(1, 3, 8)" and "[1, 3, 8]", as Python prints a tuple and a list. Sizes are
// symbolic where torch.export traces the op: it keeps them so only where the
// checks compare them, never read them as numbers.
std::string sizes(c10::SymIntArrayRef s, const char* open, const char* close) {
  std::string out = open;
  for (size_t k = 0; k < s.size(); ++k) {
    std::ostringstream size;
    size << s[k];
    out += (k ? ", " : "") + size.str();
  }
  return out + (s.size() == 1 && std::string(open) == "(" ? "," : "") + close;
}

std::string as_tuple(c10::SymIntArrayRef s) { return sizes(s, "(", ")"); }
std::string as_list(c10::SymIntArrayRef s) { return sizes(s, "[", "]"); }

// Whether two shapes are equal, as a guard where they are symbolic.
bool same_sizes(c10::SymIntArrayRef a, c10::SymIntArrayRef b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (!a[k].sym_eq(b[k]).guard_bool(__FILE__, __LINE__)) return false;
  }
  return true;
}

// torch's own message for tensors on different devices; like_name in lower case.
void check_device(const at::Tensor& t, const char* name, const at::Tensor& like,
                  const std::string& like_name) {
  TORCH_CHECK(t.device() == like.device(), char(std::toupper(like_name[0])), like_name.substr(1),
              " and ", name, " tensors are not at the same device, found ", like_name,
              " tensor at ", like.device(), " and ", name, " tensor at ", t.device());
}

bool autocast_enabled() {
  return at::autocast::is_autocast_enabled(at::kCPU) ||
         at::autocast::is_autocast_enabled(at::kCUDA);
}

struct Module {
  Cell cell;
  const char* name;  // torch.nn's: RNN, GRU or LSTM
  int64_t num_layers, directions, input_size, hidden;
  int64_t proj_size;  // > 0: an LSTM whose h is that wide
  int64_t states() const { return info(cell).cell_state ? 2 : 1; }
  // The width of state k: h's (proj_size where it projects), then c's.
  int64_t state_size(size_t k) const { return k == 0 && proj_size > 0 ? proj_size : hidden; }
};

// nn's checks of the input and the states, in nn's order (RNNBase.forward,
// check_forward_args).
void check_input_and_states(const Module& m, const at::Tensor& input, const at::Tensor& weight,
                            at::TensorList hx, bool batched, const c10::SymInt& batch) {
  TORCH_CHECK_VALUE(input.scalar_type() == weight.scalar_type() || autocast_enabled(),
                    "RNN input dtype (", dtype_name(input.scalar_type()),
                    ") does not match weight dtype (", dtype_name(weight.scalar_type()),
                    "). Convert input: input.to(", dtype_name(weight.scalar_type()),
                    "), or convert model: model.to(", dtype_name(input.scalar_type()), ")");
  TORCH_CHECK(input.sym_size(-1).sym_eq(m.input_size).guard_bool(__FILE__, __LINE__),
              "input.size(-1) must be equal to input_size. Expected ", m.input_size, ", got ",
              input.sym_size(-1));
  for (size_t k = 0; k < hx.size(); ++k) {
    const std::vector<c10::SymInt> expected = {c10::SymInt(m.num_layers * m.directions), batch,
                                               c10::SymInt(m.state_size(k))};
    const std::string which = m.states() == 1 ? "hidden" : "hidden[" + std::to_string(k) + "]";
    const at::Tensor state = batched ? hx[k] : hx[k].unsqueeze(1);
    TORCH_CHECK(same_sizes(state.sym_sizes(), expected), "Expected ", which, " size ",
                as_tuple(expected), ", got ", as_list(state.sym_sizes()));
  }
  check_device(weight, "parameter", input, "input");
  for (size_t k = 0; k < hx.size(); ++k) {
    check_device(hx[k], "hidden", input, "input");
    TORCH_CHECK(hx[k].scalar_type() == input.scalar_type() || autocast_enabled(), "expected ",
                k == 0 ? "hx" : "cx", " of dtype ", dtype_name(input.scalar_type()),
                " (the input's), got ", dtype_name(hx[k].scalar_type()));
  }
}

// A bool or float mask shaped like the input's leading dimensions (`layout`
// names them), in the input's dtype.
at::Tensor checked_mask(const at::Tensor& mask, const at::Tensor& input, const char* layout) {
  const c10::SymIntArrayRef leading = input.sym_sizes().slice(0, input.dim() - 1);
  TORCH_CHECK_VALUE(same_sizes(mask.sym_sizes(), leading), "expected mask of shape ", layout,
                    " = ", as_tuple(leading), ", got ", as_tuple(mask.sym_sizes()));
  TORCH_CHECK_TYPE(mask.scalar_type() == at::kBool || at::isFloatingType(mask.scalar_type()),
                   "mask must be bool or floating point, got ", dtype_name(mask.scalar_type()));
  check_device(mask, "mask", input, "input");
  return mask.to(input.scalar_type());
}

// The reset states, one per state, [L·dirs, B, H] or, one per step,
// [L·dirs, T, B, H]: the tensors given (in the input's layout, checked against
// the states, then made batched and time-major like them), the number given, or
// the states themselves.
std::vector<at::Tensor> resets_for(at::TensorList given, c10::optional<double> value,
                                   const std::vector<at::Tensor>& states,
                                   const c10::SymInt& steps, bool batched, bool batch_first) {
  std::vector<at::Tensor> resets;
  for (size_t k = 0; k < states.size(); ++k) {
    if (value.has_value()) {
      resets.push_back(at::full_like(states[k], *value));
      continue;
    }
    if (given.empty()) {
      resets.push_back(states[k]);
      continue;
    }
    const at::Tensor& r = given[k];
    // What may be given, in the input's layout: one state like hx, or one per step.
    const c10::SymIntArrayRef s = states[k].sym_sizes();
    const std::vector<c10::SymInt> like_hx =
        batched ? std::vector<c10::SymInt>{s[0], s[1], s[2]} : std::vector<c10::SymInt>{s[0], s[2]};
    const std::vector<c10::SymInt> per_step =
        !batched      ? std::vector<c10::SymInt>{s[0], steps, s[2]}
        : batch_first ? std::vector<c10::SymInt>{s[0], s[1], steps, s[2]}
                      : std::vector<c10::SymInt>{s[0], steps, s[1], s[2]};
    const bool is_per_step = same_sizes(r.sym_sizes(), per_step);
    TORCH_CHECK_VALUE(is_per_step || same_sizes(r.sym_sizes(), like_hx),
                      "expected reset_state of shape ", as_tuple(like_hx),
                      " (like hx) or, one per step, ", as_tuple(per_step),
                      " ([L*dirs, T, B, H]; [L*dirs, B, T, H] with batch_first; [L*dirs, T, H] "
                      "unbatched), got ", as_tuple(r.sym_sizes()));
    TORCH_CHECK_TYPE(r.scalar_type() == states[k].scalar_type() || autocast_enabled(),
                     "expected reset_state of dtype ", dtype_name(states[k].scalar_type()),
                     " (like hx), got ", dtype_name(r.scalar_type()));
    check_device(r, "reset_state", states[k], "hx");
    if (!batched) {
      resets.push_back(r.unsqueeze(is_per_step ? 2 : 1));
    } else {
      resets.push_back(is_per_step && batch_first ? r.transpose(1, 2) : r);
    }
  }
  return resets;
}

std::tuple<at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>> module_forward(
    const at::Tensor& input_arg, at::TensorList weights, at::TensorList hx_arg,
    const OptionalTensor& mask_arg, at::TensorList reset_state, c10::optional<double> reset_value,
    c10::string_view cell_name, int64_t num_layers, bool bidirectional, bool has_bias,
    bool batch_first, double dropout, bool train, c10::string_view backend,
    const OptionalTensor& last_steps, bool reverse, int64_t proj_size, bool step_states) {
  const Cell cell = parse_cell(cell_name);
  TORCH_CHECK_VALUE(weights.size() >= 2 && weights[0].dim() == 2 && weights[1].dim() == 2,
                    "rnn_fused: expected weight_ih and weight_hh of shapes [G·H, D] and "
                    "[G·H, H] ([G·H, P] with proj_size P), got ",
                    weights.size() >= 2 ? as_tuple(weights[0].sym_sizes()) : "",
                    " and ", weights.size() >= 2 ? as_tuple(weights[1].sym_sizes()) : "");
  TORCH_CHECK_VALUE(!(reverse && bidirectional), "rnn_fused: reverse runs the one direction "
                    "of a unidirectional stack");
  TORCH_CHECK_VALUE(proj_size == 0 || cell == Cell::Lstm,
                    "proj_size argument is only supported for LSTM, not RNN or GRU");
  Module m{cell,       info(cell).elman ? "RNN" : cell == Cell::Gru ? "GRU" : "LSTM",
           num_layers, bidirectional ? 2 : 1,
           weights[0].size(1), weights[1].size(0) / info(cell).gates,
           proj_size};
  const int64_t dim = input_arg.dim();
  TORCH_CHECK_VALUE(dim == 2 || dim == 3, m.name, ": Expected input to be 2D or 3D, got ", dim,
                    cell == Cell::Lstm || cell == Cell::Gru ? "D instead" : "D tensor instead");
  const bool batched = dim == 3;
  if (!hx_arg.empty()) {
    const char* kind = batched ? "batched 3-D" : "unbatched 2-D";
    if (m.states() == 1) {
      TORCH_CHECK(hx_arg[0].dim() == dim, "For ", kind, " input, hx should also be ", dim,
                  "-D but got ", hx_arg[0].dim(), "-D tensor");
    } else {
      TORCH_CHECK(hx_arg[0].dim() == dim && hx_arg[1].dim() == dim, "For ", kind,
                  " input, hx and cx should also be ", dim, "-D but got (", hx_arg[0].dim(),
                  "-D, ", hx_arg[1].dim(), "-D) tensors");
    }
  }
  // Time-major and batched from here on.
  at::Tensor input = batched ? (batch_first ? input_arg.transpose(0, 1) : input_arg)
                             : input_arg.unsqueeze(1);
  const c10::SymInt batch = input.sym_size(1);
  check_input_and_states(m, input, weights[0], hx_arg, batched, batch);
  for (const at::Tensor& weight : weights) check_device(weight, "parameter", input, "input");
  TORCH_CHECK(input.sym_size(0).sym_gt(0).guard_bool(__FILE__, __LINE__),
              "Expected sequence length to be larger than 0 in RNN");
  std::vector<at::Tensor> states;
  for (int64_t k = 0; k < m.states(); ++k) {
    states.push_back(hx_arg.empty()
                         ? at::zeros_symint({c10::SymInt(m.num_layers * m.directions), batch,
                                             c10::SymInt(m.state_size(k))},
                                            input.options())
                     : batched ? hx_arg[k]
                               : hx_arg[k].unsqueeze(1));
  }
  at::Tensor mask;
  if (mask_arg.has_value()) {
    const char* layout = !batched ? "[T]" : batch_first ? "[B, T]" : "[T, B]";
    mask = checked_mask(*mask_arg, input_arg, layout);
    mask = !batched ? mask.unsqueeze(1) : batch_first ? mask.t() : mask;
  }
  for (const at::Tensor& r : reset_state) {
    TORCH_CHECK_VALUE(batched || r.dim() == 2 || r.dim() == 3, "For unbatched 2-D input, "
                      "reset_state should be 2-D [L*dirs, H] or, one per step, 3-D "
                      "[L*dirs, T, H], but got shape ", as_tuple(r.sym_sizes()));
  }
  // Without a mask nothing resets: tensors are still checked.
  const std::vector<at::Tensor> resets =
      resets_for(reset_state, mask.defined() ? reset_value : c10::nullopt, states,
                 input.sym_size(0), batched, batch_first);
  const bool cell_state = m.states() == 2;

  // nn's order per direction: w_ih, w_hh[, b_ih, b_hh][, w_hr].
  const int64_t per_direction = (has_bias ? 4 : 2) + (proj_size > 0 ? 1 : 0);
  TORCH_CHECK_VALUE(static_cast<int64_t>(weights.size()) == per_direction * m.num_layers *
                                                              m.directions,
                    "rnn_fused: expected ", per_direction * m.num_layers * m.directions,
                    " weights (", per_direction, " per layer and direction), got ",
                    weights.size());
  std::vector<std::vector<at::Tensor>> finals(m.states());
  // With step_states, every layer's and direction's h_t (and c_t) at every step.
  std::vector<std::vector<at::Tensor>> every_step(step_states ? m.states() : 0);
  at::Tensor layer_input = input;
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    std::vector<at::Tensor> outputs;
    for (int64_t direction = 0; direction < m.directions; ++direction) {
      const int64_t index = layer * m.directions + direction;
      const at::TensorList w = weights.slice(index * per_direction, per_direction);
      const OptionalTensor none;
      const OptionalTensor masked_reset_c =
          mask.defined() && cell_state ? OptionalTensor(resets[1][index]) : none;
      auto [out, h_n, c_n, cells, saved] = layer_forward_op().call(
          layer_input, w[0], w[1], has_bias ? OptionalTensor(w[2]) : none,
          has_bias ? OptionalTensor(w[3]) : none, states[0][index],
          cell_state ? OptionalTensor(states[1][index]) : none,
          mask.defined() ? OptionalTensor(mask) : none,
          mask.defined() ? OptionalTensor(resets[0][index]) : none, masked_reset_c, cell_name,
          direction == 1 || reverse, backend,
          proj_size > 0 ? OptionalTensor(w[per_direction - 1]) : none);
      // A packed batch's forward direction ends at each sequence's own last step.
      if (last_steps.has_value() && direction == 0 && !reverse) {
        const at::Tensor rows = at::arange(out.sym_size(1), last_steps->options());
        h_n = out.index({*last_steps, rows});
        if (cell_state) c_n = cells.index({*last_steps, rows});
      }
      finals[0].push_back(h_n);
      if (cell_state) finals[1].push_back(c_n);
      if (step_states) {
        every_step[0].push_back(out);
        if (cell_state) every_step[1].push_back(cells);
      }
      outputs.push_back(out);
    }
    layer_input = m.directions == 2 ? at::cat(outputs, -1) : outputs[0];
    if (dropout > 0 && train && layer < num_layers - 1) {
      layer_input = at::dropout(layer_input, dropout, /*train=*/true);
    }
  }
  std::vector<at::Tensor> stacked;
  for (const std::vector<at::Tensor>& column : finals) {
    // One layer and direction needs no stack: the op's states are its own tensors.
    at::Tensor s = column.size() == 1 ? column[0].unsqueeze(0) : at::stack(column);
    stacked.push_back(batched ? s : s.squeeze(1));
  }
  // [L·dirs, T, B, H] in the input's layout: [L·dirs, B, T, H] with
  // batch_first, [L·dirs, T, H] unbatched.
  std::vector<at::Tensor> step_stacked;
  for (const std::vector<at::Tensor>& column : every_step) {
    const at::Tensor s = at::stack(column);
    step_stacked.push_back(!batched ? s.squeeze(2) : batch_first ? s.transpose(1, 2) : s);
  }
  const at::Tensor output = !batched      ? layer_input.squeeze(1)
                            : batch_first ? layer_input.transpose(0, 1)
                                          : layer_input;
  return {output, stacked, step_stacked};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, CompositeImplicitAutograd, m) {
  m.impl("module_forward", &module_forward);
}

}  // namespace rnn_fused
