// run() and Session: the public entry points over forward().
#include "core/parallel.h"
#include "forward/forward.h"
#include "reslens/error.h"
#include "reslens/run.h"

namespace reslens {

int default_threads() { return hardware_threads(); }

RunResult run(const Model& model, std::span<const int32_t> tokens, const RunOptions& options) {
  validate_tokens(model, tokens, 0);
  if (options.intervention != nullptr) {
    validate_intervention(model, *options.intervention, static_cast<int64_t>(tokens.size()));
  }
  validate_pattern_rows(options.pattern_rows, static_cast<int64_t>(tokens.size()));
  RunResult result;
  result.pattern_rows = options.pattern_rows;
  ForwardArgs args;
  args.tokens = tokens;
  args.capture = &options.capture;
  args.cache = &result.cache;
  args.intervention = options.intervention;
  args.all_logits = options.all_logits;
  args.ggml_gelu = options.ggml_gelu;
  args.n_threads = options.n_threads;
  args.pattern_rows = result.pattern_rows;
  HookRunner hooks(model, options.hooks);
  if (!options.hooks.empty()) args.hooks = &hooks;
  result.logits = forward(model, args);
  if (args.hooks != nullptr) hooks.check_all_ran();
  return result;
}

struct Session::State {
  KvCache kv;
  bool ggml_gelu = false;
};

Session::Session(const Model& model, int n_threads, bool ggml_gelu)
    : model_(model), n_threads_(n_threads), state_(std::make_unique<State>()) {
  state_->ggml_gelu = ggml_gelu;
}

Session::~Session() = default;

int64_t Session::n_past() const { return state_->kv.n_past; }

std::vector<float> Session::append(std::span<const int32_t> tokens) {
  const ModelConfig& c = model_.config();
  KvCache& kv = state_->kv;
  validate_tokens(model_, tokens, kv.n_past);
  const int64_t need = kv.n_past + static_cast<int64_t>(tokens.size());
  if (need > kv.capacity) {
    // Grow geometrically (bounded by the context window) so generation does not copy per token.
    const int64_t cap = std::min<int64_t>(c.n_ctx, std::max<int64_t>(need, 2 * kv.capacity + 64));
    const auto kv_dim = static_cast<size_t>(c.n_key_value_heads * c.d_head);
    kv.k.resize(static_cast<size_t>(c.n_layers));
    kv.v.resize(static_cast<size_t>(c.n_layers));
    for (auto& b : kv.k) b.resize(static_cast<size_t>(cap) * kv_dim);
    for (auto& b : kv.v) b.resize(static_cast<size_t>(cap) * kv_dim);
    kv.capacity = cap;
  }
  ForwardArgs args;
  args.tokens = tokens;
  args.pos0 = kv.n_past;
  args.kv = &kv;
  args.ggml_gelu = state_->ggml_gelu;
  args.n_threads = n_threads_;
  Tensor logits = forward(model_, args);
  kv.n_past = need;
  return {logits.data(), logits.data() + logits.numel()};
}

}  // namespace reslens
