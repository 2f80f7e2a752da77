// The persistent family: one cooperative launch per layer and direction whose
// blocks keep W_hh in registers and meet at a grid barrier each step. The
// one-gate kernel (one_gate_kernel.cuh) takes the Elman cells, the gated one
// (gated_kernel.cuh) the GRU and the LSTM. 'auto' takes them only where a
// device check has verified them (engine/plan.h).
#include <string>

#include <ATen/Dispatch.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>

#include "../../engine/families.h"
#include "../../ops/input_products.h"
#include "../../ops/weight_grads.h"
#include "../common/one_gate_layer.h"
#include "gated_entry_points.h"
#include "one_gate_entry_points.h"

namespace rnn_fused {
namespace {

// Config: the rows of W_hh (one-gate) or hidden units (gated) per block.
constexpr int kRows = 0;

const char* kernel_name(Cell cell) {
  return info(cell).elman ? "persistent" : "gated-persistent";
}

bool plan_persistent(const PlanQuery& q, std::array<int, 4>& config, std::string* why) {
  if (q.is_auto() && !auto_takes(kernel_name(q.cell))) {
    if (why != nullptr) {
      *why = "'auto' takes a one-launch kernel only once a device check has passed at its "
             "current code, which this one's has not (docs/device-verification.md); "
             "backend='persistent' runs it";
    }
    return false;
  }
  std::string fit;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.dtype, "rnn_fused::plan_persistent",
                                  [&] {
    std::string* reason = why != nullptr ? &fit : nullptr;
    config[kRows] = info(q.cell).elman
                        ? persistent_rows<scalar_t>(q.batch, q.hidden, reason)
                        : gated_persistent_units<scalar_t>(q.cell, q.batch, q.hidden, reason);
  });
  const bool runs = config[kRows] > 0;
  if (why != nullptr) *why = fit + (runs ? (q.is_auto() ? " (auto)" : ", as asked for") : "");
  return runs;
}

ForwardResult forward(const ForwardParams& p) {
  const int rows = p.plan.config[kRows];
  if (info(p.cell).elman) {
    return one_gate_forward(p, [&](const at::Tensor& out) {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(),
                                      "rnn_fused::persistent_forward",
                                      [&] { persistent_forward<scalar_t>(p, out, rows); });
    });
  }
  const CellInfo& cell = info(p.cell);
  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = p.gates() * H;
  const auto options = p.input.options();
  GatedForwardBuffers b;
  b.x_gates = at::empty({T, B, GH}, options);
  at::Tensor projection = b.x_gates.view({T * B, GH});
  project_input(projection, p.input, p.weight_ih, p.x_bias);
  b.output = at::empty({T, B, H}, options);
  b.cells = cell.cell_state ? at::empty({T, B, H}, options) : at::empty({0}, options);
  // The LSTM's saved gates overwrite its projection, as in the per-step loop.
  b.saved = cell.cell_state ? b.x_gates.view({T, B, cell.saved * H})
                            : at::empty({T, B, cell.saved * H}, options);
  b.carries = at::empty({2, B, H}, options);
  if (B > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, options.dtype().toScalarType(),
                                    "rnn_fused::gated_persistent_forward",
                                    [&] { gated_persistent_forward<scalar_t>(p, b, rows); });
  }
  return {b.output, b.cells, b.saved};
}

void backward(const BackwardParams& p, Gradients& g) {
  const int rows = p.plan.config[kRows];
  const auto dtype = p.output.scalar_type();
  if (info(p.cell).elman) {
    return one_gate_backward(
        p, g, [&](const at::Tensor& grad_out, const at::Tensor& grad_pre, const at::Tensor& reset) {
          AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype,
                                          "rnn_fused::persistent_backward", [&] {
            persistent_backward<scalar_t>(p, grad_out, grad_pre, reset, rows);
          });
        });
  }
  const CellInfo& cell = info(p.cell);
  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = p.gates() * H;
  const auto options = p.output.options();
  GatedBackwardBuffers b;
  b.grad_output = p.grad_output;
  b.h_read = cell.reads_prev_state
                 ? states_read(p.output, p.hx, p.mask, p.reset_h, p.reverse, 0, T)
                 : at::Tensor();
  b.c_read = cell.cell_state ? states_read(p.cells, p.cx, p.mask, p.reset_c, p.reverse, 0, T)
                             : at::Tensor();
  b.grad_x_gates = at::empty({T, B, GH}, options);
  b.grad_h_gates = cell.separate_hidden_grad ? at::empty({T, B, GH}, options) : b.grad_x_gates;
  b.grad_h_first = at::empty({B, H}, options);
  b.grad_c_first = cell.cell_state ? at::empty({B, H}, options) : at::Tensor();
  b.grad_reset_h = g.reset_h;
  b.grad_reset_c = g.reset_c;
  if (B > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype,
                                    "rnn_fused::gated_persistent_backward",
                                    [&] { gated_persistent_backward<scalar_t>(p, b, rows); });
  } else {
    b.grad_x_gates.zero_();
    b.grad_h_gates.zero_();
  }
  add_chunk_gradients(p, g, b.grad_x_gates.view({T * B, GH}), b.grad_h_gates.view({T * B, GH}),
                      0, T, /*first=*/true, b.h_read);
  // h_0's gradient: through W_hh from the first processed step's gates, plus
  // the share that bypassed it.
  g.hx = at::addmm(b.grad_h_first, b.grad_h_gates[p.reverse ? T - 1 : 0], p.w_hh);
  if (cell.cell_state) g.cx = b.grad_c_first;
}

}  // namespace

RNN_FUSED_REGISTER_FAMILY(cuda_persistent, "persistent", c10::DeviceType::CUDA,
                          /*auto_order=*/20, &plan_persistent, &forward, &backward,
                          "rnn_fused::cuda_forward(persistent)",
                          "rnn_fused::cuda_backward(persistent)")

}  // namespace rnn_fused
