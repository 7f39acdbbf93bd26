// reslens ablate MODEL TEXT --ffn L:N,... --experts L:E,... --heads L:H,... --attn L:H:D[@P],...: zero components (spec
// A7: parameter level by default, activation level with --activation), re-run, and report the
// target's probability, rank and reciprocal rank before and after, with a seeded random baseline of
// the same size.
#include <cstdio>
#include <iostream>
#include <set>
#include <tuple>

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

// A portable generator (splitmix64): the same seed gives the same neurons on every platform.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  int64_t below(int64_t n) {  // uniform in [0, n) by rejection
    const uint64_t un = static_cast<uint64_t>(n), limit = UINT64_MAX - UINT64_MAX % un;
    uint64_t x = next();
    while (x >= limit) x = next();
    return static_cast<int64_t>(x % un);
  }
};

nlohmann::json stats_json(const TargetStats& s) {
  return {{"prob", s.prob}, {"log_prob", s.logprob}, {"rank", s.rank}, {"rr", s.rr}, {"top1", s.top1}};
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
    const std::vector<int32_t> tokens = prompt->tokens(*model);
    const int P = resolve_position(*position, tokens.size());
    Intervention iv;
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
    if (*activation) iv.position = P;
    std::string note;
    RunOptions o;
    o.n_threads = args->threads;
    const RunResult plain = run(*model, std::span<const int32_t>(tokens).first(static_cast<size_t>(P + 1)), o);
    const std::span<const float> logits_p(plain.logits.row(0), static_cast<size_t>(c.d_vocab));
    const int32_t w = target->empty() ? target_stats(logits_p, 0).top1
                                      : pick_token(*model, resolve_token(*model, *target, "target", &note), logits_p,
                                                   "target", &note);
    if (!note.empty()) std::cerr << note << "\n";
    const AblationResult res = ablate(*model, tokens, w, iv, P, args->threads);

    // The random baseline: as many components of each kind, drawn uniformly without repeats.
    AblationResult rnd;
    Intervention random_iv;
    if (!*no_random) {
      Rng rng{*seed};
      std::set<std::pair<int, int>> used_f, used_h;
      std::set<std::tuple<int, int, int>> used_a;
      while (random_iv.ffn_neurons.size() < iv.ffn_neurons.size()) {
        const int64_t i = rng.below(c.n_layers * c.d_mlp);
        const auto key = std::make_pair(static_cast<int>(i / c.d_mlp), static_cast<int>(i % c.d_mlp));
        if (used_f.insert(key).second) random_iv.ffn_neurons.push_back({key.first, key.second});
      }
      while (random_iv.heads.size() < iv.heads.size()) {
        const int64_t i = rng.below(c.n_layers * c.n_heads);
        const auto key = std::make_pair(static_cast<int>(i / c.n_heads), static_cast<int>(i % c.n_heads));
        if (used_h.insert(key).second) random_iv.heads.push_back({key.first, key.second});
      }
      while (random_iv.attn_neurons.size() < iv.attn_neurons.size()) {
        const int64_t per_layer = c.n_heads * c.d_head;
        const int64_t i = rng.below(c.n_layers * per_layer);
        const auto key = std::make_tuple(static_cast<int>(i / per_layer), static_cast<int>(i % per_layer / c.d_head),
                                         static_cast<int>(i % c.d_head));
        if (used_a.insert(key).second) random_iv.attn_neurons.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), -1});
      }
      random_iv.position = iv.position;
      rnd = ablate(*model, tokens, w, random_iv, P, args->threads);
    }
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
      std::printf("  %-10s %8.4f%%  %8.4f  %6lld  %10.6f\n", name, 100.0 * s.prob, s.logprob,
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
