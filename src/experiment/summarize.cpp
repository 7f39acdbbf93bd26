// Aggregation over sentences, per knowledge type and overall: the paper's Table 2 and intervention
// tables (means of reciprocal rank, probability, log-probability), Table 3 and Fig 4-5 (layer and
// head importance), and the shared-neuron rates of §5.2. Means are taken over kept sentences in
// index order, so the same results give the same bits however they were split or ordered.
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include "analysis/ranking.h"
#include "reslens/error.h"
#include "reslens/experiment.h"
#include "reslens/report.h"

namespace reslens {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The intervention rows the options ask for, in table order, with their labels.
std::vector<std::pair<std::string, std::string>> intervention_rows(const ExperimentInfo& info) {
  const ExperimentCounts& k = info.counts;
  const bool rnd = info.options.random;
  const std::string f = std::to_string(k.ffn_top);
  std::vector<std::pair<std::string, std::string>> rows = {
      {"ffn_top", "top-" + f + " FFN value neurons (log-prob increase)"}};
  if (rnd) rows.push_back({"ffn_random", "random " + f + " FFN neurons"});
  rows.push_back({"attn_ffn_top", "top-" + std::to_string(k.attn_top) + " attention + top-" +
                                      std::to_string(k.attn_ffn_top) + " FFN value neurons"});
  if (rnd) {
    rows.push_back({"attn_ffn_random", "random " + std::to_string(k.attn_top) + " attention + " +
                                           std::to_string(k.attn_ffn_top) + " FFN neurons"});
  }
  rows.push_back({"query_top", "top-" + std::to_string(k.query_top) + " query FFN neurons (Q3 > 0)"});
  if (rnd) rows.push_back({"query_random", "random FFN neurons, as many as the query neurons"});
  if (info.options.baselines) {
    for (const char* s : kBaselineScores) rows.push_back({std::string("score:") + s, "top-" + f + " FFN neurons by " + s});
  }
  return rows;
}

double decrease(double before, double after) {
  return before == 0 || std::isnan(before) ? kNaN : (before - after) / std::abs(before) * 100.0;
}

// Per kept sentence: the share of its top value (query) neurons that more than half of the type's
// kept sentences have in their own top set. Sentences with an empty set (no query neuron scored
// > 0) have no rate.
std::map<int64_t, double> shared_rates(const std::vector<const SentenceResult*>& kept, bool query) {
  std::map<int64_t, int64_t> count;
  for (const SentenceResult* r : kept) {
    for (const int64_t n : query ? r->query_set : r->value_set) ++count[n];
  }
  std::map<int64_t, double> rate;
  for (const SentenceResult* r : kept) {
    const auto& set = query ? r->query_set : r->value_set;
    if (set.empty()) continue;
    int64_t shared = 0;
    for (const int64_t n : set) shared += 2 * count[n] > static_cast<int64_t>(kept.size()) ? 1 : 0;
    rate[r->index] = static_cast<double>(shared) / static_cast<double>(set.size());
  }
  return rate;
}

double mean_of(const std::map<int64_t, double>& rates, const std::vector<const SentenceResult*>& kept) {
  double s = 0;
  int64_t n = 0;
  for (const SentenceResult* r : kept) {
    if (const auto it = rates.find(r->index); it != rates.end()) {
      s += it->second;
      ++n;
    }
  }
  return n == 0 ? kNaN : s / static_cast<double>(n);
}

std::vector<RankedItem> ranked(const std::vector<double>& v, const std::function<std::string(int64_t)>& label) {
  std::vector<RankedItem> out;
  bool finite = true;
  for (const double x : v) finite = finite && std::isfinite(x);
  if (!finite) return out;  // no kept sentence: nothing to rank
  for (const int64_t i : analysis::top_indices(v, 10)) out.push_back({label(i), v[static_cast<size_t>(i)]});
  return out;
}

TypeSummary summarize_group(const ExperimentInfo& info, const std::string& type,
                            const std::vector<const SentenceResult*>& all, const std::map<int64_t, double>& value_rate,
                            const std::map<int64_t, double>& query_rate) {
  const int64_t L = info.n_layers, H = info.n_heads;
  TypeSummary t;
  t.type = type;
  std::vector<const SentenceResult*> kept;
  for (const SentenceResult* r : all) {
    ++t.n_sentences;
    t.n_multi_token_targets += r->target_n_tokens > 1 ? 1 : 0;
    switch (r->status) {
      case SentenceStatus::kKept: kept.push_back(r); break;
      case SentenceStatus::kNotInTopK: ++t.n_not_in_top_k; break;
      case SentenceStatus::kBelowCompetitor: ++t.n_below_competitor; break;
      case SentenceStatus::kError: ++t.n_error; break;
    }
  }
  t.n_kept = static_cast<int64_t>(kept.size());
  const double nk = static_cast<double>(kept.size());
  const auto mean = [&](const std::function<double(const SentenceResult&)>& f) {
    if (kept.empty()) return kNaN;
    double s = 0;
    for (const SentenceResult* r : kept) s += f(*r);
    return s / nk;
  };
  t.before = {mean([](const auto& r) { return r.before.rr; }), mean([](const auto& r) { return r.before.prob; }),
              mean([](const auto& r) { return r.before.log_prob; })};

  for (const auto& [name, label] : intervention_rows(info)) {
    const auto find = [&name = name](const SentenceResult& r) -> const InterventionOutcome& {
      for (const auto& o : r.interventions) {
        if (o.name == name) return o;
      }
      throw FormatError("sentence " + std::to_string(r.index) + " has no result for intervention '" + name + "'");
    };
    InterventionRow row;
    row.name = name;
    row.label = label;
    row.mean_ffn = mean([&](const auto& r) { return static_cast<double>(find(r).n_ffn); });
    row.mean_attn = mean([&](const auto& r) { return static_cast<double>(find(r).n_attn); });
    row.after = {mean([&](const auto& r) { return find(r).after.rr; }), mean([&](const auto& r) { return find(r).after.prob; }),
                 mean([&](const auto& r) { return find(r).after.log_prob; })};
    row.mrr_decrease = decrease(t.before.mrr, row.after.mrr);
    row.prob_decrease = decrease(t.before.prob, row.after.prob);
    row.logprob_decrease = decrease(t.before.log_prob, row.after.log_prob);
    t.interventions.push_back(row);
  }

  const auto check_size = [](const SentenceResult& r, const std::vector<double>& v, int64_t n, const char* what) {
    if (static_cast<int64_t>(v.size()) != n) {
      throw FormatError("sentence " + std::to_string(r.index) + ": " + what + " has " + std::to_string(v.size()) +
                        " values, expected " + std::to_string(n));
    }
  };
  t.attn_layer.assign(static_cast<size_t>(L), kNaN);
  t.ffn_layer.assign(static_cast<size_t>(L), kNaN);
  t.head.assign(static_cast<size_t>(L * H), kNaN);
  for (const SentenceResult* r : kept) {
    check_size(*r, r->attn_layer, L, "attn_layer");
    check_size(*r, r->ffn_layer, L, "ffn_layer");
    check_size(*r, r->head, L * H, "head");
  }
  for (int64_t l = 0; l < L; ++l) {
    const auto i = static_cast<size_t>(l);
    t.attn_layer[i] = mean([&](const auto& r) { return r.attn_layer[i]; });
    t.ffn_layer[i] = mean([&](const auto& r) { return r.ffn_layer[i]; });
  }
  for (int64_t i = 0; i < L * H; ++i) t.head[static_cast<size_t>(i)] = mean([&](const auto& r) { return r.head[static_cast<size_t>(i)]; });
  t.attn_layer_sum = mean([](const auto& r) {
    double s = 0;
    for (const double x : r.attn_layer) s += x;
    return s;
  });
  t.ffn_layer_sum = mean([](const auto& r) {
    double s = 0;
    for (const double x : r.ffn_layer) s += x;
    return s;
  });
  t.attn_neuron_sum = mean([](const auto& r) { return r.attn_neuron_sum; });
  t.attn_neuron_pos_sum = mean([](const auto& r) { return r.attn_neuron_pos_sum; });
  t.ffn_neuron_sum = mean([](const auto& r) { return r.ffn_neuron_sum; });
  t.ffn_neuron_pos_sum = mean([](const auto& r) { return r.ffn_neuron_pos_sum; });

  // Layers ranked together: entry 2l is attention layer l, 2l+1 its FFN.
  std::vector<double> layers;
  for (int64_t l = 0; l < L; ++l) {
    layers.push_back(t.attn_layer[static_cast<size_t>(l)]);
    layers.push_back(t.ffn_layer[static_cast<size_t>(l)]);
  }
  t.top_layers = ranked(layers, [](int64_t i) { return label_layer(i / 2, i % 2 == 1); });
  t.top_heads = ranked(t.head, [H](int64_t i) { return label_head(i / H, i % H); });
  t.value_shared_rate = mean_of(value_rate, kept);
  t.query_shared_rate = mean_of(query_rate, kept);
  return t;
}

}  // namespace

ExperimentSummary summarize(const ExperimentInfo& info, std::vector<SentenceResult> results) {
  std::sort(results.begin(), results.end(), [](const SentenceResult& a, const SentenceResult& b) { return a.index < b.index; });
  for (size_t i = 1; i < results.size(); ++i) {
    if (results[i].index == results[i - 1].index) {
      throw InvalidArgument("sentence " + std::to_string(results[i].index) + " has two results");
    }
  }
  std::map<std::string, std::vector<const SentenceResult*>> by_type;
  std::vector<const SentenceResult*> all;
  for (const SentenceResult& r : results) {
    by_type[r.type].push_back(&r);
    all.push_back(&r);
  }
  // Shared-neuron rates are a property of a sentence within its own type; "all" averages them.
  std::map<int64_t, double> value_rate, query_rate;
  for (const auto& [type, rs] : by_type) {
    std::vector<const SentenceResult*> kept;
    for (const SentenceResult* r : rs) {
      if (r->status == SentenceStatus::kKept) kept.push_back(r);
    }
    value_rate.merge(shared_rates(kept, false));
    query_rate.merge(shared_rates(kept, true));
  }
  ExperimentSummary s;
  s.info = info;
  s.types.push_back(summarize_group(info, std::string(kAllTypes), all, value_rate, query_rate));
  for (const auto& [type, rs] : by_type) s.types.push_back(summarize_group(info, type, rs, value_rate, query_rate));
  return s;
}

}  // namespace reslens
