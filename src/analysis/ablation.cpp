// Interventions (spec A7): zero components, run again, and measure the target before and after;
// with the random baseline of the same size that `reslens ablate`, the server and Python report.
#include <set>
#include <tuple>

#include "core/rng.h"
#include "reslens/error.h"
#include "reslens/explain_request.h"

namespace reslens {

AblationResult ablate(const Model& model, std::span<const int32_t> tokens, int32_t target, const Intervention& zeroed,
                      int position, int n_threads) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t P = position < 0 ? T + position : position;
  if (P < 0 || P >= T) throw OutOfRange("position " + std::to_string(position) + " is out of range");
  if (target < 0 || target >= model.config().d_vocab) {
    throw OutOfRange("target token " + std::to_string(target) + " is out of range (0.." +
                     std::to_string(model.config().d_vocab - 1) + ")");
  }
  RunOptions o;
  o.all_logits = true;
  o.n_threads = n_threads;
  const std::span<const int32_t> used = tokens.first(static_cast<size_t>(P + 1));  // causal: later tokens never matter
  const RunResult before = run(model, used, o);
  o.intervention = &zeroed;
  const RunResult after = run(model, used, o);
  const auto V = static_cast<size_t>(model.config().d_vocab);
  AblationResult r;
  r.before = target_stats({before.logits.row(P), V}, target);
  r.after = target_stats({after.logits.row(P), V}, target);
  return r;
}

Intervention random_intervention(const ModelConfig& c, const Intervention& like, uint64_t seed) {
  // One stream for all three kinds, in this order: the draws `reslens ablate --seed` has always made.
  Rng rng(seed);
  Intervention iv;
  std::set<std::pair<int, int>> used_f, used_h;
  std::set<std::tuple<int, int, int>> used_a;
  while (iv.ffn_neurons.size() < like.ffn_neurons.size()) {
    const int64_t i = rng.below(c.n_layers * c.d_mlp);
    const auto key = std::make_pair(static_cast<int>(i / c.d_mlp), static_cast<int>(i % c.d_mlp));
    if (used_f.insert(key).second) iv.ffn_neurons.push_back({key.first, key.second});
  }
  while (iv.heads.size() < like.heads.size()) {
    const int64_t i = rng.below(c.n_layers * c.n_heads);
    const auto key = std::make_pair(static_cast<int>(i / c.n_heads), static_cast<int>(i % c.n_heads));
    if (used_h.insert(key).second) iv.heads.push_back({key.first, key.second});
  }
  const int64_t per_layer = c.n_heads * c.d_head;
  while (iv.attn_neurons.size() < like.attn_neurons.size()) {
    const int64_t i = rng.below(c.n_layers * per_layer);
    const auto key = std::make_tuple(static_cast<int>(i / per_layer), static_cast<int>(i % per_layer / c.d_head),
                                     static_cast<int>(i % c.d_head));
    if (used_a.insert(key).second) iv.attn_neurons.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), -1});
  }
  iv.position = like.position;
  return iv;
}

AblationReport ablate(const Model& model, const AblationRequest& request) {
  AblationReport out;
  if (!request.tokens.empty()) {
    out.tokens = request.tokens;
  } else {
    const Tokenizer& tok = model.tokenizer();
    out.tokens = tok.encode(request.prompt, tok.add_bos_default());
    if (out.tokens.empty()) throw InvalidArgument("the prompt has no tokens: nothing to ablate");
  }
  if (request.zeroed.empty()) throw InvalidArgument("nothing to ablate: name FFN neurons, experts, heads or attention neurons");
  out.position = resolve_position(request.position, out.tokens.size());
  out.activation = request.activation;
  const std::optional<TokenCandidates> named =
      request.target ? std::optional(token_candidates(model, *request.target, "target")) : std::nullopt;
  // The target: the top prediction at P, or the named token the model finds likelier there.
  RunOptions o;
  o.n_threads = request.n_threads;
  const RunResult plain = run(model, std::span<const int32_t>(out.tokens).first(static_cast<size_t>(out.position + 1)), o);
  const std::span<const float> logits(plain.logits.row(0), static_cast<size_t>(model.config().d_vocab));
  out.target = named ? pick_token(model, *named, logits, "target", out.notes) : target_stats(logits, 0).top1;
  Intervention zeroed = request.zeroed;
  zeroed.position = request.activation ? out.position : -1;
  out.result = ablate(model, out.tokens, out.target, zeroed, out.position, request.n_threads);
  if (request.random_seed) {
    RandomBaseline rb;
    rb.seed = *request.random_seed;
    rb.zeroed = random_intervention(model.config(), zeroed, rb.seed);
    rb.result = ablate(model, out.tokens, out.target, rb.zeroed, out.position, request.n_threads);
    out.random = std::move(rb);
  }
  return out;
}

}  // namespace reslens
