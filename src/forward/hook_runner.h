// HookRunner: the forward hooks of one run (RunOptions::hooks), indexed by hook point so the pass
// asks "is anything hooked here?" with one lookup, and calls the callbacks in the order given.
// Internal to forward/; the public side is reslens/forward_hooks.h.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "reslens/forward_hooks.h"
#include "reslens/hooks.h"
#include "reslens/model.h"

namespace reslens {

class HookRunner {
 public:
  /// Validates every pattern against the model (InvalidArgument for a pattern that matches no hook,
  /// OutOfRange for a layer past the model's) and resolves it to the hook points it names.
  HookRunner(const Model& model, std::span<const ForwardHook> hooks);

  bool wants(Hook h, int layer) const {
    return !slots_.empty() && !slots_[index(h, layer)].empty();
  }
  /// Runs the callbacks of (h, layer) on `values` ([shape] floats), in order, each seeing the
  /// previous one's output.
  void call(Hook h, int layer, std::vector<int64_t> shape, std::span<float> values);
  /// The same for a point whose values the pass does not read back (the norm scales): the
  /// callbacks may read them, and UnsupportedError names the hook when one changes them.
  void call_read_only(Hook h, int layer, std::vector<int64_t> shape, std::span<const float> values);
  /// After the pass: InvalidArgument when a hook given by exact name never ran (a point this model
  /// does not compute, e.g. hook_pos_embed on a rotary model).
  void check_all_ran() const;

 private:
  size_t index(Hook h, int layer) const {
    return static_cast<size_t>(layer + 1) * static_cast<size_t>(kHookCount) + static_cast<size_t>(h);
  }
  std::span<const ForwardHook> hooks_;
  std::vector<std::vector<size_t>> slots_;  // [(n_layers + 1) * kHookCount] indices into hooks_
  std::vector<bool> ran_;                   // [hooks_.size()]
};

}  // namespace reslens
