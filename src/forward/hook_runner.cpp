#include "forward/hook_runner.h"

#include <algorithm>
#include <cstring>

#include "reslens/error.h"

namespace reslens {

HookRunner::HookRunner(const Model& model, std::span<const ForwardHook> hooks) : hooks_(hooks) {
  if (hooks.empty()) return;  // slots_ stays empty: wants() is one branch
  const int n_layers = static_cast<int>(model.config().n_layers);
  slots_.resize(static_cast<size_t>(n_layers + 1) * static_cast<size_t>(kHookCount));
  ran_.assign(hooks.size(), false);
  for (size_t i = 0; i < hooks.size(); ++i) {
    const ForwardHook& fh = hooks[i];
    if (!fh.fn) throw InvalidArgument("forward hook '" + fh.pattern + "' has no callback");
    (void)HookFilter::from_patterns({fh.pattern});  // InvalidArgument, with the nearest name
    if (fh.pattern.find('*') == std::string::npos) {
      const HookName name = HookName::parse(fh.pattern);
      if (name.layer >= n_layers) {
        throw OutOfRange("forward hook '" + fh.pattern + "': layer " + std::to_string(name.layer) +
                         " is out of range (the model has " + std::to_string(n_layers) + " layers)");
      }
    }
    for (int h = 0; h < kHookCount; ++h) {
      const Hook hook = static_cast<Hook>(h);
      const bool per_layer = hook_is_per_layer(hook);
      for (int l = per_layer ? 0 : -1; l < (per_layer ? n_layers : 0); ++l) {
        if (glob_match(fh.pattern, HookName{hook, l}.to_string())) slots_[index(hook, l)].push_back(i);
      }
    }
  }
}

void HookRunner::call(Hook h, int layer, std::vector<int64_t> shape, std::span<float> values) {
  HookActivation a{HookName{h, layer}, shape, values};
  for (const size_t i : slots_[index(h, layer)]) {
    ran_[i] = true;
    hooks_[i].fn(a);
  }
}

void HookRunner::call_read_only(Hook h, int layer, std::vector<int64_t> shape, std::span<const float> values) {
  std::vector<float> copy(values.begin(), values.end());
  call(h, layer, std::move(shape), copy);
  if (std::memcmp(copy.data(), values.data(), values.size() * sizeof(float)) != 0) {
    throw UnsupportedError("forward hook on '" + HookName{h, layer}.to_string() +
                           "' changed a norm scale, which the pass does not read back; hook the "
                           "normalized output (hook_normalized) or the sublayer's output instead");
  }
}

void HookRunner::check_all_ran() const {
  for (size_t i = 0; i < hooks_.size(); ++i) {
    if (!ran_[i] && hooks_[i].pattern.find('*') == std::string::npos) {
      throw InvalidArgument("forward hook '" + hooks_[i].pattern + "': this model does not compute that hook");
    }
  }
}

}  // namespace reslens
