// reslens ablate MODEL TEXT --ffn L:N,... --experts L:E,... --heads L:H,... --attn L:H:D[@P],...: zero components (spec
// A7: parameter level by default, activation level with --activation), re-run, and report the
// target's probability, rank and reciprocal rank before and after, with a seeded random baseline of
// the same size.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

namespace {

// "a:b:c" -> numbers, with an optional "@p" suffix.
std::vector<int64_t> split_colon(const std::string& item, size_t want, int64_t* at) {
  std::string body = item;
  if (at != nullptr) {
    *at = -1;
    if (const auto p = body.find('@'); p != std::string::npos) {
      *at = parse_int_list(body.substr(p + 1), "position")[0];
      body = body.substr(0, p);
    }
  }
  std::string csv = body;
  for (char& ch : csv) ch = ch == ':' ? ',' : ch;
  const auto v = parse_int_list(csv, "index");
  if (v.size() != want) {
    throw InvalidArgument("'" + item + "' should have " + std::to_string(want) + " numbers separated by ':'");
  }
  return v;
}

nlohmann::json stats_json(const TargetStats& s) {
  return {{"prob", s.prob}, {"log_prob", s.log_prob}, {"rank", s.rank}, {"rr", s.rr}, {"top1", s.top1}};
}

}  // namespace

void register_ablate(CLI::App& app) {
  auto* cmd = app.add_subcommand("ablate", "Zero neurons or heads and measure the target before and after");
  auto args = std::make_shared<ModelArgs>();
  auto prompt = std::make_shared<PromptArgs>();
  auto ffn = std::make_shared<std::vector<std::string>>();
  auto heads = std::make_shared<std::vector<std::string>>();
  auto attn = std::make_shared<std::vector<std::string>>();
  auto experts = std::make_shared<std::vector<std::string>>();
  auto target = std::make_shared<std::string>();
  auto position = std::make_shared<int>(-1);
  auto activation = std::make_shared<bool>(false);
  auto seed = std::make_shared<uint64_t>(0);
  auto no_random = std::make_shared<bool>(false);
  auto json = std::make_shared<bool>(false);
  args->add(*cmd);
  prompt->add(*cmd);
  cmd->add_option("--ffn", *ffn, "FFN neurons layer:neuron, comma-separated")->delimiter(',');
  cmd->add_option("--heads", *heads, "Heads layer:head, comma-separated")->delimiter(',');
  cmd->add_option("--attn", *attn, "Attention neurons layer:head:dim[@source_pos], comma-separated")->delimiter(',');
  cmd->add_option("--experts", *experts, "Mixture-of-experts models: whole experts layer:expert (all their neurons)")
      ->delimiter(',');
  cmd->add_option("--target", *target, "Target token: text or id (default: the top prediction)");
  cmd->add_option("-p,--position", *position, "Position whose prediction is measured (-1 = last)");
  cmd->add_flag("--activation", *activation, "Zero only at that position (activation level) instead of the parameters");
  cmd->add_option("--seed", *seed, "Seed of the random baseline");
  cmd->add_flag("--no-random", *no_random, "Skip the random baseline");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] {
    const auto model = args->load();
    const ModelConfig& c = model->config();
    AblationRequest req;
    req.tokens = prompt->tokens(*model);
    req.position = *position;
    req.target = token_name(*target);
    req.activation = *activation;
    req.n_threads = args->threads;
    if (!*no_random) req.random_seed = *seed;
    resolve_position(*position, req.tokens.size());  // a bad position fails before a bad component
    Intervention& iv = req.zeroed;
    for (const auto& s : *ffn) {
      const auto v = split_colon(s, 2, nullptr);
      iv.ffn_neurons.push_back({static_cast<int>(v[0]), static_cast<int>(v[1])});
    }
    for (const auto& s : *experts) {  // an expert is its d_expert neurons: e * d_expert + k
      const auto v = split_colon(s, 2, nullptr);
      if (c.n_experts == 0) throw InvalidArgument("--experts '" + s + "': the model has no experts");
      if (v[0] < 0 || v[0] >= c.n_layers || v[1] < 0 || v[1] >= c.n_experts) {
        throw OutOfRange("--experts '" + s + "': layer 0.." + std::to_string(c.n_layers - 1) + ", expert 0.." +
                         std::to_string(c.n_experts - 1));
      }
      for (int64_t k = 0; k < c.d_expert; ++k) {
        iv.ffn_neurons.push_back({static_cast<int>(v[0]), static_cast<int>(v[1] * c.d_expert + k)});
      }
    }
    for (const auto& s : *heads) {
      const auto v = split_colon(s, 2, nullptr);
      iv.heads.push_back({static_cast<int>(v[0]), static_cast<int>(v[1])});
    }
    for (const auto& s : *attn) {
      int64_t at = -1;
      const auto v = split_colon(s, 3, &at);
      if (at >= 0 && !*activation) throw InvalidArgument("'" + s + "': a source position needs --activation");
      iv.attn_neurons.push_back({static_cast<int>(v[0]), static_cast<int>(v[1]), static_cast<int>(v[2]), static_cast<int>(at)});
    }
    if (iv.empty()) throw InvalidArgument("nothing to ablate: give --ffn, --experts, --heads or --attn");
    const AblationReport rep = ablate(*model, req);
    print_notes(rep.notes);
    const int P = rep.position;
    const int32_t w = rep.target;
    const AblationResult& res = rep.result;
    const AblationResult rnd = rep.random ? rep.random->result : AblationResult{};
    const Intervention random_iv = rep.random ? rep.random->zeroed : Intervention{};
    const Tokenizer& tok = model->tokenizer();
    if (*json) {
      nlohmann::json j = {{"target", {{"id", w}, {"text", json_safe(tok.token_text(w))}}}, {"position", P},
                          {"level", *activation ? "activation" : "parameter"},
                          {"before", stats_json(res.before)}, {"after", stats_json(res.after)}};
      if (!*no_random) {
        nlohmann::json r = {{"seed", *seed}, {"after", stats_json(rnd.after)}, {"ffn", nlohmann::json::array()},
                            {"heads", nlohmann::json::array()}, {"attn", nlohmann::json::array()}};
        for (const auto& f : random_iv.ffn_neurons) r["ffn"].push_back({f.layer, f.neuron});
        for (const auto& h : random_iv.heads) r["heads"].push_back({h.layer, h.head});
        for (const auto& a : random_iv.attn_neurons) r["attn"].push_back({a.layer, a.head, a.dim});
        j["random"] = r;
      }
      print_json(j);
      return;
    }
    std::printf("target '%s' (id %d) at position %d, %s level\n\n", printable(tok.token_text(w)).c_str(), w, P,
                *activation ? "activation" : "parameter");
    std::printf("                 prob      log p    rank      1/rank\n");
    auto line = [](const char* name, const TargetStats& s) {
      std::printf("  %-10s %8.4f%%  %8.4f  %6lld  %10.6f\n", name, 100.0 * s.prob, s.log_prob,
                  static_cast<long long>(s.rank), s.rr);
    };
    line("before", res.before);
    line("ablated", res.after);
    if (!*no_random) line("random", rnd.after);
    std::printf("\nprobability change: %+.2f%% (random baseline %+.2f%%)\n",
                100.0 * (res.after.prob - res.before.prob) / res.before.prob,
                *no_random ? 0.0 : 100.0 * (rnd.after.prob - rnd.before.prob) / rnd.before.prob);
  });
}

}  // namespace reslens::cli
