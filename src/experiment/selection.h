// Which neurons an intervention zeroes (spec A7, parameter level): the top neurons of a score, or
// random neurons of the same number. Internal.
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "reslens/explain.h"
#include "reslens/run.h"

namespace reslens::experiment_impl {

/// FFN neurons at flat indices l * d_mlp + k.
void add_ffn(Intervention& iv, const std::vector<int64_t>& flat, int64_t d_mlp);

/// The k highest scores' flat indices (ties: the later index first, as explain's lists).
std::vector<int64_t> top(const std::vector<double>& scores, int64_t k);
/// The same, keeping only scores > 0 (a query score of 0 means "activates none of the value
/// neurons": such a neuron is no query neuron, and on a shallow model many FFN neurons sit above
/// every analysed attention neuron and score exactly 0).
std::vector<int64_t> top_positive(const std::vector<double>& scores, int64_t k);

/// Attention value neurons are scored per source position, [L, H, d_head, P+1], but a parameter
/// (a W_O column) serves every position: walk the ranking and zero the first k distinct
/// (layer, head, dim), so that exactly k parameter neurons go, as many as the random baseline's.
void add_top_attn(Intervention& iv, const ScoreArray& attn_neuron, int64_t k);

/// k distinct random FFN neurons / attention neurons (parameter level) of the whole model.
void add_random_ffn(Intervention& iv, Rng& rng, int64_t k, int64_t n_layers, int64_t d_mlp);
void add_random_attn(Intervention& iv, Rng& rng, int64_t k, int64_t n_layers, int64_t n_heads, int64_t d_head);

}  // namespace reslens::experiment_impl
