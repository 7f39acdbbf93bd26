#include "experiment/selection.h"

#include <set>
#include <tuple>

#include "analysis/ranking.h"

namespace reslens::experiment_impl {

void add_ffn(Intervention& iv, const std::vector<int64_t>& flat, int64_t d_mlp) {
  for (const int64_t i : flat) iv.ffn_neurons.push_back({static_cast<int>(i / d_mlp), static_cast<int>(i % d_mlp)});
}

std::vector<int64_t> top(const std::vector<double>& scores, int64_t k) { return analysis::top_indices(scores, k); }

std::vector<int64_t> top_positive(const std::vector<double>& scores, int64_t k) {
  std::vector<int64_t> idx = analysis::top_indices(scores, k);
  size_t n = 0;
  while (n < idx.size() && scores[static_cast<size_t>(idx[n])] > 0) ++n;
  idx.resize(n);
  return idx;
}

void add_top_attn(Intervention& iv, const ScoreArray& attn_neuron, int64_t k) {
  const int64_t H = attn_neuron.shape[1], dh = attn_neuron.shape[2], T = attn_neuron.shape[3];
  // Every entry may be needed when many top entries share a (layer, head, dim).
  const std::vector<int64_t> order = analysis::top_indices(attn_neuron.values, attn_neuron.size());
  std::set<std::tuple<int64_t, int64_t, int64_t>> taken;
  for (const int64_t idx : order) {
    if (static_cast<int64_t>(taken.size()) == k) break;
    const int64_t n = idx / T % dh, h = idx / T / dh % H, l = idx / T / dh / H;
    if (taken.insert({l, h, n}).second) {
      iv.attn_neurons.push_back({static_cast<int>(l), static_cast<int>(h), static_cast<int>(n), -1});
    }
  }
}

void add_random_ffn(Intervention& iv, Rng& rng, int64_t k, int64_t n_layers, int64_t d_mlp) {
  add_ffn(iv, rng.distinct(k, n_layers * d_mlp), d_mlp);
}

void add_random_attn(Intervention& iv, Rng& rng, int64_t k, int64_t n_layers, int64_t n_heads, int64_t d_head) {
  for (const int64_t i : rng.distinct(k, n_layers * n_heads * d_head)) {
    iv.attn_neurons.push_back({static_cast<int>(i / d_head / n_heads), static_cast<int>(i / d_head % n_heads),
                               static_cast<int>(i % d_head), -1});
  }
}

}  // namespace reslens::experiment_impl
