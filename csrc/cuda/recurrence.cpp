#include "recurrence.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/record_function.h>

#include "per_step/recurrence.h"
#include "cluster/entry_points.h"
#include "gated_persistent/entry_points.h"
#include "persistent/entry_points.h"
#include "tiled/entry_points.h"

namespace rnn_fused {

void CudaRecurrence::forward(const RecurrenceParams& p) {
  if (p.plan.path == Path::CudaCluster) {
    RECORD_FUNCTION("rnn_fused::cuda_forward(cluster)", std::vector<c10::IValue>());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                    "rnn_fused::cluster_forward",
                                    [&] { cluster_forward<scalar_t>(p); });
    return;
  }
  if (p.plan.path == Path::CudaTiledCluster) {
    RECORD_FUNCTION("rnn_fused::cuda_forward(cluster)", std::vector<c10::IValue>());
    AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "rnn_fused::tiled_forward",
                               [&] { tiled_forward<scalar_t>(p); });
    return;
  }
  if (p.plan.path != Path::CudaPersistent) {
    RECORD_FUNCTION("rnn_fused::cuda_forward(per-step)", std::vector<c10::IValue>());
    return per_step_forward(p);
  }
  RECORD_FUNCTION("rnn_fused::cuda_forward(persistent)", std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                  "rnn_fused::persistent_forward",
                                  [&] { persistent_forward<scalar_t>(p); });
}

void CudaRecurrence::backward(const RecurrenceGradParams& p) {
  if (p.plan.path == Path::CudaCluster) {
    RECORD_FUNCTION("rnn_fused::cuda_backward(cluster)", std::vector<c10::IValue>());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                    "rnn_fused::cluster_backward",
                                    [&] { cluster_backward<scalar_t>(p); });
    return;
  }
  if (p.plan.path == Path::CudaTiledCluster) {
    RECORD_FUNCTION("rnn_fused::cuda_backward(cluster)", std::vector<c10::IValue>());
    AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "rnn_fused::tiled_backward",
                               [&] { tiled_backward<scalar_t>(p); });
    return;
  }
  if (p.plan.path != Path::CudaPersistent) {
    RECORD_FUNCTION("rnn_fused::cuda_backward(per-step)", std::vector<c10::IValue>());
    return per_step_backward(p);
  }
  RECORD_FUNCTION("rnn_fused::cuda_backward(persistent)", std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                  "rnn_fused::persistent_backward",
                                  [&] { persistent_backward<scalar_t>(p); });
}

void CudaRecurrence::gated_persistent_forward(const GatedRecurrenceForward& p) {
  RECORD_FUNCTION("rnn_fused::cuda_gated_forward(persistent)", std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype,
                                  "rnn_fused::gated_persistent_forward",
                                  [&] { rnn_fused::gated_persistent_forward<scalar_t>(p); });
}

void CudaRecurrence::gated_persistent_backward(const GatedRecurrenceBackward& p) {
  RECORD_FUNCTION("rnn_fused::cuda_gated_backward(persistent)", std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype,
                                  "rnn_fused::gated_persistent_backward",
                                  [&] { rnn_fused::gated_persistent_backward<scalar_t>(p); });
}

void CudaRecurrence::blend_carries(at::Tensor& target, const at::Tensor& values,
                                   const at::Tensor& mask, const at::Tensor& reset) {
  const at::Tensor m = mask.unsqueeze(-1);
  // A kept row never reads the reset state: lerp would make NaN of an infinite one.
  target.copy_(at::where(m == 1, values, m * values + (1 - m) * reset));
}

}  // namespace rnn_fused
