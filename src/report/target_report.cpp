// A target of several tokens (explain_target()) as JSON, terminal text and .npy: each step is the
// single-position report of its step; the summed levels are ranked like a step's, and every ranked
// entry carries its per-step scores, so a reader sees which tokens of the answer a component serves.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/ranking.h"
#include "io/npy.h"
#include "report/explain_document.h"
#include "reslens/error.h"
#include "reslens/report.h"

namespace reslens {

using nlohmann::json;

namespace report {

namespace {

using analysis::top_indices;

// Step `step`'s value at flat index `i` of a summed array of shape `summed_shape`. The step's array
// may have a shorter last axis (fewer source positions): a source it does not have gives 0.
double step_value(const ScoreArray& step, const std::vector<int64_t>& summed_shape, int64_t i) {
  if (step.values.empty()) return 0.0;
  const int64_t n_sum = summed_shape.back(), n_step = step.shape.back();
  const int64_t row = i / n_sum, p = i % n_sum;
  return p < n_step ? step.values[static_cast<size_t>(row * n_step + p)] : 0.0;
}

// The per-step scores of entry `i` of a summed array: one number per target step.
json by_step(const ExplainedTarget& done, ScoreArray Explanation::*member, const std::vector<int64_t>& summed_shape,
             int64_t i) {
  json a = json::array();
  for (const TargetStep& s : done.target_pass.steps) a.push_back(step_value(s.explanation.*member, summed_shape, i));
  return a;
}

json slots_json(const std::vector<double>& slots) {
  json a = json::array();
  for (size_t s = 0; s < slots.size(); ++s) {
    const std::string label = s == 0 ? "emb" : (s % 2 ? "a" : "f") + std::to_string((s - 1) / 2);
    a.push_back({{"label", label}, {"score", slots[s]}});
  }
  return a;
}

json heads_table(const ScoreArray& a) {  // [L, H] -> nested rows
  json rows = json::array();
  const int64_t L = a.shape.at(0), H = a.shape.at(1);
  for (int64_t l = 0; l < L; ++l) {
    json row = json::array();
    for (int64_t h = 0; h < H; ++h) row.push_back(a.at({l, h}));
    rows.push_back(row);
  }
  return rows;
}

json layers_json(const std::vector<double>& attn, const std::vector<double>& ffn) {
  json a = json::array();
  for (size_t l = 0; l < attn.size(); ++l) a.push_back({{"layer", l}, {"attn", attn[l]}, {"ffn", ffn[l]}});
  return a;
}

json summed_document(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  const ModelConfig& c = model.config();
  const TargetSums& s = done.summed;
  const std::vector<TargetStep>& steps = done.target_pass.steps;
  const int64_t L = c.n_layers, H = c.n_heads, N = s.ffn_neuron.shape.at(1);
  json j;
  j["n_steps"] = s.n_steps;
  j["n_positions"] = s.n_positions;

  j["layers"] = json::array();
  double sa = 0, sf = 0;
  for (int64_t l = 0; l < L; ++l) {
    json attn = json::array(), ffn = json::array();
    for (const TargetStep& st : steps) {
      attn.push_back(st.explanation.attn_layer[static_cast<size_t>(l)]);
      ffn.push_back(st.explanation.ffn_layer[static_cast<size_t>(l)]);
    }
    j["layers"].push_back({{"layer", l}, {"attn", s.attn_layer[static_cast<size_t>(l)]},
                           {"ffn", s.ffn_layer[static_cast<size_t>(l)]}, {"attn_steps", attn}, {"ffn_steps", ffn}});
    sa += s.attn_layer[static_cast<size_t>(l)];
    sf += s.ffn_layer[static_cast<size_t>(l)];
  }
  j["layer_sums"] = {{"attn", sa}, {"ffn", sf}, {"total", sa + sf},
                     {"final_minus_embedding", s.bs_log_prob_final - s.bs_log_prob_embedding}};

  j["heads"] = heads_table(s.head);
  j["top_heads"] = json::array();
  const std::vector<int64_t> top_heads = top_indices(s.head.values, ro.top);
  for (const int64_t i : top_heads) {
    j["top_heads"].push_back({{"layer", i / H}, {"head", i % H}, {"label", label_head(i / H, i % H)},
                              {"score", s.head.values[static_cast<size_t>(i)]},
                              {"steps", by_step(done, &Explanation::head, s.head.shape, i)}});
  }
  // The top heads by source position: the summed shares, over every position of the pass (the
  // prompt, then the target's tokens the later steps read).
  j["head_positions"] = json::array();
  const int64_t n = s.n_positions;
  for (size_t t = 0; t < top_heads.size() && static_cast<int>(t) < ro.view_heads; ++t) {
    const int64_t l = top_heads[t] / H, h = top_heads[t] % H;
    json positions = json::array();
    for (int64_t p = 0; p < n; ++p) {
      const int64_t i = (l * H + h) * n + p;
      positions.push_back({{"pos", p}, {"token", tok(model, done.target_pass.tokens[static_cast<size_t>(p)])},
                           {"score", s.head_position.values[static_cast<size_t>(i)]},
                           {"steps", by_step(done, &Explanation::head_position, s.head_position.shape, i)}});
    }
    j["head_positions"].push_back({{"layer", l}, {"head", h}, {"label", label_head(l, h)}, {"positions", positions}});
  }

  j["ffn_neurons"] = json::array();
  for (const int64_t i : top_indices(s.ffn_neuron.values, ro.top)) {
    const int64_t l = i / N, k = i % N;
    json e = {{"layer", l}, {"neuron", k}, {"label", label_ffn_neuron(l, k)},
              {"score", s.ffn_neuron.values[static_cast<size_t>(i)]},
              {"steps", by_step(done, &Explanation::ffn_neuron, s.ffn_neuron.shape, i)}};
    if (c.n_experts > 0) {  // as a step's report: expert k / d_expert's neuron k % d_expert, then the shared expert
      const int64_t routed = c.n_experts * c.d_expert;
      e["expert"] = k < routed ? k / c.d_expert : c.n_experts;
      e["expert_neuron"] = k < routed ? k % c.d_expert : k - routed;
    }
    j["ffn_neurons"].push_back(e);
  }
  if (!s.expert.values.empty()) {
    j["experts"] = json::array();
    const int64_t E = s.expert.shape.at(1);
    for (const int64_t i : top_indices(s.expert.values, s.expert.size())) {
      const int64_t l = i / E, e = i % E;
      const std::string label = "L" + std::to_string(l) + (e < c.n_experts ? "E" + std::to_string(e) : std::string("S"));
      json x = {{"layer", l}, {"expert", e}, {"label", label}, {"score", s.expert.values[static_cast<size_t>(i)]},
                {"steps", by_step(done, &Explanation::expert, s.expert.shape, i)}};
      if (s.has_contrast) x["contrast"] = s.contrast_expert.values[static_cast<size_t>(i)];
      j["experts"].push_back(x);
    }
  }
  j["attn_neurons"] = json::array();
  for (const int64_t i : top_indices(s.attn_neuron.values, ro.top)) {
    const Unpacked u = unpack_attn(s.attn_neuron.shape, i);
    j["attn_neurons"].push_back({{"layer", u.l}, {"head", u.h}, {"dim", u.n}, {"pos", u.p},
                                 {"label", label_attn_neuron(u.l, u.h, u.n, u.p)},
                                 {"score", s.attn_neuron.values[static_cast<size_t>(i)]},
                                 {"steps", by_step(done, &Explanation::attn_neuron, s.attn_neuron.shape, i)}});
  }
  j["query_ffn_neurons"] = json::array();
  for (const int64_t i : top_indices(s.query_ffn_neuron.values, ro.top)) {
    j["query_ffn_neurons"].push_back({{"layer", i / N}, {"neuron", i % N}, {"label", label_ffn_neuron(i / N, i % N)},
                                      {"score", s.query_ffn_neuron.values[static_cast<size_t>(i)]},
                                      {"steps", by_step(done, &Explanation::query_ffn_neuron, s.query_ffn_neuron.shape, i)}});
  }
  json q1 = json::object();
  for (const QueryLayers& q : s.ffn_value_query_layers) q1[q.key] = slots_json(q.slots);
  const int top_n = steps.front().options.query_top_n, set_size = steps.front().options.set_size;
  j["query_layers"] = {
      {"ffn_value_neurons",
       {{"key", s.ffn_value_query_layers.empty() ? "" : s.ffn_value_query_layers.front().key}, {"top_n", top_n}, {"variants", q1}}},
      {"attn_value_neurons", {{"top_n", top_n}, {"slots", slots_json(s.attn_value_query_layers.slots)}}}};
  j["histograms"] = {
      {"size", set_size},
      {"ffn_value", layer_counts(top_indices(s.ffn_neuron.values, set_size), N, L)},
      {"attn_value", layer_counts(top_indices(s.attn_neuron.values, set_size), H * c.d_head * n, L)},
      {"ffn_query", layer_counts(top_indices(s.query_ffn_neuron.values, set_size), N, L)},
      {"query_only", s.query_only_per_layer},
      {"query_value", s.query_value_per_layer}};

  if (s.has_contrast) {
    json ffn = json::array(), attn = json::array();
    for (const int64_t i : top_indices(s.contrast_ffn_neuron.values, ro.top)) {
      ffn.push_back({{"layer", i / N}, {"neuron", i % N}, {"label", label_ffn_neuron(i / N, i % N)},
                     {"score", s.contrast_ffn_neuron.values[static_cast<size_t>(i)]}});
    }
    for (const int64_t i : top_indices(s.contrast_attn_neuron.values, ro.top)) {
      const Unpacked u = unpack_attn(s.contrast_attn_neuron.shape, i);
      attn.push_back({{"layer", u.l}, {"head", u.h}, {"dim", u.n}, {"pos", u.p},
                      {"label", label_attn_neuron(u.l, u.h, u.n, u.p)},
                      {"score", s.contrast_attn_neuron.values[static_cast<size_t>(i)]}});
    }
    j["contrast"] = {{"measure", "log p(target) - log p(foil) of the sequences"},
                     {"log_prob", s.log_prob - s.foil_log_prob},
                     {"layers", layers_json(s.contrast_attn_layer, s.contrast_ffn_layer)},
                     {"heads", heads_table(s.contrast_head)},
                     {"ffn_neurons", ffn},
                     {"attn_neurons", attn}};
  }
  j["checks"] = s.checks;
  if (!s.method_counts.empty()) j["method_counts"] = s.method_counts;  // the sums' error budget
  return j;
}

// A probability as a percentage; a tiny one (a long or unlikely target) in scientific notation,
// not as 0.0000%.
std::string percent(double p) {
  if (p == 0 || 100 * p >= 0.01) return num(100 * p, 2) + "%";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e%%", 100 * p);
  return buf;
}

std::string joined_text(const Model& model, const std::vector<int32_t>& ids) {
  std::string s;
  for (const int32_t id : ids) s += tok(model, id);
  return s;
}

json target_document(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  const ModelConfig& c = model.config();
  const TargetSums& s = done.summed;
  json j;
  j["schema_version"] = kSchemaVersion;
  j["kind"] = "target";
  j["tool"] = "reslens 0.1.0";
  j["model"] = {{"path", model.path().string()}, {"architecture", to_string(c.architecture)},
                {"n_layers", c.n_layers}, {"n_heads", c.n_heads}, {"d_head", c.d_head}, {"d_model", c.d_model},
                {"d_mlp", c.d_mlp}, {"d_vocab", c.d_vocab}};
  j["prompt"] = json::array();
  for (const int32_t id : done.prompt) j["prompt"].push_back({{"id", id}, {"text", tok(model, id)}});
  j["position"] = done.position;
  json tokens = json::array();
  for (const TargetStep& st : done.target_pass.steps) {
    const Explanation& ex = st.explanation;
    tokens.push_back({{"id", st.token}, {"text", tok(model, st.token)}, {"position", st.position},
                      {"log_prob", ex.real_log_prob}, {"prob", ex.real_prob}, {"rank", ex.real_rank}});
  }
  j["target"] = {{"text", joined_text(model, done.target)}, {"tokens", tokens}, {"log_prob", s.log_prob},
                 {"prob", std::exp(s.log_prob)}, {"bs_log_prob", s.bs_log_prob_final},
                 {"bs_log_prob_embedding", s.bs_log_prob_embedding}};
  if (done.foil.empty()) {
    j["foil"] = nullptr;
  } else {
    json ft = json::array();
    for (const int32_t id : done.foil) ft.push_back({{"id", id}, {"text", tok(model, id)}});
    j["foil"] = {{"text", joined_text(model, done.foil)}, {"tokens", ft}, {"log_prob", s.foil_log_prob},
                 {"contrast_step", done.contrast_step >= 0 ? json(done.contrast_step) : json(nullptr)},
                 {"first_own_step", done.first_foil_step}};
  }
  auto step_documents = [&](const TeacherForcedPass& pass) {
    json a = json::array();
    for (const TargetStep& st : pass.steps) {
      a.push_back(explain_document(model, *pass.run, pass.tokens, st.explanation, st.options, ro));
    }
    return a;
  };
  if (done.generated) {  // the target is the model's own answer (explain --generate)
    const GeneratedAnswer& g = *done.generated;
    j["generated"] = {{"max_tokens", g.options.max_tokens}, {"temperature", g.options.temperature},
                      {"seed", g.options.seed}, {"stop", to_string(g.stop)},
                      {"stop_token", g.stop_token >= 0 ? json{{"id", g.stop_token}, {"text", tok(model, g.stop_token)}}
                                                       : json(nullptr)}};
  }
  j["steps"] = step_documents(done.target_pass);
  j["foil_steps"] = done.foil_pass.steps.empty() ? json::array() : step_documents(done.foil_pass);
  j["summed"] = summed_document(model, done, ro);
  return j;
}

// Arrays that every step has, stacked on a leading step axis; a shorter last axis (an earlier
// step's source positions) is padded with 0 up to the longest.
void write_stacked(const std::filesystem::path& dir, const std::vector<TargetStep>& steps) {
  create_output_folder(dir);
  std::vector<std::vector<std::pair<std::string, ScoreArray>>> per_step;
  for (const TargetStep& st : steps) per_step.push_back(explanation_arrays(st.explanation));
  for (const auto& [name, first] : per_step.front()) {
    std::vector<const ScoreArray*> arrays;
    for (const auto& arrs : per_step) {
      for (const auto& [other, a] : arrs) {
        if (other == name) arrays.push_back(&a);
      }
    }
    if (arrays.size() != steps.size()) continue;  // not every step has it (the contrast step's own)
    std::vector<int64_t> shape = first.shape;
    for (const ScoreArray* a : arrays) shape.back() = std::max(shape.back(), a->shape.back());
    ScoreArray stacked([&] {
      std::vector<int64_t> s{static_cast<int64_t>(steps.size())};
      s.insert(s.end(), shape.begin(), shape.end());
      return s;
    }());
    const int64_t per = stacked.size() / static_cast<int64_t>(steps.size()), n = shape.back();
    for (size_t t = 0; t < arrays.size(); ++t) {
      const ScoreArray& a = *arrays[t];
      const int64_t na = a.shape.back(), rows = na == 0 ? 0 : a.size() / na;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t p = 0; p < na; ++p) {
          stacked.values[static_cast<size_t>(static_cast<int64_t>(t) * per + r * n + p)] =
              a.values[static_cast<size_t>(r * na + p)];
        }
      }
    }
    write_npy(dir / (name + ".npy"), stacked.values.data(), stacked.shape);
  }
}

ScoreArray layer_pairs(const std::vector<double>& attn, const std::vector<double>& ffn) {  // [L, 2]
  ScoreArray a({static_cast<int64_t>(attn.size()), 2});
  for (size_t l = 0; l < attn.size(); ++l) {
    a.values[2 * l] = attn[l];
    a.values[2 * l + 1] = ffn[l];
  }
  return a;
}

}  // namespace

}  // namespace report

std::string target_json(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  return report::target_document(model, done, ro).dump(2);
}

std::string target_step_line(const Model& model, const TeacherForcedPass& pass, size_t t, const char* sequence,
                             int index, const ReportOptions& ro) {
  const TargetStep& st = pass.steps.at(t);
  json line = json::object();
  line["kind"] = "step";
  line["sequence"] = sequence;
  line["step"] = index;
  line["explanation"] = report::explain_document(model, *pass.run, pass.tokens, st.explanation, st.options, ro);
  return line.dump() + "\n";
}

std::string target_summary_line(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  // The target document without the steps the lines before it printed.
  json j = report::target_document(model, done, ro);
  j.erase("steps");
  j.erase("foil_steps");
  j["kind"] = "target_summary";
  return j.dump() + "\n";
}

std::string target_jsonl(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  std::string lines;
  for (size_t t = 0; t < done.target_pass.steps.size(); ++t) {
    lines += target_step_line(model, done.target_pass, t, "target", static_cast<int>(t), ro);
  }
  for (size_t t = 0; t < done.foil_pass.steps.size(); ++t) {
    lines += target_step_line(model, done.foil_pass, t, "foil", done.first_foil_step + static_cast<int>(t), ro);
  }
  return lines + target_summary_line(model, done, ro);
}

std::string target_text(const Model& model, const ExplainedTarget& done, const ReportOptions& ro) {
  using report::num;
  using report::pad;
  const json j = report::target_document(model, done, ro);
  const json& sum = j["summed"];
  const TargetSums& s = done.summed;
  const std::vector<TargetStep>& steps = done.target_pass.steps;
  std::ostringstream o;
  o << "prompt (" << done.prompt.size() << " tokens):";
  for (const auto& t : j["prompt"]) o << " '" << t["text"].get<std::string>() << "'";
  o << "\ntarget '" << j["target"]["text"].get<std::string>() << "' (" << steps.size()
    << " tokens, each after the ones before it): log p = " << num(s.log_prob, 4) << " (p = "
    << report::percent(std::exp(s.log_prob)) << ")\n";
  if (done.generated) {
    const GeneratedAnswer& g = *done.generated;
    o << "generated by the model (" << (g.options.temperature == 0.0 ? std::string("greedy")
                                        : "temperature " + num(g.options.temperature, 2) + ", seed " + std::to_string(g.options.seed))
      << ", at most " << g.options.max_tokens << " tokens): stopped at "
      << (g.stop == GenerationStop::kEndOfTurn ? "the end of the turn ('" + report::tok(model, g.stop_token) + "')"
          : g.stop == GenerationStop::kContext ? std::string("the end of the context window")
                                               : std::string("the token limit"))
      << "\n";
  }
  o << "  step  position  token                  log p         p   rank\n";
  for (size_t t = 0; t < steps.size(); ++t) {
    const Explanation& ex = steps[t].explanation;
    o << "  " << num(static_cast<double>(t), 0, false, 4) << num(steps[t].position, 0, false, 10) << "  "
      << pad("'" + report::tok(model, steps[t].token) + "'", 20) << num(ex.real_log_prob, 4, true, 8)
      << num(100 * ex.real_prob, 2, false, 9) << "%" << num(static_cast<double>(ex.real_rank), 0, false, 7) << "\n";
  }
  if (!done.foil.empty()) {
    o << "foil '" << j["foil"]["text"].get<std::string>() << "' (" << done.foil.size() << " tokens): log p = "
      << num(s.foil_log_prob, 4) << "; log p(target) - log p(foil) = " << num(s.log_prob - s.foil_log_prob, 4, true);
    if (done.contrast_step >= 0) o << "; they part at step " << done.contrast_step;
    if (!done.foil_pass.steps.empty()) o << "; the foil's steps from " << done.first_foil_step << " in a pass of their own";
    o << "\n";
  }

  o << "\nLayers summed over the " << steps.size() << " steps: log-probability increase of the target"
    << (s.has_contrast ? " (and of target - foil)" : "") << "; by step: attn + ffn\n";
  o << "  layer        attn        ffn" << (s.has_contrast ? "   contrast attn  contrast ffn" : "") << "   by step\n";
  for (size_t l = 0; l < s.attn_layer.size(); ++l) {
    o << "  L" << l << std::string(l < 10 ? 4 : 3, ' ') << num(s.attn_layer[l], 4, true, 11) << num(s.ffn_layer[l], 4, true, 11);
    if (s.has_contrast) o << num(s.contrast_attn_layer[l], 4, true, 15) << num(s.contrast_ffn_layer[l], 4, true, 14);
    o << "  ";
    for (const TargetStep& st : steps) o << " " << num(st.explanation.attn_layer[l] + st.explanation.ffn_layer[l], 3, true);
    o << "\n";
  }
  o << "  sum   " << num(sum["layer_sums"]["attn"].get<double>(), 4, true, 11) << num(sum["layer_sums"]["ffn"].get<double>(), 4, true, 11)
    << "   (= the steps' final - embedding " << num(sum["layer_sums"]["final_minus_embedding"].get<double>(), 4) << ")\n";

  auto ranked = [&](const char* title, const json& list, size_t width) {
    o << "\n" << title << "\n";
    for (size_t i = 0; i < list.size() && i < 10; ++i) {
      const auto& e = list[i];
      o << "  " << pad(e["label"].get<std::string>(), width) << num(e["score"].get<double>(), 4, true);
      if (e.contains("steps")) {
        o << "   ";
        for (const auto& v : e["steps"]) o << " " << num(v.get<double>(), 3, true);
      }
      o << "\n";
    }
  };
  ranked("Top heads (summed; then by step)", sum["top_heads"], 8);
  ranked("Top FFN neurons (summed; then by step)", sum["ffn_neurons"], 10);
  ranked("Top attention neurons (summed; then by step)", sum["attn_neurons"], 14);
  ranked("Query FFN neurons (summed; then by step)", sum["query_ffn_neurons"], 10);
  if (s.has_contrast) {
    ranked("Contrast: top FFN neurons for log p(target) - log p(foil)", sum["contrast"]["ffn_neurons"], 10);
    ranked("Contrast: top attention neurons", sum["contrast"]["attn_neurons"], 14);
  }

  // Each step in brief; `reslens explain` of the prompt and the tokens before it gives a step in full.
  for (size_t t = 0; t < steps.size(); ++t) {
    const json& d = j["steps"][t];
    const Explanation& ex = steps[t].explanation;
    o << "\nStep " << t << ": '" << report::tok(model, steps[t].token) << "' at position " << steps[t].position
      << ": p = " << num(100 * ex.real_prob, 2) << "%, rank " << ex.real_rank << "; layers sum to "
      << num(d["layer_sums"]["total"].get<double>(), 4, true);
    if (ex.has_contrast) o << "; contrast with '" << d["foil"]["text"].get<std::string>() << "'";
    o << "\n";
    auto line = [&](const char* what, const json& list) {
      o << "  " << what << ":";
      for (size_t i = 0; i < list.size() && i < 5; ++i) {
        o << " " << list[i]["label"].get<std::string>() << " " << num(list[i]["score"].get<double>(), 3, true);
      }
      o << "\n";
    };
    line("heads", d["top_heads"]);
    line("FFN neurons", d["ffn_neurons"]);
    line("attention neurons", d["attn_neurons"]);
  }
  for (size_t t = 0; t < done.foil_pass.steps.size(); ++t) {
    const TargetStep& st = done.foil_pass.steps[t];
    o << "\nFoil step " << (done.first_foil_step + static_cast<int>(t)) << ": '" << report::tok(model, st.token)
      << "' at position " << st.position << ": p = " << num(100 * st.explanation.real_prob, 2) << "%, rank "
      << st.explanation.real_rank << "\n";
  }
  return o.str();
}

void write_target_arrays(const std::filesystem::path& dir, const ExplainedTarget& done) {
  report::write_stacked(dir, done.target_pass.steps);
  const TargetSums& s = done.summed;
  auto put = [&](const std::string& name, const ScoreArray& a) {
    if (!a.values.empty()) write_npy(dir / ("summed_" + name + ".npy"), a.values.data(), a.shape);
  };
  put("layer_scores", report::layer_pairs(s.attn_layer, s.ffn_layer));
  put("head_scores", s.head);
  put("head_position_scores", s.head_position);
  put("ffn_neuron_scores", s.ffn_neuron);
  put("attn_neuron_scores", s.attn_neuron);
  put("query_ffn_neuron_scores", s.query_ffn_neuron);
  put("expert_scores", s.expert);
  if (s.has_contrast) {
    put("contrast_layer_scores", report::layer_pairs(s.contrast_attn_layer, s.contrast_ffn_layer));
    put("contrast_head_scores", s.contrast_head);
    put("contrast_ffn_neuron_scores", s.contrast_ffn_neuron);
    put("contrast_attn_neuron_scores", s.contrast_attn_neuron);
    put("contrast_expert_scores", s.contrast_expert);
  }
  if (!done.foil_pass.steps.empty()) report::write_stacked(dir / "foil_steps", done.foil_pass.steps);
}

}  // namespace reslens
