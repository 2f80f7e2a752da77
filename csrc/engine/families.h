// The kernel families: each one registers itself (RNN_FUSED_REGISTER_FAMILY in
// its own folder) with the name that the `backend` argument gives it, its
// device, its planner, its forward and backward over a LayerParams, and its
// profiler scopes. The engine knows no device and no family beyond this list.
#pragma once

#include <string>
#include <vector>

#include <c10/core/DeviceType.h>

#include "params.h"
#include "plan.h"

namespace rnn_fused {

struct Family {
  const char* name;
  c10::DeviceType device;
  // Under 'auto', a device's families are asked in this order; the first that
  // plans runs (the per-step loop, which always does, is last).
  int auto_order;
  // Whether the family runs `query` (backend 'auto' or its own name), setting
  // its config; it says why in `why`, where given: what runs, or what does not
  // fit, or why it declines under 'auto'.
  bool (*plan)(const PlanQuery& query, std::array<int, 4>& config, std::string* why);
  ForwardResult (*forward)(const ForwardParams& params);
  void (*backward)(const BackwardParams& params, Gradients& gradients);
  // The profiler's names of the forward and the backward.
  const char* forward_scope;
  const char* backward_scope;
  // The LayerFeature bits it runs; a call asking for others is declined before
  // plan() is asked.
  unsigned features = 0;
};

void register_family(const Family& family);

// Every registered family, in registration order.
const std::vector<Family>& families();

// The backend names of this build: 'auto', then every family's name once, in
// descending auto_order.
std::vector<std::string> backend_names();

struct FamilyRegistrar {
  explicit FamilyRegistrar(const Family& family) { register_family(family); }
};

#define RNN_FUSED_REGISTER_FAMILY(id, ...) \
  static const ::rnn_fused::FamilyRegistrar id##_registrar{::rnn_fused::Family{__VA_ARGS__}};

}  // namespace rnn_fused
