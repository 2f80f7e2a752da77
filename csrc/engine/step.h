// One step of a cell as every device's pointwise pass takes it: raw pointers
// into the layer's tensors, so that the per-step loop around it
// (engine/per_step_loop.h: one product with W_hh, then this pass, per step)
// builds no tensor views per step. Where the device says so, the pass takes the
// product too, a run of steps at a time. Rows are contiguous [B, ·] blocks of
// the input's dtype, except where said; the c-pointers are null without a cell
// state.
#pragma once

#include <cstdint>

#include <c10/core/ScalarType.h>
#include <c10/macros/Macros.h>
#include <c10/util/FunctionRef.h>

#include "../cells/registry.h"

namespace rnn_fused {

struct StepSizes {
  Cell cell;
  at::ScalarType dtype;
  int64_t batch, hidden;
};

struct ForwardStep : StepSizes {
  // [B, G·H]: the input projection plus the biases that ride with it, or,
  // where x_bias is given, the projection alone: the pass adds x_bias to it in
  // place, each element before its unit reads it.
  void* x_gates;
  // [G·H] or null: the biases above, where the device's pass adds them.
  const void* x_bias;
  // [B, G·H] in the accumulation type: h_prev·W_hhᵀ, computed by the loop; or,
  // where w_hh_t is given, by the pass itself, each thread the gates of its own
  // slice (cpu/per_step.cpp).
  void* h_gates;
  // W_hhᵀ [H, G·H] as the device's pass takes it (the CPU: in panels), or null.
  const void* w_hh_t;
  // [H], GRU only: b_hn, the one part of b_hh that cannot ride with the input
  // projection (r multiplies it); zeros without bias.
  const void* h_bias;
  const void* h_prev;  // [B, H]: the state this step reads
  const void* c_prev;
  // Written: h_t, c_t, the saved values [B, saved, H], and the state the next
  // step reads, mask_t·h_t + (1 − mask_t)·reset (h_t itself without a mask). No
  // written buffer overlaps a read one, so the CPU loops can vectorize, except
  // that h may be x_gates (one-gate cells) and the LSTM's saved gates are
  // x_gates: each element is written only after its own unit has read it.
  void* h;
  void* c;
  void* saved;
  void* carry_h;
  void* carry_c;
  const void* mask_t;   // [B], or null: nothing resets
  const void* reset_h;  // [B, H], with a mask
  const void* reset_c;
};

struct BackwardStep : StepSizes {
  const void* grad_h;  // [B, H]: the output's gradient at this step (plus h_n's)
  // [B, H], cells with a cell state only: c_t's own gradient (c_n's at the last
  // processed step), zeros where there is none.
  const void* grad_c;
  // [B, H] in the accumulation type: the gradient of the state this step
  // carried on (zero at the last processed step): the next step's gates'
  // gradient times W_hh, plus, where carry_bypass_h is given, that.
  const void* carry_grad_h;
  const void* carry_bypass_h;
  const void* carry_grad_c;
  // Written, [B, H] in the accumulation type: for c, the gradient of the state
  // this step read; for h (GRU), the share of it that bypasses W_hh. Where w_hh
  // is given, the pass adds the product with W_hh to that share itself.
  void* grad_h_prev;
  void* grad_c_prev;
  // W_hh [G·H, H] as the device's pass takes it, or null; w_hh_panels: packed
  // in panels of 16 columns rather than row-major.
  const void* w_hh;
  bool w_hh_panels = false;
  const void* mask_t;  // [B] or null
  const void* saved;   // this step's saved values [B, saved, H]
  const void* h;       // h_t
  const void* c;       // c_t
  const void* h_prev;  // the states this step read
  const void* c_prev;
  // Written: the gate pre-activations' gradients [B, G·H], input side and
  // (GRU) hidden side.
  void* grad_x_gates;
  void* grad_h_gates;
  // Accumulated with a mask, in the accumulation type: (1 − mask_t)·carry_grad.
  void* grad_reset_h;
  void* grad_reset_c;
};

// Sets the per-step pointers of a run's k-th step. Every thread of the run calls
// it for every step, each on its own copy of the step.
using ForwardStepAt = c10::function_ref<void(int64_t, ForwardStep&)>;
using BackwardStepAt = c10::function_ref<void(int64_t, BackwardStep&)>;

template <typename T>
C10_HOST_DEVICE inline const T* typed(const void* p) { return static_cast<const T*>(p); }
template <typename T>
C10_HOST_DEVICE inline T* typed(void* p) { return static_cast<T*>(p); }

}  // namespace rnn_fused
