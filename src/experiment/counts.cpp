// Scaling the paper's neuron counts to a model. The paper zeroes 10, 100, 200 and 1000 neurons of
// GPT2-large (184,320 FFN and 46,080 attention neurons) and Llama-7B; on a 2-layer model with 768
// FFN neurons, 1000 would be more than all of them. So each count is capped at a fixed fraction of
// the neurons of its kind. The cap leaves the paper's models at the paper's counts (5% of GPT2-large's
// FFN neurons is 9,216 > 1000) and shrinks only where a count would otherwise be a large part of
// the model.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "reslens/error.h"
#include "reslens/experiment.h"

namespace reslens {

ExperimentCounts experiment_counts(const ModelConfig& c, const ExperimentOptions& o) {
  if (!(o.max_fraction > 0 && o.max_fraction <= 1)) {
    throw InvalidArgument("max_fraction must be in (0, 1], got " + std::to_string(o.max_fraction));
  }
  for (const int v : {o.ffn_top, o.attn_top, o.attn_ffn_top, o.query_top, o.shared_set, o.filter_top_k,
                      o.query_value_neurons}) {
    if (v < 1) throw InvalidArgument("experiment counts must be at least 1, got " + std::to_string(v));
  }
  ExperimentCounts k;
  k.ffn_neurons = c.n_layers * c.d_mlp;
  k.attn_neurons = c.n_layers * c.n_heads * c.d_head;
  k.max_fraction = o.max_fraction;
  const auto cap = [&](int paper, int64_t of) {
    const auto limit = std::max<int64_t>(1, static_cast<int64_t>(std::floor(o.max_fraction * static_cast<double>(of))));
    return static_cast<int>(std::min<int64_t>(paper, limit));
  };
  k.ffn_top = cap(o.ffn_top, k.ffn_neurons);
  k.attn_top = cap(o.attn_top, k.attn_neurons);
  k.attn_ffn_top = cap(o.attn_ffn_top, k.ffn_neurons);
  k.query_top = cap(o.query_top, k.ffn_neurons);
  k.shared_set = cap(o.shared_set, k.ffn_neurons);
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "each count = min(paper count, max(1, floor(%g x neurons of its kind))); this model has %lld FFN "
                "and %lld attention neurons: FFN top %d->%d, attention top %d->%d + FFN top %d->%d, query FFN top "
                "%d->%d, shared-neuron sets %d->%d",
                o.max_fraction, static_cast<long long>(k.ffn_neurons), static_cast<long long>(k.attn_neurons),
                o.ffn_top, k.ffn_top, o.attn_top, k.attn_top, o.attn_ffn_top, k.attn_ffn_top, o.query_top, k.query_top,
                o.shared_set, k.shared_set);
  k.rule = buf;
  return k;
}

}  // namespace reslens
