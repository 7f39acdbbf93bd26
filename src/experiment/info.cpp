// What a set of results was computed from, and whether two sets can be combined (a resumed run with
// its earlier part, shards with each other).
#include <string>

#include "reslens/experiment.h"

namespace reslens {

ExperimentInfo experiment_info(const Model& model, const Dataset& dataset, const ExperimentOptions& options) {
  const ModelConfig& c = model.config();
  ExperimentInfo i;
  i.model = model.path().string();
  // The path can differ between machines that share a run's shards; the model's shape cannot.
  i.model_id = std::string(to_string(c.architecture)) + " L" + std::to_string(c.n_layers) + " d" +
               std::to_string(c.d_model) + " H" + std::to_string(c.n_heads) + "/" +
               std::to_string(c.n_key_value_heads) + " dh" + std::to_string(c.d_head) + " N" +
               std::to_string(c.d_mlp) + " V" + std::to_string(c.d_vocab) + " params " +
               std::to_string(model.n_params()) + " " + c.dtype;
  i.n_layers = c.n_layers;
  i.n_heads = c.n_heads;
  i.d_head = c.d_head;
  i.d_mlp = c.d_mlp;
  i.d_vocab = c.d_vocab;
  i.dataset = dataset.name;
  i.dataset_fingerprint = dataset.fingerprint;
  i.dataset_sentences = static_cast<int64_t>(dataset.sentences.size());
  i.dataset_skipped_lines = static_cast<int64_t>(dataset.skipped.size());
  i.options = options;
  i.counts = experiment_counts(c, options);
  return i;
}

std::string experiment_info_mismatch(const ExperimentInfo& a, const ExperimentInfo& b) {
  std::string out;
  auto check = [&](bool same, const char* what) {
    if (!same) out += std::string(out.empty() ? "" : ", ") + what;
  };
  const ExperimentOptions &x = a.options, &y = b.options;
  check(a.model_id == b.model_id, "model");
  check(a.dataset_fingerprint == b.dataset_fingerprint && a.dataset_sentences == b.dataset_sentences, "dataset contents");
  check(x.filter_top_k == y.filter_top_k, "filter top-k");
  check(x.ffn_top == y.ffn_top && x.attn_top == y.attn_top && x.attn_ffn_top == y.attn_ffn_top &&
            x.query_top == y.query_top && x.shared_set == y.shared_set && x.max_fraction == y.max_fraction,
        "neuron counts");
  check(x.query_value_neurons == y.query_value_neurons, "query value neurons");
  check(x.baselines == y.baselines, "baselines");
  check(x.random == y.random, "random baselines");
  check(x.seed == y.seed, "seed");
  check(x.add_bos == y.add_bos, "BOS setting");
  check(x.parse_special == y.parse_special, "special-token parsing");
  return out;
}

}  // namespace reslens
