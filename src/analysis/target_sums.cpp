// TargetSums: a multi-token target's scores summed over its teacher-forced steps (docs/explain.md,
// "Targets of several tokens"). Every level adds the steps' own scores: a head, an FFN neuron or an
// attention neuron is one parameter at every step, so the sum is its part in log p(target). Arrays
// over source positions are padded: step t has sources 0..P+t, and a later position is no source
// of it (its share there is exactly 0), so the step adds into the first P+t+1 entries.
#include "analysis/target_sums.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "analysis/ranking.h"
#include "reslens/error.h"

namespace reslens::analysis {

namespace {

// `into` += sign * `from`, where both are row-major and `from`'s last axis may be shorter: each of
// its rows lands at the start of `into`'s row (the source positions a step has).
void add_padded(ScoreArray& into, const ScoreArray& from, double sign) {
  if (from.values.empty()) return;
  if (into.shape.size() != from.shape.size() || !std::equal(from.shape.begin(), from.shape.end() - 1, into.shape.begin()) ||
      from.shape.back() > into.shape.back()) {
    throw InternalError("sum_target_steps: a step's array does not fit the summed shape");
  }
  const int64_t n_into = into.shape.back(), n_from = from.shape.back();
  const int64_t rows = n_from == 0 ? 0 : from.size() / n_from;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t p = 0; p < n_from; ++p) {
      into.values[static_cast<size_t>(r * n_into + p)] += sign * from.values[static_cast<size_t>(r * n_from + p)];
    }
  }
}

void add(std::vector<double>& into, const std::vector<double>& from, double sign) {
  if (into.size() != from.size()) throw InternalError("sum_target_steps: vectors of different lengths");
  for (size_t i = 0; i < into.size(); ++i) into[i] += sign * from[i];
}

// The shape of `a` with its last axis (source positions) set to n.
ScoreArray zeros_like(const ScoreArray& a, int64_t n_last) {
  std::vector<int64_t> s = a.shape;
  if (!s.empty()) s.back() = n_last;
  return ScoreArray(s);
}

// One step's scores, with `sign`, into the summed contrast (the step's plain scores: a term of the
// target's or the foil's own log-probability).
void add_scores_to_contrast(TargetSums& s, const Explanation& ex, double sign) {
  add(s.contrast_attn_layer, ex.attn_layer, sign);
  add(s.contrast_ffn_layer, ex.ffn_layer, sign);
  add_padded(s.contrast_head, ex.head, sign);
  add_padded(s.contrast_ffn_neuron, ex.ffn_neuron, sign);
  add_padded(s.contrast_attn_neuron, ex.attn_neuron, sign);
  add_padded(s.contrast_expert, ex.expert, sign);
}

// The one-position contrast of the step where target and foil part in the same context.
void add_step_contrast(TargetSums& s, const Explanation& ex) {
  if (!ex.has_contrast) throw InternalError("sum_target_steps: the contrast step has no contrast");
  add(s.contrast_attn_layer, ex.contrast_attn_layer, 1.0);
  add(s.contrast_ffn_layer, ex.contrast_ffn_layer, 1.0);
  add_padded(s.contrast_head, ex.contrast_head, 1.0);
  add_padded(s.contrast_ffn_neuron, ex.contrast_ffn_neuron, 1.0);
  add_padded(s.contrast_attn_neuron, ex.contrast_attn_neuron, 1.0);
  add_padded(s.contrast_expert, ex.contrast_expert, 1.0);
}

}  // namespace

void count_query_sets(TargetSums& s, int set_size) {
  const int64_t L = s.ffn_neuron.shape.at(0), N = s.ffn_neuron.shape.at(1);
  const std::vector<int64_t> value_set = top_indices(s.ffn_neuron.values, set_size);
  const std::vector<int64_t> query_set = top_indices(s.query_ffn_neuron.values, set_size);
  const std::set<int64_t> values(value_set.begin(), value_set.end());
  s.query_only_per_layer.assign(static_cast<size_t>(L), 0);
  s.query_value_per_layer.assign(static_cast<size_t>(L), 0);
  for (const int64_t idx : query_set) {
    auto& counts = values.count(idx) != 0 ? s.query_value_per_layer : s.query_only_per_layer;
    ++counts[static_cast<size_t>(idx / N)];
  }
}

TargetSums sum_target_steps(const ExplainedTarget& done, int set_size, double foil_log_prob) {
  const std::vector<TargetStep>& steps = done.target_pass.steps;
  if (steps.empty()) throw InternalError("sum_target_steps: no steps");
  const Explanation& last = steps.back().explanation;  // the longest source-position axis
  TargetSums s;
  s.n_steps = static_cast<int>(steps.size());
  s.n_positions = last.n_positions;
  s.attn_layer.assign(last.attn_layer.size(), 0.0);
  s.ffn_layer.assign(last.ffn_layer.size(), 0.0);
  s.head = zeros_like(last.head, last.head.shape.back());
  s.head_position = zeros_like(last.head_position, s.n_positions);
  s.ffn_neuron = zeros_like(last.ffn_neuron, last.ffn_neuron.shape.back());
  if (!last.expert.values.empty()) s.expert = zeros_like(last.expert, last.expert.shape.back());
  s.attn_neuron = zeros_like(last.attn_neuron, s.n_positions);
  s.query_ffn_neuron = zeros_like(last.query_ffn_neuron, last.query_ffn_neuron.shape.back());
  for (const QueryLayers& q : last.ffn_value_query_layers) {
    s.ffn_value_query_layers.push_back({q.key, std::vector<double>(q.slots.size(), 0.0)});
  }
  s.attn_value_query_layers = {last.attn_value_query_layers.key,
                               std::vector<double>(last.attn_value_query_layers.slots.size(), 0.0)};

  for (const TargetStep& step : steps) {
    const Explanation& ex = step.explanation;
    s.log_prob += ex.real_log_prob;
    s.bs_log_prob_final += ex.bs_log_prob_final;
    s.bs_log_prob_embedding += ex.bs_log_prob_embedding;
    add(s.attn_layer, ex.attn_layer, 1.0);
    add(s.ffn_layer, ex.ffn_layer, 1.0);
    add_padded(s.head, ex.head, 1.0);
    add_padded(s.head_position, ex.head_position, 1.0);
    add_padded(s.ffn_neuron, ex.ffn_neuron, 1.0);
    add_padded(s.expert, ex.expert, 1.0);
    add_padded(s.attn_neuron, ex.attn_neuron, 1.0);
    add_padded(s.query_ffn_neuron, ex.query_ffn_neuron, 1.0);
    if (ex.ffn_value_query_layers.size() != s.ffn_value_query_layers.size()) {
      throw InternalError("sum_target_steps: steps with different query-layer keys");
    }
    for (size_t v = 0; v < ex.ffn_value_query_layers.size(); ++v) {
      add(s.ffn_value_query_layers[v].slots, ex.ffn_value_query_layers[v].slots, 1.0);
    }
    add(s.attn_value_query_layers.slots, ex.attn_value_query_layers.slots, 1.0);
  }
  count_query_sets(s, set_size);

  // Identities: the summed layer scores telescope to the summed bs increases (each step's do to its
  // own), and the steps' own checks, worst over every step of both passes.
  double layers = 0;
  for (size_t l = 0; l < s.attn_layer.size(); ++l) layers += s.attn_layer[l] + s.ffn_layer[l];
  s.checks["telescoping"] = std::abs(layers - (s.bs_log_prob_final - s.bs_log_prob_embedding));
  for (const std::vector<TargetStep>* pass : {&steps, &done.foil_pass.steps}) {
    for (const TargetStep& step : *pass) {
      for (const auto& [key, value] : step.explanation.checks) {
        double& worst = s.checks["steps_" + key];
        worst = std::max(worst, value);
      }
    }
  }

  if (done.foil.empty()) return s;
  // The contrast of the sequences: log p(target) - log p(foil) = the target's step terms minus the
  // foil's. Before the sequences part both read the same token in the same context (the terms
  // cancel); where they part, in one context, the step's own contrast; after, each in its pass.
  s.has_contrast = true;
  s.foil_log_prob = foil_log_prob;
  int64_t n_c = s.n_positions;
  for (const TargetStep& step : done.foil_pass.steps) n_c = std::max(n_c, step.explanation.n_positions);
  s.contrast_attn_layer.assign(s.attn_layer.size(), 0.0);
  s.contrast_ffn_layer.assign(s.ffn_layer.size(), 0.0);
  s.contrast_head = zeros_like(s.head, s.head.shape.back());
  s.contrast_ffn_neuron = zeros_like(s.ffn_neuron, s.ffn_neuron.shape.back());
  s.contrast_attn_neuron = zeros_like(s.attn_neuron, n_c);
  if (!s.expert.values.empty()) s.contrast_expert = zeros_like(s.expert, s.expert.shape.back());
  for (size_t t = 0; t < steps.size(); ++t) {
    if (static_cast<int>(t) == done.contrast_step) {
      add_step_contrast(s, steps[t].explanation);
    } else if (static_cast<int>(t) >= done.first_foil_step) {
      add_scores_to_contrast(s, steps[t].explanation, 1.0);
    }
  }
  for (const TargetStep& step : done.foil_pass.steps) add_scores_to_contrast(s, step.explanation, -1.0);
  return s;
}

}  // namespace reslens::analysis
