// JSON of the run's settings and of one sentence's result. Both are read back (a resumed run, a
// merge of shards), so every number must survive the round trip exactly: nlohmann writes the
// shortest decimal that reads back as the same double. Non-finite numbers become null and read
// back as NaN.
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "experiment/json_util.h"
#include "reslens/error.h"
#include "reslens/experiment.h"

namespace reslens {

namespace experiment_impl {

using json = nlohmann::json;

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

double get_num(const json& j, const char* key) {
  const json& v = j.at(key);
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

std::string dump_line(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json stats_json(const TargetStats& s) {
  return {{"prob", num(s.prob)}, {"logprob", num(s.log_prob)}, {"rr", num(s.rr)}, {"rank", s.rank}, {"top1", s.top1}};
}

TargetStats parse_stats(const json& j) {
  TargetStats s;
  s.prob = get_num(j, "prob");
  s.log_prob = get_num(j, "logprob");
  s.rr = get_num(j, "rr");
  s.rank = j.at("rank").get<int64_t>();
  s.top1 = j.at("top1").get<int32_t>();
  return s;
}

json numbers(const std::vector<double>& v) {
  json a = json::array();
  for (const double x : v) a.push_back(num(x));
  return a;
}

std::vector<double> parse_numbers(const json& a) {
  std::vector<double> v;
  for (const auto& x : a) v.push_back(x.is_null() ? std::numeric_limits<double>::quiet_NaN() : x.get<double>());
  return v;
}

}  // namespace experiment_impl

using experiment_impl::json;

std::string experiment_info_json(const ExperimentInfo& i) {
  const ExperimentOptions& o = i.options;
  const ExperimentCounts& k = i.counts;
  json j = {
      {"model", i.model},
      {"model_id", i.model_id},
      {"dims", {{"n_layers", i.n_layers}, {"n_heads", i.n_heads}, {"d_head", i.d_head}, {"d_mlp", i.d_mlp}, {"d_vocab", i.d_vocab}}},
      {"dataset", i.dataset},
      // A 64-bit value as text: JSON readers in other languages keep only 53 bits of a number.
      {"dataset_fingerprint", std::to_string(i.dataset_fingerprint)},
      {"dataset_sentences", i.dataset_sentences},
      {"dataset_skipped_lines", i.dataset_skipped_lines},
      {"options",
       {{"filter_top_k", o.filter_top_k}, {"ffn_top", o.ffn_top}, {"attn_top", o.attn_top},
        {"attn_ffn_top", o.attn_ffn_top}, {"query_top", o.query_top}, {"shared_set", o.shared_set},
        {"max_fraction", o.max_fraction}, {"query_value_neurons", o.query_value_neurons},
        {"baselines", o.baselines}, {"random", o.random}, {"seed", std::to_string(o.seed)},
        {"add_bos", o.add_bos ? json(*o.add_bos) : json("auto")}, {"parse_special", o.parse_special}}},
      {"counts",
       {{"ffn_neurons", k.ffn_neurons}, {"attn_neurons", k.attn_neurons}, {"ffn_top", k.ffn_top},
        {"attn_top", k.attn_top}, {"attn_ffn_top", k.attn_ffn_top}, {"query_top", k.query_top},
        {"shared_set", k.shared_set}, {"max_fraction", k.max_fraction}, {"rule", k.rule}}},
  };
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

ExperimentInfo parse_experiment_info(std::string_view text) {
  try {
    const json j = json::parse(text);
    ExperimentInfo i;
    i.model = j.at("model").get<std::string>();
    i.model_id = j.at("model_id").get<std::string>();
    const json& d = j.at("dims");
    i.n_layers = d.at("n_layers").get<int64_t>();
    i.n_heads = d.at("n_heads").get<int64_t>();
    i.d_head = d.at("d_head").get<int64_t>();
    i.d_mlp = d.at("d_mlp").get<int64_t>();
    i.d_vocab = d.at("d_vocab").get<int64_t>();
    i.dataset = j.at("dataset").get<std::string>();
    i.dataset_fingerprint = std::stoull(j.at("dataset_fingerprint").get<std::string>());
    i.dataset_sentences = j.at("dataset_sentences").get<int64_t>();
    i.dataset_skipped_lines = j.at("dataset_skipped_lines").get<int64_t>();
    const json& o = j.at("options");
    ExperimentOptions& op = i.options;
    op.filter_top_k = o.at("filter_top_k").get<int>();
    op.ffn_top = o.at("ffn_top").get<int>();
    op.attn_top = o.at("attn_top").get<int>();
    op.attn_ffn_top = o.at("attn_ffn_top").get<int>();
    op.query_top = o.at("query_top").get<int>();
    op.shared_set = o.at("shared_set").get<int>();
    op.max_fraction = o.at("max_fraction").get<double>();
    op.query_value_neurons = o.at("query_value_neurons").get<int>();
    op.baselines = o.at("baselines").get<bool>();
    op.random = o.at("random").get<bool>();
    op.seed = std::stoull(o.at("seed").get<std::string>());
    if (o.at("add_bos").is_boolean()) op.add_bos = o.at("add_bos").get<bool>();
    op.parse_special = o.value("parse_special", true);  // absent in runs written before the option
    const json& k = j.at("counts");
    ExperimentCounts& c = i.counts;
    c.ffn_neurons = k.at("ffn_neurons").get<int64_t>();
    c.attn_neurons = k.at("attn_neurons").get<int64_t>();
    c.ffn_top = k.at("ffn_top").get<int>();
    c.attn_top = k.at("attn_top").get<int>();
    c.attn_ffn_top = k.at("attn_ffn_top").get<int>();
    c.query_top = k.at("query_top").get<int>();
    c.shared_set = k.at("shared_set").get<int>();
    c.max_fraction = k.at("max_fraction").get<double>();
    c.rule = k.at("rule").get<std::string>();
    return i;
  } catch (const json::exception& e) {
    throw FormatError(std::string("experiment settings: ") + e.what());
  } catch (const std::logic_error& e) {  // stoull
    throw FormatError(std::string("experiment settings: bad number (") + e.what() + ")");
  }
}

std::string sentence_result_json(const SentenceResult& r) {
  using experiment_impl::num;
  using experiment_impl::numbers;
  json j = {{"index", r.index},
            {"line", r.line},
            {"type", r.type},
            {"prompt", r.prompt},
            {"target", r.target},
            {"status", to_string(r.status)},
            {"detail", r.detail},
            {"target_id", r.target_id},
            {"target_token", r.target_token},
            {"target_n_tokens", r.target_n_tokens},
            {"n_prompt_tokens", r.n_prompt_tokens},
            {"n_competitors", r.n_competitors},
            {"before", experiment_impl::stats_json(r.before)}};
  if (r.status == SentenceStatus::kKept) {
    json iv = json::array();
    for (const auto& o : r.interventions) {
      iv.push_back({{"name", o.name}, {"n_ffn", o.n_ffn}, {"n_attn", o.n_attn}, {"after", experiment_impl::stats_json(o.after)},
                    {"ffn", o.ffn}, {"attn", o.attn}});
    }
    j["interventions"] = iv;
    j["attn_layer"] = numbers(r.attn_layer);
    j["ffn_layer"] = numbers(r.ffn_layer);
    j["head"] = numbers(r.head);
    j["neuron_sums"] = {{"attn", num(r.attn_neuron_sum)}, {"attn_positive", num(r.attn_neuron_pos_sum)},
                        {"ffn", num(r.ffn_neuron_sum)}, {"ffn_positive", num(r.ffn_neuron_pos_sum)}};
    j["value_set"] = r.value_set;
    j["query_set"] = r.query_set;
  }
  return experiment_impl::dump_line(j);
}

SentenceResult parse_sentence_result(std::string_view text) {
  using experiment_impl::get_num;
  using experiment_impl::parse_numbers;
  try {
    const json j = json::parse(text);
    SentenceResult r;
    r.index = j.at("index").get<int64_t>();
    r.line = j.at("line").get<int64_t>();
    r.type = j.at("type").get<std::string>();
    r.prompt = j.at("prompt").get<std::string>();
    r.target = j.at("target").get<std::string>();
    const std::string status = j.at("status").get<std::string>();
    bool known = false;
    for (const SentenceStatus s : {SentenceStatus::kKept, SentenceStatus::kNotInTopK, SentenceStatus::kBelowCompetitor,
                                   SentenceStatus::kError}) {
      if (status == to_string(s)) {
        r.status = s;
        known = true;
      }
    }
    if (!known) throw FormatError("unknown status '" + status + "'");
    r.detail = j.at("detail").get<std::string>();
    r.target_id = j.at("target_id").get<int32_t>();
    r.target_token = j.at("target_token").get<std::string>();
    r.target_n_tokens = j.at("target_n_tokens").get<int64_t>();
    r.n_prompt_tokens = j.at("n_prompt_tokens").get<int64_t>();
    r.n_competitors = j.at("n_competitors").get<int64_t>();
    r.before = experiment_impl::parse_stats(j.at("before"));
    if (r.status == SentenceStatus::kKept) {
      for (const auto& o : j.at("interventions")) {
        r.interventions.push_back({o.at("name").get<std::string>(), o.at("n_ffn").get<int64_t>(),
                                   o.at("n_attn").get<int64_t>(), experiment_impl::parse_stats(o.at("after")),
                                   o.at("ffn").get<std::vector<int64_t>>(), o.at("attn").get<std::vector<int64_t>>()});
      }
      r.attn_layer = parse_numbers(j.at("attn_layer"));
      r.ffn_layer = parse_numbers(j.at("ffn_layer"));
      r.head = parse_numbers(j.at("head"));
      const json& s = j.at("neuron_sums");
      r.attn_neuron_sum = get_num(s, "attn");
      r.attn_neuron_pos_sum = get_num(s, "attn_positive");
      r.ffn_neuron_sum = get_num(s, "ffn");
      r.ffn_neuron_pos_sum = get_num(s, "ffn_positive");
      r.value_set = j.at("value_set").get<std::vector<int64_t>>();
      r.query_set = j.at("query_set").get<std::vector<int64_t>>();
    }
    return r;
  } catch (const json::exception& e) {
    throw FormatError(std::string("sentence result: ") + e.what());
  }
}

}  // namespace reslens
