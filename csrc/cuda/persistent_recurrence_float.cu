// The persistent recurrence for float, in its own translation unit so that the
// dtypes compile in parallel.
#include "persistent_launch.cuh"

namespace rnn_fused {

template bool persistent_forward<float>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const c10::optional<at::Tensor>&,
                                     const c10::optional<at::Tensor>&, Activation, bool);
template bool persistent_backward<float>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&,
                                      const c10::optional<at::Tensor>&, Activation, bool);

}  // namespace rnn_fused
