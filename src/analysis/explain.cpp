// explain(): the orchestration of the paper's analyses for one position (spec §2-§4). The residual
// points are computed here; every score in its own file (src/analysis/README.md lists them).
#include <chrono>
#include <cmath>

#include "analysis/explain_internal.h"
#include "analysis/ranking.h"
#include "core/parallel.h"
#include "reslens/error.h"

namespace reslens {

ScoreArray::ScoreArray(std::vector<int64_t> s) : shape(std::move(s)) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  values.assign(static_cast<size_t>(n), 0.0);
}

namespace {
size_t flat(const std::vector<int64_t>& shape, std::initializer_list<int64_t> index) {
  if (index.size() != shape.size()) throw InvalidArgument("ScoreArray indexed with the wrong number of indices");
  int64_t f = 0;
  size_t a = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= shape[a]) throw OutOfRange("ScoreArray index " + std::to_string(i) + " out of range");
    f = f * shape[a++] + i;
  }
  return static_cast<size_t>(f);
}
}  // namespace

double& ScoreArray::at(std::initializer_list<int64_t> index) { return values[flat(shape, index)]; }
double ScoreArray::at(std::initializer_list<int64_t> index) const { return values[flat(shape, index)]; }

HookFilter explain_capture() {
  return HookFilter::from_patterns({"blocks.*.hook_resid_pre", "blocks.*.hook_attn_out", "blocks.*.hook_resid_mid",
                                    "blocks.*.hook_mlp_out", "blocks.*.hook_resid_post", "blocks.*.mlp.hook_post",
                                    "blocks.*.attn.hook_v", "blocks.*.attn.hook_pattern",
                                    "blocks.*.ln1_post.hook_scale", "blocks.*.ln2_post.hook_scale"});
}

TargetStats target_stats(std::span<const float> logits, int32_t target) {
  const analysis::Distribution d = analysis::make_distribution(logits, {});
  TargetStats s;
  s.log_prob = d.log_prob(target);
  s.prob = std::exp(s.log_prob);
  s.rank = d.rank(target);
  s.rr = 1.0 / static_cast<double>(s.rank);
  int32_t best = 0;
  for (size_t j = 1; j < logits.size(); ++j) best = logits[j] > logits[static_cast<size_t>(best)] ? static_cast<int32_t>(j) : best;
  s.top1 = best;
  return s;
}

Explanation explain(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                    const ExplainOptions& opts) {
  return analysis::explain_sharing(model, run, tokens, opts, nullptr);
}

Explanation explain(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                    const ExplainOptions& opts, const std::function<bool()>& should_stop,
                    const ExplainProgressFn& on_progress) {
  return analysis::explain_sharing(model, run, tokens, opts, nullptr, nullptr, should_stop, on_progress);
}

Explanation analysis::explain_sharing(const Model& model, const RunResult& run, std::span<const int32_t> tokens,
                                      const ExplainOptions& opts, SharedProjections* shared, ScoreWidths* widths,
                                      const std::function<bool()>& should_stop, const ExplainProgressFn& on_progress) {
  auto since = std::chrono::steady_clock::now();
  const ModelConfig& c = model.config();
  const analysis::TraceView trace(model, run);
  const int64_t T = trace.n_positions();
  if (static_cast<int64_t>(tokens.size()) != T) {
    throw InvalidArgument("explain: " + std::to_string(tokens.size()) + " tokens but the run has " +
                          std::to_string(T) + " positions");
  }
  const int64_t P = opts.position < 0 ? T + opts.position : opts.position;
  if (P < 0 || P >= T) {
    throw OutOfRange("position " + std::to_string(opts.position) + " is out of range (the prompt has " +
                     std::to_string(T) + " tokens: 0.." + std::to_string(T - 1) + ")");
  }
  auto check_token = [&](int32_t id, const char* what) {
    if (id < 0 || id >= c.d_vocab) {
      throw OutOfRange(std::string(what) + " token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                       std::to_string(c.d_vocab - 1) + ")");
    }
  };
  const int threads = opts.n_threads > 0 ? opts.n_threads : default_threads();
  const int64_t L = c.n_layers, d = c.d_model;

  Explanation ex;
  // Phase timings for benchmarks (Explanation::phase_ms): the time since the previous mark. A phase
  // boundary is also where a caller that no longer wants the explanation stops it (a 7B explain's
  // phases take seconds to tens of seconds; the last one needs no check).
  auto mark = [&since, &ex, &should_stop](const char* phase, bool last = false) {
    const auto now = std::chrono::steady_clock::now();
    ex.phase_ms.emplace_back(phase, std::chrono::duration<double, std::milli>(now - since).count());
    since = now;
    if (!last && should_stop && should_stop()) {
      throw Cancelled(std::string("explain stopped after its ") + phase + " phase: the request was cancelled");
    }
  };
  ex.position = static_cast<int>(P);
  ex.n_positions = P + 1;
  const std::span<const float> real = trace.logits(P);
  ex.target = opts.target >= 0 ? opts.target : target_stats(real, 0).top1;
  check_token(ex.target, "target");
  if (opts.foil >= 0) {
    check_token(opts.foil, "foil");
    if (opts.foil == ex.target) throw InvalidArgument("the foil is the target itself: nothing to contrast");
    ex.foil = opts.foil;
  }
  const TargetStats rs = target_stats(real, ex.target);
  ex.real_logit = static_cast<double>(real[static_cast<size_t>(ex.target)]);
  ex.real_log_prob = rs.log_prob;
  ex.real_prob = rs.prob;
  ex.real_rank = rs.rank;

  const ExplainProgressFn* progress = on_progress ? &on_progress : nullptr;
  analysis::report_progress(progress, "points", 0, 1);
  const analysis::VocabProjector proj(model, {trace.resid_post(L - 1, P), static_cast<size_t>(d)},
                                      opts.include_final_bias, threads);
  ex.frozen_scale = proj.scale();

  // The 2L+1 residual points at P: h^{-1}, then r^l (after attention) and h^l (after the FFN).
  std::vector<float> vs(static_cast<size_t>((2 * L + 1) * d));
  auto put = [&](int64_t i, const float* v) { std::copy(v, v + d, vs.begin() + i * d); };
  put(0, trace.embed(P));
  for (int64_t l = 0; l < L; ++l) {
    put(2 * l + 1, trace.resid_mid(l, P));
    put(2 * l + 2, trace.resid_post(l, P));
  }
  // One GEMM for every point's bs and, for the final-vector check below, W_U beta_f (GPT-2's ln_f
  // bias, raw: it is not a residual vector to normalise).
  const ModelWeights& W = model.weights();
  const bool final_bias = !W.ln_final_b.empty();
  const int64_t n_rows = 2 * L + 1 + (final_bias ? 1 : 0);
  std::vector<float> ys(static_cast<size_t>(n_rows * d));
  for (int64_t i = 0; i < 2 * L + 1; ++i) proj.prepare(vs.data() + i * d, ys.data() + i * d);
  if (final_bias) std::copy(W.ln_final_b.data, W.ln_final_b.data + d, ys.begin() + (2 * L + 1) * d);
  std::vector<float> logits(static_cast<size_t>(n_rows * c.d_vocab));
  proj.project_prepared(ys.data(), n_rows, logits.data());
  analysis::ExplainContext ctx{model, trace, proj, opts, P, ex.target, ex.foil, {}, threads, nullptr, {}, nullptr, shared, widths, nullptr};
  ctx.progress = progress;
  // Each point's distribution and lens entry, independently (in parallel over points).
  ctx.points.resize(static_cast<size_t>(2 * L + 1));
  ex.lens.resize(static_cast<size_t>(2 * L + 1));
  parallel_for(threads, 2 * L + 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      analysis::Distribution& dist = ctx.points[static_cast<size_t>(i)];
      dist = analysis::make_distribution({logits.data() + i * c.d_vocab, static_cast<size_t>(c.d_vocab)}, proj.bias(),
                                         static_cast<double>(c.final_softcap));
      LensPoint& lp = ex.lens[static_cast<size_t>(i)];
      lp.label = i == 0 ? "emb" : (i % 2 ? "a" : "f") + std::to_string((i - 1) / 2);
      lp.log_prob = dist.log_prob(ex.target);
      lp.prob = std::exp(lp.log_prob);
      lp.rank = dist.rank(ex.target);
      for (int64_t j : analysis::top_indices(dist.logits, opts.lens_top_k)) {
        lp.top_ids.push_back(static_cast<int32_t>(j));
        lp.top_probs.push_back(dist.q[static_cast<size_t>(j)]);
      }
    }
  });
  ex.bs_log_prob_embedding = ex.lens.front().log_prob;
  ex.bs_log_prob_final = ex.lens.back().log_prob;

  analysis::score_layers(ctx, ex);

  // bs of the final vector against the real logits (equal for Llama; GPT-2 needs ln_f's bias).
  {
    const float* fin = logits.data() + 2 * L * c.d_vocab;
    const float* beta = final_bias ? logits.data() + (2 * L + 1) * c.d_vocab : nullptr;
    double worst = 0;
    for (int64_t j = 0; j < c.d_vocab; ++j) {
      double b = W.b_U.empty() ? 0.0 : static_cast<double>(W.b_U[j]);
      if (beta != nullptr) b += static_cast<double>(beta[j]);
      double bs = static_cast<double>(fin[j]) + b;
      if (c.final_softcap > 0.0f) {  // Gemma 2: capped as the pass caps the logits
        const auto cap = static_cast<double>(c.final_softcap);
        bs = cap * std::tanh(bs / cap);
      }
      worst = std::max(worst, std::abs(bs - static_cast<double>(real[static_cast<size_t>(j)])));
    }
    ex.checks["bs_final_vs_real_logits"] = worst;
  }

  ctx.report("points", 1, 1);
  mark("points");
  // The bounded method pays off when the vocabulary is large; baselines need every token's rank.
  // Its certified intervals assume that a vector moves the logits linearly (by bs(v)); under a
  // final-logit softcap (Gemma 2) it is not used: every score takes the full method, exactly.
  bool bounded = opts.method == ScoreMethod::kBounded ||
                 (opts.method == ScoreMethod::kAuto && c.d_vocab > 8192 && !opts.baselines);
  if (c.final_softcap > 0.0f) bounded = false;
  if (bounded) {
    ctx.bounds = analysis::model_bounds(model, threads, progress);
    mark("bounds");
    ctx.report("tails", 0, 1);
    std::vector<const analysis::Distribution*> dists;
    // The states scored against: h^{l-1} (attention l) and r^l (FFN l); the final point is none's.
    for (int64_t i = 0; i < 2 * L; ++i) dists.push_back(&ctx.points[static_cast<size_t>(i)]);
    if (opts.projection_cache) ctx.projections = analysis::ProjectionCache::open(model);
    const int head_size = opts.head_size > 0 ? opts.head_size : ctx.projections != nullptr ? 16 : 64;
    ctx.tails = analysis::split_tails(model, *ctx.bounds, dists, head_size, {ex.target, ex.foil}, threads);
    if (widths != nullptr) {
      widths->tails.clear();
      for (size_t i = 0; i < ctx.tails.size(); ++i) widths->tails.push_back(analysis::keep_split(ctx.tails[i], *dists[i]));
    }
    // The sketch is for explains without a projection cache: what the cache's finer rows leave, the
    // int8 sketch almost never certifies (measured: 3 of ~135 vectors), so it would only add its cost.
    if (opts.projection_sketch && ctx.projections == nullptr && analysis::projection_sketch_available()) {
      ctx.sketch = analysis::projection_sketch(model, threads, progress);
    }
    ctx.report("tails", 1, 1);
    mark("tails");
    analysis::score_attention_bounded(ctx, ex);
  } else {
    analysis::score_attention(ctx, ex);
  }
  mark("attention");
  if (bounded && !opts.baselines) {
    analysis::score_ffn_neurons_bounded(ctx, ex);
  } else {
    analysis::score_ffn_neurons(ctx, ex);
  }
  mark("ffn");
  ctx.report("checks", 0, 1);
  analysis::check_attention_identities(ctx, ex);
  analysis::check_ffn_identities(ctx, ex);
  analysis::score_experts(ctx, ex);
  ctx.report("checks", 1, 1);
  mark("checks");
  ctx.report("queries", 0, 1);
  analysis::score_queries(ctx, ex);
  ctx.report("queries", 1, 1);
  mark("queries", true);
  return ex;
}

}  // namespace reslens
