// One step of a gated cell (GRU, LSTM) as every device's pointwise pass takes
// it: raw pointers into the layer's tensors, so that the loop around it
// (csrc/ops/gated_layer.h: one product with W_hh, then this pass, per step)
// builds no tensor views per step. Where the device says so
// (Device::gated_product_in_step), the pass takes the product too, a run of
// steps at a time (Device::gated_forward_run). Rows are contiguous [B, ·] blocks
// of the input's dtype, except where said; the c-pointers are null for the GRU.
#pragma once

#include <cstdint>
#include <string_view>

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <c10/util/FunctionRef.h>

namespace rnn_fused {

enum class GatedCell { Gru, Lstm };

inline GatedCell parse_gated_cell(std::string_view name) {
  if (name == "gru") return GatedCell::Gru;
  if (name == "lstm") return GatedCell::Lstm;
  TORCH_CHECK_VALUE(false, "rnn_fused: unknown cell '", name, "'; expected 'gru' or 'lstm'");
}

// Gate rows per hidden unit in W_ih and W_hh, and values saved per unit and step.
inline int64_t gate_count(GatedCell cell) { return cell == GatedCell::Gru ? 3 : 4; }
constexpr int64_t kSavedPerUnit = 4;

struct GatedStepSizes {
  GatedCell cell;
  at::ScalarType dtype;
  int64_t batch, hidden;
};

struct GatedForwardStep : GatedStepSizes {
  // [B, G·H]: the input projection plus b_ih and b_hh (GRU: b_hr, b_hz), or,
  // where x_bias is given, the projection alone: the pass adds x_bias to it in
  // place, each element before its unit reads it.
  void* x_gates;
  // [G·H] or null: the biases above, where the device's pass adds them
  // (Device::kPassAddsInputBias).
  const void* x_bias;
  // [B, G·H] in the accumulation type: h_prev·W_hhᵀ, computed by the loop; or,
  // where w_hh_t is given, by the pass itself, each thread the gates of its own
  // slice (csrc/cpu/gated_step.cpp).
  void* h_gates;
  // W_hhᵀ [H, G·H] as the device's pass takes it (the CPU: in panels,
  // CpuRecurrence::gated_w_hh_t_panels), or null.
  const void* w_hh_t;
  // [H], GRU only: b_hn, the one part of b_hh that cannot ride with the input
  // projection (r multiplies it); zeros without bias.
  const void* h_bias;
  const void* h_prev;   // [B, H]: the state this step reads
  const void* c_prev;
  // Written: h_t, c_t, the saved gates [B, 4, H], and the state the next step
  // reads, mask_t·h_t + (1 − mask_t)·reset (h_t itself without a mask). No
  // written buffer overlaps a read one, so the CPU loops can vectorize, except
  // the LSTM's saved gates: they are x_gates, each element written only after
  // its own unit has read it.
  void* h;
  void* c;
  void* saved;
  void* carry_h;
  void* carry_c;
  const void* mask_t;  // [B], or null: nothing resets
  const void* reset_h;  // [B, H], with a mask
  const void* reset_c;
};

struct GatedBackwardStep : GatedStepSizes {
  const void* grad_h;  // [B, H]: the output's gradient at this step (plus h_n's)
  // [B, H], LSTM only (null for the GRU): c_t's own gradient (c_n's at the last
  // processed step), zeros where there is none.
  const void* grad_c;
  // [B, H]: the gradient of the state this step carried on (zero at the last
  // processed step).
  const void* carry_grad_h;
  const void* carry_grad_c;
  // Written, [B, H]: the gradient of the state this step read: for c all of it,
  // for h the share that bypasses W_hh (GRU); the loop adds the product with W_hh
  // in place, or, where w_hh is given, the pass itself.
  void* grad_h_prev;
  void* grad_c_prev;
  // W_hh [G·H, H] as the device's pass takes it (the CPU:
  // CpuRecurrence::gated_w_hh_for_pass), or null; w_hh_panels: packed in panels
  // of 16 columns rather than row-major.
  const void* w_hh;
  bool w_hh_panels = false;
  const void* mask_t;  // [B] or null
  const void* saved;   // this step's saved gates [B, 4, H] and c_t
  const void* c;
  const void* h_prev;  // the state this step read
  const void* c_prev;
  // Written: the gate pre-activations' gradients [B, G·H], input side and (GRU)
  // hidden side.
  void* grad_x_gates;
  void* grad_h_gates;
  // Accumulated with a mask, in the accumulation type: (1 − mask_t)·carry_grad.
  void* grad_reset_h;
  void* grad_reset_c;
};

// Sets the per-step pointers of a run's k-th step. Every thread of the run calls
// it for every step, each on its own copy of the step.
using GatedForwardStepAt = c10::function_ref<void(int64_t, GatedForwardStep&)>;
using GatedBackwardStepAt = c10::function_ref<void(int64_t, GatedBackwardStep&)>;

}  // namespace rnn_fused
