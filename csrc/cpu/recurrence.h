// The CPU recurrence: per step, one product with W_hh and one fused pointwise
// pass through the cell (cpu/forward.cpp, cpu/backward.cpp). One path; the plan
// only decides how the step product runs (cpu/plan.cpp).
#pragma once

#include <string>

#include "../engine/gated_step.h"
#include "../engine/params.h"

namespace rnn_fused {

struct CpuRecurrence {
  static Plan plan(const PlanQuery& query, std::string* why) { return plan_cpu(query, why); }
  static Plan plan_gated(const PlanQuery& query, GatedCell, std::string* why) {
    return plan_cpu_gated(query, why);
  }
  static void forward(const RecurrenceParams& p);
  static void backward(const RecurrenceGradParams& p);
  // The pointwise pass of one GRU or LSTM step (the loop is csrc/ops/gated_layer.h);
  // where gated_product_in_step, the pass takes the product with W_hh too, over
  // a run of steps in one parallel region (cpu/gated_step.cpp).
  static constexpr bool kPassTakesProduct = true;
  // The forward pass adds the input projection's bias (GatedForwardStep::x_bias).
  static constexpr bool kPassAddsInputBias = true;
  // No one-call recurrence for the gated cells: the loop runs every step.
  static constexpr bool kGatedPersistent = false;
  // Whether the pass takes the product: the backward's, and the forward's over
  // `steps` steps, where W_hhᵀ's packing pays (gated_w_hh_t_panels).
  static bool gated_product_in_step(const GatedStepSizes& n);
  static bool gated_forward_product_in_step(const GatedStepSizes& n, int64_t steps);
  static void gated_forward_run(const GatedForwardStep& first, int64_t steps,
                                GatedForwardStepAt step_at);
  static void gated_backward_run(const GatedBackwardStep& first, int64_t steps,
                                 GatedBackwardStepAt step_at);
  // W_hhᵀ [H, G·H] for ATen's step products: a contiguous copy where it pays
  // over `steps` steps, else the transposed view. A copy lives in the calling
  // thread's buffer until its next call (cpu/transpose.h).
  static at::Tensor gated_w_hh_t(const at::Tensor& weight_hh, int64_t steps);
  // W_hhᵀ for the pass's product: each gate's columns in panels of 16, in the
  // calling thread's buffer (pack_panels_into_thread_buffer).
  static at::Tensor gated_w_hh_t_panels(const at::Tensor& weight_hh);
  // W_hh [G·H, H] for the backward pass's product over `steps` steps of s's
  // batch: in panels of 16 columns where that pays, else contiguous. Points
  // s.w_hh at it, sets s.w_hh_panels, and returns the tensor that holds it.
  static at::Tensor gated_w_hh_for_pass(const at::Tensor& weight_hh, int64_t steps,
                                        GatedBackwardStep& s);
  // Steps per chunk of the gated loop's [steps, B, G·H] buffers (cpu/gated_step.cpp).
  static int64_t gated_chunk_steps(int64_t steps, int64_t batch, int64_t gate_width);
  // target [T', B, H] = mask·values + (1 − mask)·reset row by row, for the
  // backward's states read (mask [T', B]); a row with mask 1 is its value as it
  // is, even against an infinite reset state (cpu/blend_carries.cpp).
  static void blend_carries(at::Tensor& target, const at::Tensor& values,
                            const at::Tensor& mask, const at::Tensor& reset);
  // The products with W_ih for a float32 input of at most 16 features, on
  // AVX-512 (cpu/few_features.cpp; ops/input_products.h says where they run):
  // out [N, G·H] = x · W_ihᵀ (+ bias), and grad_weight_ih = grad_gatesᵀ · x with
  // grad_bias = grad_gates' column sums (where defined) in one pass, added to
  // them with accumulate. All contiguous.
  static constexpr bool kFewFeatureProducts = true;
  static bool few_features_apply(int64_t features, at::ScalarType dtype);
  static void project_few_features(at::Tensor& out, const at::Tensor& x,
                                   const at::Tensor& weight_ih, const at::Tensor& bias);
  static void few_features_weight_grads(const at::Tensor& grad_gates, const at::Tensor& x,
                                        at::Tensor& grad_weight_ih, at::Tensor& grad_bias,
                                        bool accumulate);
  static void gated_forward_step(const GatedForwardStep& s);
  static void gated_backward_step(const GatedBackwardStep& s);
};

}  // namespace rnn_fused
