// Autocast as a kernel of the layer op, so that the modules, fused_rnn and
// direct op calls behave alike under torch.autocast. CUDA computes in the
// autocast dtype (its kernels take float16 and bfloat16, accumulating in
// float32); the CPU, which has no half-precision kernels, computes in float32.
// float64 inputs are never cast. The outputs come back in the dtype computed in.
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "layer_op.h"

namespace rnn_fused {
namespace {

template <c10::DeviceType kDevice>
LayerOutputs layer_forward_autocast(const at::Tensor& input, const at::Tensor& weight_ih,
                                    const at::Tensor& weight_hh, const OptionalTensor& bias_ih,
                                    const OptionalTensor& bias_hh, const at::Tensor& hx,
                                    const OptionalTensor& cx, const OptionalTensor& mask,
                                    const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                                    c10::string_view cell, bool reverse,
                                    c10::string_view backend, const OptionalTensor& weight_hr) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  if (input.scalar_type() == at::kDouble) {
    return layer_forward_op().call(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask,
                                   reset_h, reset_c, cell, reverse, backend, weight_hr);
  }
  const at::ScalarType dtype =
      kDevice == c10::DeviceType::CUDA ? at::autocast::get_autocast_dtype(kDevice) : at::kFloat;
  const auto cast = [&](const auto& t) { return at::autocast::cached_cast(dtype, t, kDevice); };
  return layer_forward_op().call(cast(input), cast(weight_ih), cast(weight_hh), cast(bias_ih),
                                 cast(bias_hh), cast(hx), cast(cx), cast(mask), cast(reset_h),
                                 cast(reset_c), cell, reverse, backend, cast(weight_hr));
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, AutocastCPU, m) {
  m.impl("layer_forward", &layer_forward_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(rnn_fused, AutocastCUDA, m) {
  m.impl("layer_forward", &layer_forward_autocast<c10::DeviceType::CUDA>);
}

}  // namespace rnn_fused
