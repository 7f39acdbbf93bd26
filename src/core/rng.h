// The random baselines' generator (`reslens ablate`'s and the experiments'): splitmix64, integer
// operations only, so a seed draws the same neurons on every platform and compiler
// (std::uniform_int_distribution is not portable). An experiment gives each sentence and each kind
// of baseline its own stream, derived from (seed, sentence index, stream), so draws do not depend on
// the thread count, the shard, or which other baselines run.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <vector>

namespace reslens {

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  Rng(uint64_t seed, uint64_t index, uint64_t stream) : s_(mix(mix(mix(seed) ^ index) ^ stream)) {}

  uint64_t next() {
    s_ += 0x9e3779b97f4a7c15ull;
    return mix(s_);
  }
  /// Uniform in [0, n) by rejection (no modulo bias).
  int64_t below(int64_t n) {
    const auto un = static_cast<uint64_t>(n);
    const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % un;
    uint64_t x = next();
    while (x >= limit) x = next();
    return static_cast<int64_t>(x % un);
  }
  /// k distinct values in [0, n), in the order drawn (k <= n).
  std::vector<int64_t> distinct(int64_t k, int64_t n) {
    std::vector<int64_t> out;
    std::set<int64_t> used;
    while (static_cast<int64_t>(out.size()) < k) {
      const int64_t v = below(n);
      if (used.insert(v).second) out.push_back(v);
    }
    return out;
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_;
};

}  // namespace reslens
