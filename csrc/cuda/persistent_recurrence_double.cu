// The persistent recurrence for double, in its own translation unit so that the
// dtypes compile in parallel.
#include "persistent_launch.cuh"

namespace rnn_fused {

template bool persistent_forward<double>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                     const c10::optional<at::Tensor>&,
                                     const c10::optional<at::Tensor>&, Activation, bool);
template bool persistent_backward<double>(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                      const at::Tensor&, const at::Tensor&,
                                      const c10::optional<at::Tensor>&, Activation, bool);

}  // namespace rnn_fused
