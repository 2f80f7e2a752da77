#include "families.h"

#include <algorithm>

namespace rnn_fused {
namespace {

// Filled by the registrars while the library loads, read-only after.
std::vector<Family>& registry() {
  static std::vector<Family> all;
  return all;
}

}  // namespace

void register_family(const Family& family) { registry().push_back(family); }

const std::vector<Family>& families() { return registry(); }

std::vector<std::string> backend_names() {
  // The families most often run first: the per-step loop, then the kernels
  // 'auto' would ask last.
  std::vector<const Family*> ordered;
  for (const Family& family : families()) ordered.push_back(&family);
  std::stable_sort(ordered.begin(), ordered.end(), [](const Family* a, const Family* b) {
    return a->auto_order > b->auto_order;
  });
  std::vector<std::string> names = {"auto"};
  for (const Family* family : ordered) {
    if (std::find(names.begin(), names.end(), family->name) == names.end()) {
      names.emplace_back(family->name);
    }
  }
  return names;
}

}  // namespace rnn_fused
