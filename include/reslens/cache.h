// ActivationCache: the tensors a forward pass recorded, indexed by hook name. Immutable after the
// run. Analysis functions read it together with the Model; nothing in it points back to the model.
#pragma once

#include <map>
#include <string_view>
#include <vector>

#include "reslens/hooks.h"
#include "reslens/tensor.h"

namespace reslens {

class ActivationCache {
 public:
  bool contains(const HookName& name) const { return tensors_.count(name) != 0; }
  bool contains(std::string_view name) const;
  /// Throws InvalidArgument when the hook was not recorded (naming it and how to request it).
  const Tensor& at(const HookName& name) const;
  const Tensor& at(std::string_view name) const { return at(HookName::parse(name)); }
  const Tensor& at(Hook hook, int layer = -1) const { return at(HookName{hook, layer}); }
  /// Recorded names in forward order (model-level first, then by layer, then by hook).
  std::vector<HookName> names() const;
  size_t size() const { return tensors_.size(); }
  /// Total bytes held.
  int64_t bytes() const;

  /// Used by the forward pass: stores (replacing) a tensor.
  Tensor& put(const HookName& name, Tensor tensor);

 private:
  std::map<HookName, Tensor> tensors_;
};

}  // namespace reslens
