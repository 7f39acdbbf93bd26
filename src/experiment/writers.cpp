// The summary as JSON (everything), tidy CSV (one number a row: table,type,row,column,value) and
// Markdown (the paper's tables). Each states the model, the dataset and the neuron-count scaling.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiment/json_util.h"
#include "reslens/experiment.h"
#include "reslens/report.h"

namespace reslens {

namespace {

using json = nlohmann::json;
using experiment_impl::num;
using experiment_impl::numbers;

json metrics_json(const MetricMeans& m) { return {{"mrr", num(m.mrr)}, {"prob", num(m.prob)}, {"logprob", num(m.log_prob)}}; }

json ranked_json(const std::vector<RankedItem>& v) {
  json a = json::array();
  for (const auto& r : v) a.push_back({{"label", r.label}, {"score", num(r.score)}});
  return a;
}

// Shortest round-trip decimal; empty for NaN (a missing value in CSV).
std::string csv_num(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "" : (v > 0 ? "inf" : "-inf");
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// v with `decimals` digits after the point, then `suffix`; "n/a" for a missing value.
std::string fixed(double v, int decimals, const char* suffix = "") {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f%s", decimals, v, suffix);
  return buf;
}

std::string count(double v) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// Markdown cells may not hold '|' or line breaks.
std::string md(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

}  // namespace

std::string summary_json(const ExperimentSummary& s) {
  json j;
  j["settings"] = json::parse(experiment_info_json(s.info));
  j["types"] = json::array();
  for (const TypeSummary& t : s.types) {
    json iv = json::array();
    for (const InterventionRow& r : t.interventions) {
      iv.push_back({{"name", r.name}, {"label", r.label}, {"mean_ffn_zeroed", num(r.mean_ffn)},
                    {"mean_attn_zeroed", num(r.mean_attn)}, {"after", metrics_json(r.after)},
                    {"decrease_pct", {{"mrr", num(r.mrr_decrease)}, {"prob", num(r.prob_decrease)}, {"logprob", num(r.logprob_decrease)}}}});
    }
    j["types"].push_back({
        {"type", t.type},
        {"sentences", {{"total", t.n_sentences}, {"kept", t.n_kept}, {"not_in_top_k", t.n_not_in_top_k},
                       {"below_competitor", t.n_below_competitor}, {"error", t.n_error},
                       {"multi_token_targets", t.n_multi_token_targets}}},
        {"before", metrics_json(t.before)},
        {"interventions", iv},
        {"importance",
         {{"attn_layer", numbers(t.attn_layer)}, {"ffn_layer", numbers(t.ffn_layer)},
          {"attn_layer_sum", num(t.attn_layer_sum)}, {"ffn_layer_sum", num(t.ffn_layer_sum)},
          {"attn_neuron_sum", num(t.attn_neuron_sum)}, {"attn_neuron_positive_sum", num(t.attn_neuron_pos_sum)},
          {"ffn_neuron_sum", num(t.ffn_neuron_sum)}, {"ffn_neuron_positive_sum", num(t.ffn_neuron_pos_sum)},
          {"head", numbers(t.head)}, {"top_layers", ranked_json(t.top_layers)}, {"top_heads", ranked_json(t.top_heads)}}},
        {"shared_neuron_rate", {{"value", num(t.value_shared_rate)}, {"query", num(t.query_shared_rate)}}},
    });
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string summary_csv(const ExperimentSummary& s) {
  std::ostringstream o;
  o << "table,type,row,column,value\n";
  auto row = [&](const std::string& table, const std::string& type, const std::string& r, const std::string& col,
                 const std::string& value) {
    o << csv_field(table) << ',' << csv_field(type) << ',' << csv_field(r) << ',' << csv_field(col) << ','
      << csv_field(value) << '\n';
  };
  const ExperimentInfo& i = s.info;
  row("settings", "all", "model", "value", i.model);
  row("settings", "all", "model_id", "value", i.model_id);
  row("settings", "all", "dataset", "value", i.dataset);
  row("settings", "all", "seed", "value", std::to_string(i.options.seed));
  row("settings", "all", "scaling", "rule", i.counts.rule);
  row("settings", "all", "scaling", "max_fraction", csv_num(i.counts.max_fraction));
  const std::pair<const char*, std::pair<int, int>> counts[] = {
      {"ffn_top", {i.options.ffn_top, i.counts.ffn_top}},
      {"attn_top", {i.options.attn_top, i.counts.attn_top}},
      {"attn_ffn_top", {i.options.attn_ffn_top, i.counts.attn_ffn_top}},
      {"query_top", {i.options.query_top, i.counts.query_top}},
      {"shared_set", {i.options.shared_set, i.counts.shared_set}}};
  for (const auto& [name, pe] : counts) {
    row("settings", "all", name, "paper", std::to_string(pe.first));
    row("settings", "all", name, "used", std::to_string(pe.second));
  }
  for (const TypeSummary& t : s.types) {
    const std::pair<const char*, int64_t> ns[] = {{"total", t.n_sentences}, {"kept", t.n_kept},
                                                  {"not_in_top_k", t.n_not_in_top_k}, {"below_competitor", t.n_below_competitor},
                                                  {"error", t.n_error}, {"multi_token_targets", t.n_multi_token_targets}};
    for (const auto& [name, v] : ns) row("sentences", t.type, "count", name, std::to_string(v));
    auto metrics = [&](const std::string& r, const MetricMeans& m) {
      row("metrics", t.type, r, "mrr", csv_num(m.mrr));
      row("metrics", t.type, r, "prob", csv_num(m.prob));
      row("metrics", t.type, r, "logprob", csv_num(m.log_prob));
    };
    metrics("original", t.before);
    for (const InterventionRow& r : t.interventions) {
      metrics(r.name, r.after);
      row("metrics", t.type, r.name, "mrr_decrease_pct", csv_num(r.mrr_decrease));
      row("metrics", t.type, r.name, "prob_decrease_pct", csv_num(r.prob_decrease));
      row("metrics", t.type, r.name, "logprob_decrease_pct", csv_num(r.logprob_decrease));
      row("metrics", t.type, r.name, "mean_ffn_zeroed", csv_num(r.mean_ffn));
      row("metrics", t.type, r.name, "mean_attn_zeroed", csv_num(r.mean_attn));
    }
    for (size_t l = 0; l < t.attn_layer.size(); ++l) {
      row("layers", t.type, label_layer(static_cast<int64_t>(l), false), "mean_imp", csv_num(t.attn_layer[l]));
      row("layers", t.type, label_layer(static_cast<int64_t>(l), true), "mean_imp", csv_num(t.ffn_layer[l]));
    }
    row("importance_sums", t.type, "attn_layers", "mean", csv_num(t.attn_layer_sum));
    row("importance_sums", t.type, "ffn_layers", "mean", csv_num(t.ffn_layer_sum));
    row("importance_sums", t.type, "attn_neurons_all", "mean", csv_num(t.attn_neuron_sum));
    row("importance_sums", t.type, "attn_neurons_positive", "mean", csv_num(t.attn_neuron_pos_sum));
    row("importance_sums", t.type, "ffn_neurons_all", "mean", csv_num(t.ffn_neuron_sum));
    row("importance_sums", t.type, "ffn_neurons_positive", "mean", csv_num(t.ffn_neuron_pos_sum));
    const int64_t H = i.n_heads;
    for (size_t h = 0; h < t.head.size(); ++h) {
      row("heads", t.type, label_head(static_cast<int64_t>(h) / H, static_cast<int64_t>(h) % H), "mean_imp", csv_num(t.head[h]));
    }
    for (size_t r = 0; r < t.top_layers.size(); ++r) {
      row("top_layers", t.type, std::to_string(r + 1), t.top_layers[r].label, csv_num(t.top_layers[r].score));
    }
    for (size_t r = 0; r < t.top_heads.size(); ++r) {
      row("top_heads", t.type, std::to_string(r + 1), t.top_heads[r].label, csv_num(t.top_heads[r].score));
    }
    row("shared_neurons", t.type, "value", "rate", csv_num(t.value_shared_rate));
    row("shared_neurons", t.type, "query", "rate", csv_num(t.query_shared_rate));
  }
  return o.str();
}

std::string summary_markdown(const ExperimentSummary& s) {
  std::ostringstream o;
  const ExperimentInfo& i = s.info;
  const TypeSummary& all = s.types.front();
  o << "# reslens experiment\n\n";
  o << "- model: `" << md(i.model) << "` (" << md(i.model_id) << ")\n";
  o << "- dataset: `" << md(i.dataset) << "`: " << i.dataset_sentences << " sentences";
  if (i.dataset_skipped_lines > 0) o << " (" << i.dataset_skipped_lines << " malformed lines skipped)";
  o << "; in these results " << all.n_sentences << ", kept " << all.n_kept << " (target in the top "
    << i.options.filter_top_k << " and above every same-type competitor)\n";
  o << "- neuron counts: " << md(i.counts.rule) << "\n";
  o << "- interventions zero parameters (FFN value vectors, W_O columns) per sentence; random neurons: seed "
    << i.options.seed << "\n\n";

  o << "## Sentences\n\n| type | total | kept | not in top " << i.options.filter_top_k
    << " | below a competitor | error | multi-token targets |\n|---|---|---|---|---|---|---|\n";
  for (const TypeSummary& t : s.types) {
    o << "| " << md(t.type) << " | " << t.n_sentences << " | " << t.n_kept << " | " << t.n_not_in_top_k << " | "
      << t.n_below_competitor << " | " << t.n_error << " | " << t.n_multi_token_targets << " |\n";
  }

  auto intervention_table = [&](const TypeSummary& t, bool scores) {
    o << "| method | zeroed (FFN + attn) | MRR | MRR decrease | prob | prob decrease | log p | log p decrease |\n"
         "|---|---|---|---|---|---|---|---|\n";
    o << "| original | 0 | " << fixed(t.before.mrr, 3) << " | | " << fixed(100 * t.before.prob, 2, "%") << " | | "
      << fixed(t.before.log_prob, 3) << " | |\n";
    for (const InterventionRow& r : t.interventions) {
      const bool is_score = r.name.rfind("score:", 0) == 0;
      if (is_score != scores && !(scores && r.name == "ffn_random")) continue;
      o << "| " << md(r.label) << " | " << count(r.mean_ffn) << " + " << count(r.mean_attn) << " | "
        << fixed(r.after.mrr, 3) << " | " << fixed(r.mrr_decrease, 1, "%") << " | " << fixed(100 * r.after.prob, 2, "%")
        << " | " << fixed(r.prob_decrease, 1, "%") << " | " << fixed(r.after.log_prob, 3) << " | "
        << fixed(r.logprob_decrease, 1, "%") << " |\n";
    }
  };
  const bool have_scores = i.options.baselines;
  if (have_scores) {
    o << "\n## Scores compared (Table 2): zero each score's top " << i.counts.ffn_top << " FFN neurons\n\n";
    for (const TypeSummary& t : s.types) {
      o << "### " << md(t.type) << " (" << t.n_kept << " sentences)\n\n";
      intervention_table(t, true);
      o << "\n";
    }
  }
  o << "\n## Interventions\n\n";
  for (const TypeSummary& t : s.types) {
    o << "### " << md(t.type) << " (" << t.n_kept << " sentences)\n\n";
    intervention_table(t, false);
    o << "\n";
  }

  o << "## Importance (Table 3): mean per sentence of the summed log-probability increase\n\n"
       "| type | attention layers | FFN layers | attention neurons (all) | attention neurons (positive) | FFN "
       "neurons (all) | FFN neurons (positive) |\n|---|---|---|---|---|---|---|\n";
  for (const TypeSummary& t : s.types) {
    o << "| " << md(t.type) << " | " << fixed(t.attn_layer_sum, 3) << " | " << fixed(t.ffn_layer_sum, 3) << " | "
      << fixed(t.attn_neuron_sum, 3) << " | " << fixed(t.attn_neuron_pos_sum, 3) << " | "
      << fixed(t.ffn_neuron_sum, 3) << " | " << fixed(t.ffn_neuron_pos_sum, 3) << " |\n";
  }
  auto ranked_table = [&](const char* title, bool heads) {
    o << "\n## " << title << "\n\n| type | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const TypeSummary& t : s.types) {
      const auto& v = heads ? t.top_heads : t.top_layers;
      o << "| " << md(t.type);
      for (size_t r = 0; r < 10; ++r) o << " | " << (r < v.size() ? v[r].label + " (" + fixed(v[r].score, 3) + ")" : "");
      o << " |\n";
    }
  };
  ranked_table("Top-10 layers by mean importance (Fig 4-5)", false);
  ranked_table("Top-10 heads by mean importance", true);
  o << "\n## Shared neurons: share of a sentence's top " << i.counts.shared_set
    << " neurons that more than half of its type's sentences share\n\n| type | value neurons | query neurons |\n|---|---|---|\n";
  for (const TypeSummary& t : s.types) {
    o << "| " << md(t.type) << " | " << fixed(100 * t.value_shared_rate, 1, "%") << " | "
      << fixed(100 * t.query_shared_rate, 1, "%") << " |\n";
  }
  return o.str();
}

}  // namespace reslens
