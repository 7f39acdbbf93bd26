// The bounded method (kBounded) for attention and FFN scores: every score from the head tokens of
// its state's distribution plus certified tail bounds (analysis/bounds.h); a vector whose bound is
// not tight enough is projected onto the whole vocabulary instead, so every score stays exact.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "analysis/explain_internal.h"
#include "core/parallel.h"
#include "ops/gemm.h"

namespace reslens::analysis {

namespace {

// Head projections of prepared directions y0 [n, d]: gh [n, |H|] = y0 . head_rows^T / sigma and the
// tail means m [n] = y0 . mu_T / sigma.
void head_projections(const ExplainContext& ctx, const TailSplit& t, const std::vector<float>& y0, int64_t n,
                      std::vector<double>& gh, std::vector<double>& m) {
  const int64_t d = ctx.model.config().d_model;
  const auto nh = static_cast<int64_t>(t.ids.size());
  std::vector<float> raw(static_cast<size_t>(n * nh));
  ops::matmul_nt(n, nh, d, y0.data(), d, t.head_rows.data(), d, raw.data(), nh, ctx.threads);
  const double inv = 1.0 / ctx.proj.scale();
  gh.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) gh[i] = static_cast<double>(raw[i]) * inv;
  m.assign(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += static_cast<double>(y0[static_cast<size_t>(i * d + k)]) * t.mu[static_cast<size_t>(k)];
    m[static_cast<size_t>(i)] = s * inv;
  }
}

}  // namespace

void score_ffn_neurons_bounded(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const ModelBounds& mb = *ctx.bounds;
  const int64_t L = c.n_layers, N = c.d_mlp, d = c.d_model, V = c.d_vocab;
  const double sigma = ctx.proj.scale();
  ex.ffn_neuron = ScoreArray({L, N});
  ex.ffn_coef = ScoreArray({L, N});
  if (ex.has_contrast) ex.contrast_ffn_neuron = ScoreArray({L, N});
  int64_t bounded = 0, full = 0;
  for (int64_t l = 0; l < L; ++l) {
    const TailSplit& t = ctx.tails[static_cast<size_t>(2 * l + 1)];
    const Distribution& dist = ctx.before_ffn(l);
    const LayerWeights& lw = ctx.model.weights().layers[static_cast<size_t>(l)];
    const std::vector<float> y0 = prepared_columns(ctx.model, lw.W_out, 0, N);  // [d_mlp, d_model]
    std::vector<double> gh, mt;
    head_projections(ctx, t, y0, N, gh, mt);
    const auto nh = static_cast<int64_t>(t.ids.size());
    const int wi = t.index_of(ctx.w), fi = ctx.foil >= 0 ? t.index_of(ctx.foil) : -1;
    const float* m = ctx.trace.post(l, ctx.P);
    std::vector<char> exact(static_cast<size_t>(N), 0);
    parallel_for(ctx.threads, N, [&](int64_t k0, int64_t k1) {
      std::vector<double> delta(static_cast<size_t>(nh));
      for (int64_t k = k0; k < k1; ++k) {
        const double s = static_cast<double>(m[k]);
        const double* g = gh.data() + k * nh;
        for (int64_t h = 0; h < nh; ++h) delta[static_cast<size_t>(h)] = s * g[h];
        const double lse = bounded_log_expectation(
            t, delta.data(), s * mt[static_cast<size_t>(k)],
            s * s * mb.ffn_gamma_norm[static_cast<size_t>(l)][static_cast<size_t>(k)] / (sigma * sigma),
            std::abs(s) * mb.ffn_norm[static_cast<size_t>(l)][static_cast<size_t>(k)] * mb.umax / sigma, ctx.opts.bound_tol);
        ex.ffn_coef.at({l, k}) = s;
        if (fi >= 0) ex.contrast_ffn_neuron.at({l, k}) = s * (g[wi] - g[fi]);
        if (std::isnan(lse)) {
          exact[static_cast<size_t>(k)] = 1;
        } else {
          ex.ffn_neuron.at({l, k}) = s * g[wi] - lse;
        }
      }
    });
    // The vectors whose bounds were too loose, over the whole vocabulary.
    std::vector<int64_t> todo;
    for (int64_t k = 0; k < N; ++k) {
      if (exact[static_cast<size_t>(k)]) todo.push_back(k);
    }
    full += static_cast<int64_t>(todo.size());
    bounded += N - static_cast<int64_t>(todo.size());
    const std::vector<float> fc2 = ffn_value_vectors(ctx.model, l);
    constexpr int64_t kChunk = 128;
    std::vector<float> rows(static_cast<size_t>(kChunk * d)), G(static_cast<size_t>(kChunk * V));
    for (size_t i0 = 0; i0 < todo.size(); i0 += kChunk) {
      const auto n = static_cast<int64_t>(std::min<size_t>(kChunk, todo.size() - i0));
      for (int64_t i = 0; i < n; ++i) {
        std::copy(fc2.begin() + todo[i0 + static_cast<size_t>(i)] * d, fc2.begin() + (todo[i0 + static_cast<size_t>(i)] + 1) * d,
                  rows.begin() + i * d);
      }
      ctx.proj.project(rows.data(), n, d, G.data());
      parallel_for(ctx.threads, n, [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) {
          const int64_t k = todo[i0 + static_cast<size_t>(i)];
          ex.ffn_neuron.at({l, k}) = log_prob_increase(dist, G.data() + i * V, static_cast<double>(m[k]), ctx.w);
        }
      });
    }
  }
  ex.method_counts["ffn_bounded"] = bounded;
  ex.method_counts["ffn_full"] = full;
}

void score_attention_bounded(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const ModelBounds& mb = *ctx.bounds;
  const int64_t L = c.n_layers, H = c.n_heads, dh = c.d_head, d = c.d_model, V = c.d_vocab;
  const int64_t Pn = ctx.P + 1;
  const double sigma = ctx.proj.scale(), tol = ctx.opts.bound_tol;
  init_attention_arrays(ctx, ex);
  std::vector<int64_t> bounded(static_cast<size_t>(H), 0), full(static_cast<size_t>(H), 0);
  for (int64_t l = 0; l < L; ++l) {
    fill_attention_coefficients(ctx, ex, l);
    const TailSplit& t = ctx.tails[static_cast<size_t>(2 * l)];
    const Distribution& dist = ctx.before_attn(l);
    const LayerWeights& lw = ctx.model.weights().layers[static_cast<size_t>(l)];
    const std::vector<float> y0 = prepared_columns(ctx.model, lw.W_O, 0, H * dh);  // [H*d_head, d_model]
    std::vector<double> gh, mt;
    head_projections(ctx, t, y0, H * dh, gh, mt);
    const auto nh = static_cast<int64_t>(t.ids.size());
    const int wi = t.index_of(ctx.w), fi = ctx.foil >= 0 ? t.index_of(ctx.foil) : -1;
    const auto& gn = mb.attn_gamma_norm[static_cast<size_t>(l)];
    const auto& nn = mb.attn_norm[static_cast<size_t>(l)];

    const std::vector<float> cols = attn_value_vectors(ctx.model, l);  // [H*d_head, d_model]

    parallel_for(ctx.threads, H, [&](int64_t h0, int64_t h1) {
      std::vector<double> delta(static_cast<size_t>(nh)), coef(static_cast<size_t>(dh)), total(static_cast<size_t>(dh));
      // A combination sum_n coef[n] * (neuron n of head h) from its bounds; false when they are too loose.
      auto combo = [&](int64_t h, const std::vector<double>& cf, double& score, double& contrast) {
        std::fill(delta.begin(), delta.end(), 0.0);
        double lin = 0, quad = 0, norm2 = 0;
        const double* gg = mb.head_gram_gamma[static_cast<size_t>(l)].data() + h * dh * dh;
        const double* ge = mb.head_gram[static_cast<size_t>(l)].data() + h * dh * dh;
        for (int64_t a = 0; a < dh; ++a) {
          const double ca = cf[static_cast<size_t>(a)];
          if (ca == 0) continue;
          const double* g = gh.data() + (h * dh + a) * nh;
          for (int64_t j = 0; j < nh; ++j) delta[static_cast<size_t>(j)] += ca * g[j];
          lin += ca * mt[static_cast<size_t>(h * dh + a)];
          for (int64_t b = 0; b < dh; ++b) {
            quad += ca * cf[static_cast<size_t>(b)] * gg[a * dh + b];
            norm2 += ca * cf[static_cast<size_t>(b)] * ge[a * dh + b];
          }
        }
        // Gram matrices come from float GEMMs: a relative slack keeps the quadratic bounds upper.
        quad = std::max(0.0, quad) * 1.01 / (sigma * sigma);
        const double range = std::sqrt(std::max(0.0, norm2) * 1.01) * mb.umax / sigma;
        contrast = fi >= 0 ? delta[static_cast<size_t>(wi)] - delta[static_cast<size_t>(fi)] : 0.0;
        const double lse = bounded_log_expectation(t, delta.data(), lin, quad, range, tol);
        if (std::isnan(lse)) return false;
        score = delta[static_cast<size_t>(wi)] - lse;
        return true;
      };
      for (int64_t h = h0; h < h1; ++h) {
        // Scores whose bounds fail are computed exactly after the bounded pass, all of a head's in
        // one projection: a neuron needs its direction's projection (shared by every position, as
        // the position only scales it), a combination (head x position, head) its own vector's.
        std::vector<char> need_dir(static_cast<size_t>(dh), 0);
        std::vector<std::pair<int64_t, int64_t>> neuron_fails;  // (n, p)
        std::vector<std::vector<double>> combo_coefs;           // coefficients of failed combinations
        std::vector<int64_t> combo_pos;                          // their position (-1: the whole head)
        std::fill(total.begin(), total.end(), 0.0);
        for (int64_t p = 0; p < Pn; ++p) {
          for (int64_t n = 0; n < dh; ++n) {
            const double s = ex.attn_coef.at({l, h, n, p});
            coef[static_cast<size_t>(n)] = s;
            total[static_cast<size_t>(n)] += s;
            const int64_t dir = h * dh + n;
            const double* g = gh.data() + dir * nh;
            for (int64_t j = 0; j < nh; ++j) delta[static_cast<size_t>(j)] = s * g[j];
            if (fi >= 0) ex.contrast_attn_neuron.at({l, h, n, p}) = s * (g[wi] - g[fi]);
            const double lse = bounded_log_expectation(t, delta.data(), s * mt[static_cast<size_t>(dir)],
                                                       s * s * gn[static_cast<size_t>(dir)] / (sigma * sigma),
                                                       std::abs(s) * nn[static_cast<size_t>(dir)] * mb.umax / sigma, tol);
            if (!std::isnan(lse)) {
              ex.attn_neuron.at({l, h, n, p}) = s * g[wi] - lse;
            } else {
              neuron_fails.emplace_back(n, p);
              need_dir[static_cast<size_t>(n)] = 1;
            }
          }
          double score = 0, contrast = 0;
          if (combo(h, coef, score, contrast)) {
            ex.head_pos.at({l, h, p}) = score;
          } else {
            combo_coefs.push_back(coef);
            combo_pos.push_back(p);
          }
        }
        double score = 0, contrast = 0;
        if (combo(h, total, score, contrast)) {
          ex.head.at({l, h}) = score;
        } else {
          combo_coefs.push_back(total);
          combo_pos.push_back(-1);
        }
        if (fi >= 0) ex.contrast_head.at({l, h}) = contrast;
        const auto n_fail = static_cast<int64_t>(neuron_fails.size() + combo_coefs.size());
        full[static_cast<size_t>(h)] += n_fail;
        bounded[static_cast<size_t>(h)] += Pn * (dh + 1) + 1 - n_fail;
        if (n_fail == 0) continue;

        // The exact pass: rows [directions needed + failed combinations, d_model], one projection.
        std::vector<int64_t> row_of_dir(static_cast<size_t>(dh), -1);
        int64_t n_rows = 0;
        for (int64_t n = 0; n < dh; ++n) {
          if (need_dir[static_cast<size_t>(n)]) row_of_dir[static_cast<size_t>(n)] = n_rows++;
        }
        const int64_t first_combo = n_rows;
        n_rows += static_cast<int64_t>(combo_coefs.size());
        std::vector<float> rows(static_cast<size_t>(n_rows * d));
        for (int64_t n = 0; n < dh; ++n) {
          const int64_t r = row_of_dir[static_cast<size_t>(n)];
          if (r < 0) continue;
          const float* src = cols.data() + (h * dh + n) * d;
          std::copy(src, src + d, rows.begin() + r * d);
        }
        std::vector<double> acc(static_cast<size_t>(d));
        for (size_t ci = 0; ci < combo_coefs.size(); ++ci) {
          std::fill(acc.begin(), acc.end(), 0.0);
          for (int64_t a = 0; a < dh; ++a) {
            const double ca = combo_coefs[ci][static_cast<size_t>(a)];
            if (ca == 0) continue;
            const float* src = cols.data() + (h * dh + a) * d;
            for (int64_t k = 0; k < d; ++k) acc[static_cast<size_t>(k)] += ca * static_cast<double>(src[k]);
          }
          float* dst = rows.data() + (first_combo + static_cast<int64_t>(ci)) * d;
          for (int64_t k = 0; k < d; ++k) dst[k] = static_cast<float>(acc[static_cast<size_t>(k)]);
        }
        std::vector<float> G(static_cast<size_t>(n_rows * V));  // [n_rows, d_vocab]
        ctx.proj.project(rows.data(), n_rows, d, G.data());
        for (const auto& [n, p] : neuron_fails) {
          const float* g = G.data() + row_of_dir[static_cast<size_t>(n)] * V;
          ex.attn_neuron.at({l, h, n, p}) = log_prob_increase(dist, g, ex.attn_coef.at({l, h, n, p}), ctx.w);
        }
        for (size_t ci = 0; ci < combo_coefs.size(); ++ci) {
          const double v = log_prob_increase(dist, G.data() + (first_combo + static_cast<int64_t>(ci)) * V, 1.0, ctx.w);
          if (combo_pos[ci] >= 0) {
            ex.head_pos.at({l, h, combo_pos[ci]}) = v;
          } else {
            ex.head.at({l, h}) = v;
          }
        }
      }
    });
  }
  int64_t b = 0, f = 0;
  for (int64_t h = 0; h < H; ++h) b += bounded[static_cast<size_t>(h)], f += full[static_cast<size_t>(h)];
  ex.method_counts["attention_bounded"] = b;
  ex.method_counts["attention_full"] = f;
}

}  // namespace reslens::analysis
