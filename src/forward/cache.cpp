#include "reslens/cache.h"

#include <algorithm>

#include "reslens/error.h"

namespace reslens {

bool ActivationCache::contains(std::string_view name) const {
  try {
    return contains(HookName::parse(name));
  } catch (const InvalidArgument&) {
    return false;
  }
}

const Tensor& ActivationCache::at(const HookName& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw InvalidArgument("hook '" + name.to_string() +
                          "' was not recorded by this run (request it in RunOptions::capture)");
  }
  return it->second;
}

std::vector<HookName> ActivationCache::names() const {
  std::vector<HookName> out;
  out.reserve(tensors_.size());
  for (const auto& [name, tensor] : tensors_) out.push_back(name);
  // Forward order: embeddings, then each layer's hooks in the order they happen, then ln_final.
  auto rank = [](const HookName& n) {
    const int layer_key = hook_is_per_layer(n.hook) ? n.layer + 1
                          : (n.hook == Hook::kEmbed || n.hook == Hook::kPosEmbed) ? 0
                                                                                    : 1 << 30;
    return std::pair<int, int>(layer_key, static_cast<int>(n.hook));
  };
  std::sort(out.begin(), out.end(), [&](const HookName& a, const HookName& b) { return rank(a) < rank(b); });
  return out;
}

int64_t ActivationCache::bytes() const {
  int64_t n = 0;
  for (const auto& [name, tensor] : tensors_) n += tensor.numel() * static_cast<int64_t>(sizeof(float));
  return n;
}

Tensor& ActivationCache::put(const HookName& name, Tensor tensor) {
  auto& slot = tensors_[name];
  slot = std::move(tensor);
  return slot;
}

}  // namespace reslens
