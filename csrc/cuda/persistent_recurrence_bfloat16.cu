// The persistent recurrence for bfloat16, in its own translation unit so that the
// dtypes compile in parallel.
#include "persistent_launch.cuh"

namespace rnn_fused {

template bool persistent_forward<c10::BFloat16>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const c10::optional<at::Tensor>&,
                                     const c10::optional<at::Tensor>&, Activation, bool);
template bool persistent_backward<c10::BFloat16>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&,
                                      const c10::optional<at::Tensor>&, Activation, bool);

}  // namespace rnn_fused
