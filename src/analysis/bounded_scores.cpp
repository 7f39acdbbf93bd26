// The bounded method (kBounded) for attention and FFN scores: every score from the head tokens of
// its state's distribution plus certified tail bounds (analysis/bounds.h); a vector whose bound is
// not tight enough is projected onto the whole vocabulary instead, so every score stays exact.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <initializer_list>
#include <utility>
#include <vector>

#include "analysis/contrast.h"
#include "analysis/explain_internal.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/gemm.h"
#include "ops/int8_dot.h"
#include "ops/vector_ops.h"

namespace reslens::analysis {

namespace {

// Records a bounded score's certified half-width into ctx.widths (a multi-token target's steps ask
// for them: analysis/target_tightening.h); nothing when nobody asked.
void record_width(const ExplainContext& ctx, ScoreArray ScoreWidths::*array, std::initializer_list<int64_t> index,
                  double half_width) {
  if (ctx.widths != nullptr) (ctx.widths->*array).at(index) = half_width;
}

// Head projections of the prepared directions y0_k = gamma_f * c(col_k) of columns [first, first +
// count) of a [d_model, cols] weight matrix: gh [count, |H|] = y0 . head_rows^T / sigma and the tail
// means m [count] = y0 . mu_T / sigma. Computed from the matrix as stored (rows of d_model index,
// columns contiguous), so no transposed copy of it is made: with z_h = gamma_f * u_h,
//   y0_k . u_h = sum_i W[i, k] z_h[i] - mean_k sum_i z_h[i]   (mean_k = 0 without centering),
// each sum a fixed sequence over i of float (heads) or double (tail mean) multiply-adds.
void head_projections(const ExplainContext& ctx, const TailSplit& t, const MatrixView& W, int64_t first, int64_t count,
                      std::vector<double>& gh, std::vector<double>& m) {
  const ModelConfig& c = ctx.model.config();
  const int64_t d = c.d_model;
  const auto nh = static_cast<int64_t>(t.ids.size());
  const VectorView& gamma = ctx.model.weights().ln_final_w;
  const bool centered = c.normalization_type == NormType::kLayerNorm;
  // Rows of z and of W's copied block below are padded (kRowPad, explain_internal.h).
  const int64_t ldz = d + kRowPad;
  std::vector<float> z(static_cast<size_t>(nh * ldz));  // [|H|, d] (row stride ldz)
  std::vector<double> zmu(static_cast<size_t>(d)), zsum(static_cast<size_t>(nh), 0.0);
  double zmu_sum = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double g = static_cast<double>(gamma[i]);
    for (int64_t h = 0; h < nh; ++h) {
      const float v = static_cast<float>(static_cast<double>(t.head_rows[static_cast<size_t>(h * d + i)]) * g);
      z[static_cast<size_t>(h * ldz + i)] = v;
      zsum[static_cast<size_t>(h)] += static_cast<double>(v);
    }
    zmu[static_cast<size_t>(i)] = t.mu[static_cast<size_t>(i)] * g;
    zmu_sum += zmu[static_cast<size_t>(i)];
  }
  std::vector<float> acc(static_cast<size_t>(nh * count), 0.0f);  // [|H|, count]
  // [2, d]: the tail mean's weights and (centering) ones; [2, count]: their sums over W's rows.
  std::vector<double> wm(zmu);
  if (centered) wm.resize(static_cast<size_t>(2 * d), 1.0);
  const int64_t n_sums = centered ? 2 : 1;
  std::vector<double> sums(static_cast<size_t>(2 * count), 0.0);
  const double* accm = sums.data();
  const double* mean = sums.data() + count;
  constexpr int64_t kCols = 256;  // a column block's accumulators stay in L2 while W's rows stream by
  // W's block is copied 128 rows at a time into a contiguous [128, 256] buffer (row stride ldb) that
  // both products read (in place, each 16-column strip would touch one cache line per row, in
  // another page each time). Each sum is still one chain over i ascending: the same bits.
  constexpr int64_t kRows = 128;
  constexpr int64_t ldb = kCols + kRowPad;
  parallel_for(ctx.threads, (count + kCols - 1) / kCols, [&](int64_t b0, int64_t b1) {
    std::vector<float> block(static_cast<size_t>(kRows * ldb));  // [kRows, n] rows of W's column block (stride ldb)
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t c0 = blk * kCols, n = std::min(kCols, count - c0);
      for (int64_t i0 = 0; i0 < d; i0 += kRows) {
        const int64_t ni = std::min(kRows, d - i0);
        for (int64_t i = 0; i < ni; ++i) {
          const float* row = W.row(i0 + i) + first + c0;
          std::copy(row, row + n, block.data() + i * ldb);
        }
        ops::matmul_nn_accumulate_small(nh, n, ni, z.data() + i0, ldz, block.data(), ldb, acc.data() + c0, count);
        ops::matmul_nn_accumulate_small(n_sums, n, ni, wm.data() + i0, d, block.data(), ldb, sums.data() + c0, count);
      }
    }
  });
  const double inv = 1.0 / ctx.proj.scale();
  gh.resize(static_cast<size_t>(count * nh));
  m.resize(static_cast<size_t>(count));
  for (int64_t k = 0; k < count; ++k) {
    const double mk = centered ? mean[static_cast<size_t>(k)] / static_cast<double>(d) : 0.0;
    for (int64_t h = 0; h < nh; ++h) {
      gh[static_cast<size_t>(k * nh + h)] =
          (static_cast<double>(acc[static_cast<size_t>(h * count + k)]) - mk * zsum[static_cast<size_t>(h)]) * inv;
    }
    m[static_cast<size_t>(k)] = (accm[static_cast<size_t>(k)] - mk * zmu_sum) * inv;
  }
}

// Rows per GEMM of an exact pass: at most 128, and the same for every chunk, so no small last
// chunk re-reads all of W_U for a handful of vectors (at small M the GEMM is memory-bound).
size_t even_chunk(size_t n) {
  constexpr size_t kMax = 128;
  const size_t chunks = std::max<size_t>(1, (n + kMax - 1) / kMax);
  return std::max<size_t>(1, (n + chunks - 1) / chunks);
}

// gamma_f * c(v), the unscaled prepared vector whose products with W_U's rows are bs(v) * sigma
// (VocabProjector::project_unscaled's rows). [d]
std::vector<float> prepared_unscaled(const ExplainContext& ctx, const float* v, int64_t d) {
  const VectorView& gamma = ctx.model.weights().ln_final_w;
  double mean = 0;
  if (ctx.model.config().normalization_type == NormType::kLayerNorm) {
    for (int64_t i = 0; i < d; ++i) mean += static_cast<double>(v[i]);
    mean /= static_cast<double>(d);
  }
  std::vector<float> y(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) {
    y[static_cast<size_t>(i)] = static_cast<float>((static_cast<double>(v[i]) - mean) * static_cast<double>(gamma[i]));
  }
  return y;
}

// A combination the extended split or the sketch certified (ExactJob::pos), dropped before the exact pass.
constexpr int64_t kSketched = -2;

// Tries `score(i)` (true when the cached projection certified it) for every index, in parallel;
// returns the indices it could not score, in order, and adds the others to `n_cached`.
std::vector<int64_t> score_from_cache(const std::vector<int64_t>& todo, const std::function<bool(int64_t)>& score,
                                      int threads, int64_t& n_cached) {
  std::vector<char> done(todo.size(), 0);
  parallel_for(threads, static_cast<int64_t>(todo.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) done[static_cast<size_t>(i)] = score(todo[static_cast<size_t>(i)]) ? 1 : 0;
  });
  std::vector<int64_t> rest;
  for (size_t i = 0; i < todo.size(); ++i) {
    if (done[i]) {
      ++n_cached;
    } else {
      rest.push_back(todo[i]);
    }
  }
  return rest;
}

// The attention neurons (n, p) of head h whose cheap bounds failed, from the projection cache: each
// direction's tail moments are computed once and shared by its positions (its row is read now,
// unless the whole head has been). Removes what it scores from `neuron_fails` and returns how many.
// (Head and head-position combinations whose bounds fail are score_combos_from_cache's.)
int64_t score_neurons_from_cache(const ExplainContext& ctx, const TailSplit& t, const CachedHead& head,
                                 bool whole_head, int64_t l, int64_t h, const std::vector<double>& gh,
                                 const std::vector<double>& mt, Explanation& ex,
                                 std::vector<std::pair<int64_t, int64_t>>& neuron_fails) {
  const ModelConfig& c = ctx.model.config();
  const int64_t dh = c.d_head, V = c.d_vocab;
  const auto nh = static_cast<int64_t>(t.ids.size());
  const double sigma = ctx.proj.scale(), tol = ctx.opts.bound_tol;
  const int wi = t.index_of(ctx.w);
  int64_t scored = 0;
  std::vector<double> delta(static_cast<size_t>(nh));
  std::vector<double> a1(static_cast<size_t>(dh), -1.0), a2(static_cast<size_t>(dh), 0.0);
  std::vector<std::pair<int64_t, int64_t>> still;
  const std::vector<double>& step = head.step;
  const std::vector<double>& eps = head.eps;
  const std::vector<double>& gmax = head.gmax;
  for (const auto& [n, p] : neuron_fails) {
    const int64_t dir = h * dh + n;
    const auto ni = static_cast<size_t>(n);
    if (a1[ni] < 0) {
      if (!whole_head) ctx.projections->read_rows(head, n, 1);
      code_moments(head.codes + n * V, t.tail_q.data(), V, a1[ni], a2[ni]);
    }
    const double s = ex.attn_coef.at({l, h, n, p});
    const double* g = gh.data() + dir * nh;
    for (int64_t j = 0; j < nh; ++j) delta[static_cast<size_t>(j)] = s * g[j];
    const double st = step[ni] / sigma;
    double hw = 0;
    const double lse = cached_log_expectation(t, delta.data(), s * mt[static_cast<size_t>(dir)], s, a1[ni] * st,
                                              a2[ni] * st * st, eps[ni] / sigma, gmax[ni] / sigma, tol, &hw);
    if (std::isnan(lse)) {
      still.emplace_back(n, p);
      continue;
    }
    ex.attn_neuron.at({l, h, n, p}) = log_prob_increase_from(s * g[wi], lse);
    record_width(ctx, &ScoreWidths::attn_neuron, {l, h, n, p}, hw);
    ++scored;
  }
  neuron_fails = std::move(still);
  return scored;
}

// A head or head-position combination sum_n c_n (neuron n of head h) whose cheap bound failed, with
// the tail terms that bound used (coefficient 1), for the later steps.
struct FailedCombo {
  std::vector<double> coefs;  // [d_head]
  int64_t pos = -1;           // its position (-1: the whole head)
  TailTerms tail;
};

// Head and head-position combinations sum_n c_n (neuron n of head h) whose cheap bounds failed, from
// the head's cached int16 rows: the combination's row sum_n c_n g~_n is within sum_n |c_n| eps_n of
// its projection at every token (plus the float sum's rounding), which gives its tail moments.
// Removes what it scores from the lists; returns how many.
int64_t score_combos_from_cache(const ExplainContext& ctx, const TailSplit& t, const CachedHead& head, int64_t l,
                                int64_t h, const std::vector<double>& gh, const std::vector<double>& mt, Explanation& ex,
                                std::vector<FailedCombo>& combos) {
  const ModelConfig& c = ctx.model.config();
  const int64_t dh = c.d_head, V = c.d_vocab;
  const auto nh = static_cast<int64_t>(t.ids.size());
  const double sigma = ctx.proj.scale(), tol = ctx.opts.bound_tol;
  const int wi = t.index_of(ctx.w);
  // Per thread, reused across heads: the combinations' rows.
  thread_local std::vector<float> sums;
  const std::vector<double>& step = head.step;
  const std::vector<double>& eps = head.eps;
  const std::vector<double>& gmax = head.gmax;
  constexpr size_t kChunk = 16;
  sums.resize(kChunk * static_cast<size_t>(V));
  std::vector<float> coef(kChunk * static_cast<size_t>(dh));
  std::vector<double> delta(static_cast<size_t>(nh));
  std::vector<FailedCombo> keep;
  int64_t scored = 0;
  for (size_t c0 = 0; c0 < combos.size(); c0 += kChunk) {
    const size_t nc = std::min(kChunk, combos.size() - c0);
    for (size_t ci = 0; ci < nc; ++ci) {
      for (int64_t n = 0; n < dh; ++n) {
        coef[ci * static_cast<size_t>(dh) + static_cast<size_t>(n)] =
            static_cast<float>(combos[c0 + ci].coefs[static_cast<size_t>(n)] * step[static_cast<size_t>(n)]);
      }
    }
    ops::combine_int16_rows(static_cast<int64_t>(nc), dh, V, coef.data(), head.codes, V, sums.data());
    for (size_t ci = 0; ci < nc; ++ci) {
      const std::vector<double>& cf = combos[c0 + ci].coefs;
      const int64_t pos = combos[c0 + ci].pos;
      double err = 0, scale = 0, lin = 0;
      std::fill(delta.begin(), delta.end(), 0.0);
      for (int64_t n = 0; n < dh; ++n) {
        const double cn = cf[static_cast<size_t>(n)];
        err += std::abs(cn) * eps[static_cast<size_t>(n)];
        scale += std::abs(cn) * gmax[static_cast<size_t>(n)];
        lin += cn * mt[static_cast<size_t>(h * dh + n)];
        const double* g = gh.data() + (h * dh + n) * nh;
        for (int64_t j = 0; j < nh; ++j) delta[static_cast<size_t>(j)] += cn * g[j];
      }
      // Float rounding of the coefficients and of the d_head-term sums: (d_head + 2) units of the
      // sum of the terms' sizes.
      err += static_cast<double>(dh + 2) * std::ldexp(1.0, -23) * (scale + err);
      double a1 = 0, a2 = 0, top = 0;
      row_moments(sums.data() + ci * static_cast<size_t>(V), t.tail_q.data(), V, a1, a2, top);
      double hw = 0;
      const double lse = cached_log_expectation(t, delta.data(), lin, 1.0, a1 / sigma, a2 / (sigma * sigma), err / sigma,
                                                (top + err) / sigma, tol, &hw);
      if (std::isnan(lse)) {
        keep.push_back(std::move(combos[c0 + ci]));
        continue;
      }
      const double score = log_prob_increase_from(delta[static_cast<size_t>(wi)], lse);
      if (pos >= 0) {
        ex.head_position.at({l, h, pos}) = score;
        record_width(ctx, &ScoreWidths::head_position, {l, h, pos}, hw);
      } else {
        ex.head.at({l, h}) = score;
        record_width(ctx, &ScoreWidths::head, {l, h}, hw);
      }
      ++scored;
    }
  }
  combos = std::move(keep);
  return scored;
}

// A vector the bounds could not certify, for the exact pass: attention neuron `dir` of a head (its
// direction, scored at `positions`), or a combination (dir = -1) at position `pos` (-1: the head).
struct ExactJob {
  int64_t layer, head, dir, pos;
  std::vector<float> v;  ///< [d_model] the vector (unprepared)
  std::vector<int64_t> positions;
  /// For the sketch: the head tokens' projections and the tail linear term of the direction (a
  /// neuron: per unit coefficient, in units of 1/sigma) or of the combination (its own deltas).
  std::vector<double> head_g;
  double lin = 0;
  /// The tail terms of its first bound at coefficient 1 (a neuron's: scaled by each position's
  /// coefficient), for the extended split.
  TailTerms tail;
};

}  // namespace

namespace {

// score_ffn_neurons_bounded, step by step, per layer l (context r_P^l, tail split t, head
// projections gh and tail means mt of every neuron's fc2_k): the certified bounds, then the cached
// projections for the neurons those could not certify, and after every layer the exact pass.

// The tail terms of the vector s * y0 / sigma of a weight direction y0 with tail linear term
// `linear`, from its weight-only y0^T Gamma y0, |y0| and |g0|_4^2 (each within kBoundSlack of its
// exact value) and max_j |W_U[j]|.
TailTerms direction_tail_terms(double gamma_norm, double norm, double quartic, double umax, double s, double sigma,
                               double linear) {
  TailTerms tt;
  tt.linear = linear;
  tt.quadratic = s * s * gamma_norm / (sigma * sigma);
  tt.quadratic_lo = tt.quadratic / (kBoundSlack * kBoundSlack);
  tt.range = std::abs(s) * norm * umax / sigma;
  tt.quartic = s * s * quartic / (sigma * sigma);
  return tt;
}

// FFN neuron k's (direction_tail_terms from the model's bounds).
TailTerms ffn_tail_terms(const ModelBounds& mb, int64_t l, int64_t k, double s, double sigma, double linear) {
  const auto li = static_cast<size_t>(l), ki = static_cast<size_t>(k);
  return direction_tail_terms(mb.ffn_gamma_norm[li][ki], mb.ffn_norm[li][ki], mb.ffn_quartic[li][ki], mb.umax, s, sigma, linear);
}

// Every neuron's coefficient, contrast score and, when its bound is tight enough, importance;
// returns the neurons left for the next steps, in order.
std::vector<int64_t> score_ffn_layer_bounded(const ExplainContext& ctx, int64_t l, const TailSplit& t,
                                             const std::vector<double>& gh, const std::vector<double>& mt, Explanation& ex) {
  const ModelBounds& mb = *ctx.bounds;
  const int64_t N = ctx.model.config().d_mlp;
  const double sigma = ctx.proj.scale();
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
      double hw = 0;
      const double lse = bounded_log_expectation(t, delta.data(), ffn_tail_terms(mb, l, k, s, sigma, s * mt[static_cast<size_t>(k)]),
                                                 ctx.opts.bound_tol, &hw);
      ex.ffn_coef.at({l, k}) = s;
      if (fi >= 0) ex.contrast_ffn_neuron.at({l, k}) = foil_contrast(s, g[wi], g[fi]);
      if (std::isnan(lse)) {
        exact[static_cast<size_t>(k)] = 1;
      } else {
        ex.ffn_neuron.at({l, k}) = log_prob_increase_from(s * g[wi], lse);
        record_width(ctx, &ScoreWidths::ffn_neuron, {l, k}, hw);
      }
    }
  });
  std::vector<int64_t> todo;
  for (int64_t k = 0; k < N; ++k) {
    if (exact[static_cast<size_t>(k)]) todo.push_back(k);
  }
  return todo;
}

// The neurons in `todo` from their cached projections when there are some; returns those it could
// not certify, in order, and adds the others to `cached`.
std::vector<int64_t> score_ffn_layer_from_cache(const ExplainContext& ctx, int64_t l, const TailSplit& t,
                                                const std::vector<double>& gh, const std::vector<double>& mt,
                                                const std::vector<int64_t>& todo, Explanation& ex, int64_t& cached) {
  const int64_t V = ctx.model.config().d_vocab;
  const double sigma = ctx.proj.scale();
  const auto nh = static_cast<int64_t>(t.ids.size());
  const int wi = t.index_of(ctx.w);
  const float* m = ctx.trace.post(l, ctx.P);
  std::vector<int64_t> rest = score_from_cache(todo, [&](int64_t k) {
    if (ctx.projections == nullptr) return false;
    thread_local CachedRow r;
    ctx.projections->ffn(l, k, r);
    const double s = static_cast<double>(m[k]);
    const double* g = gh.data() + k * nh;
    thread_local std::vector<double> delta;  // [|H|], reused across neurons
    delta.resize(static_cast<size_t>(nh));
    for (int64_t h = 0; h < nh; ++h) delta[static_cast<size_t>(h)] = s * g[h];
    double a1 = 0, a2 = 0;
    code_moments(r.codes, t.tail_q.data(), V, a1, a2);
    double hw = 0;
    const double lse = cached_log_expectation(t, delta.data(), s * mt[static_cast<size_t>(k)], s, a1 * r.step / sigma,
                                              a2 * (r.step / sigma) * (r.step / sigma), r.eps / sigma, r.gmax / sigma,
                                              ctx.opts.bound_tol, &hw);
    if (std::isnan(lse)) return false;
    ex.ffn_neuron.at({l, k}) = log_prob_increase_from(s * g[wi], lse);
    record_width(ctx, &ScoreWidths::ffn_neuron, {l, k}, hw);
    return true;
  }, ctx.threads, cached);
  if (ctx.projections != nullptr) ctx.projections->release_ffn(l);
  return rest;
}

// The rest over the whole vocabulary, every layer's at once: (layer, neuron) jobs projected in
// chunks of up to 128 (one GEMM each), then one log-sum-exp per neuron. A neuron's vector is
// s fc2_k with fc2_k a weight, so the GEMM projects the unscaled g0 = W_U (gamma_f * c(fc2_k)) and
// the score takes s / sigma: rows another step projected already (ctx.shared) are read, not redone.
void score_exact_ffn_jobs(const ExplainContext& ctx, const std::vector<std::pair<int64_t, int64_t>>& exact_jobs,
                          Explanation& ex) {
  const int64_t d = ctx.model.config().d_model, V = ctx.model.config().d_vocab;
  const double inv_scale = 1.0 / ctx.proj.scale();
  auto score = [&](int64_t l, int64_t k, const float* g0) {
    const double s = static_cast<double>(ctx.trace.post(l, ctx.P)[k]);
    ex.ffn_neuron.at({l, k}) = log_prob_increase(ctx.before_ffn(l), g0, s * inv_scale, ctx.w);
  };
  std::vector<std::pair<int64_t, int64_t>> todo;  // not shared yet
  std::vector<std::pair<size_t, const float*>> known;
  for (size_t i = 0; i < exact_jobs.size(); ++i) {
    const float* g0 = ctx.shared != nullptr ? ctx.shared->ffn(exact_jobs[i].first, exact_jobs[i].second) : nullptr;
    if (g0 != nullptr) {
      known.emplace_back(i, g0);
    } else {
      todo.push_back(exact_jobs[i]);
    }
  }
  if (ctx.shared != nullptr) ex.method_counts["ffn_shared"] = static_cast<int64_t>(known.size());
  parallel_for(ctx.threads, static_cast<int64_t>(known.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      const auto [j, g0] = known[static_cast<size_t>(i)];
      score(exact_jobs[j].first, exact_jobs[j].second, g0);
    }
  });
  const size_t kChunk = even_chunk(todo.size());
  std::vector<float> rows(kChunk * static_cast<size_t>(d)), G(kChunk * static_cast<size_t>(V));
  const auto n_todo = static_cast<int64_t>(todo.size());
  if (n_todo > 0) ctx.report("ffn_exact", 0, n_todo);
  for (size_t i0 = 0; i0 < todo.size(); i0 += kChunk) {
    const size_t n = std::min(kChunk, todo.size() - i0);
    // fc2_k of each job, a layer's run of jobs at a time (jobs come in layer order): an encoded W_out
    // decodes only the blocks that hold those columns.
    for (size_t i = 0; i < n;) {
      const int64_t l = todo[i0 + i].first;
      std::vector<int64_t> cols;  // the run of jobs in layer l from i on
      while (i + cols.size() < n && todo[i0 + i + cols.size()].first == l) cols.push_back(todo[i0 + i + cols.size()].second);
      read_columns(ctx.model.weights().layers[static_cast<size_t>(l)].W_out, cols, rows.data() + i * static_cast<size_t>(d),
                   ctx.threads);
      i += cols.size();
    }
    ctx.proj.project_unscaled(rows.data(), static_cast<int64_t>(n), d, G.data());
    parallel_for(ctx.threads, static_cast<int64_t>(n), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [l, k] = todo[i0 + static_cast<size_t>(i)];
        score(l, k, G.data() + i * V);
      }
    });
    if (ctx.shared != nullptr) {
      for (size_t i = 0; i < n; ++i) ctx.shared->keep_ffn(todo[i0 + i].first, todo[i0 + i].second, G.data() + i * static_cast<size_t>(V));
    }
    ctx.report("ffn_exact", static_cast<int64_t>(i0 + n), n_todo);
  }
}

// A neuron the bounds and the cache left, for the extended split and the sketch: delta_j = s (u_j . y0)
// with s = m_k / sigma and y0 = gamma_f * c(fc2_k), and its split's exact head deltas and tail linear
// term.
struct FfnLeftover {
  int64_t l = 0, k = 0;
  const TailSplit* t = nullptr;
  std::vector<float> y0;  // [d_model]
  std::vector<double> head_delta;
  double s = 0, lin = 0, delta_w = 0;
};

void queue_ffn_leftovers(const ExplainContext& ctx, int64_t l, const TailSplit& t, const MatrixView& W_out,
                         const std::vector<double>& gh, const std::vector<double>& mt, const std::vector<int64_t>& todo,
                         std::vector<FfnLeftover>& items) {
  const auto nh = static_cast<int64_t>(t.ids.size());
  const int wi = t.index_of(ctx.w);
  const float* m = ctx.trace.post(l, ctx.P);
  // Items are independent: filled in parallel, a window of columns at a time. prepared_columns over
  // [k0, k0 + 64) reads each row of W_out once for the window's items, where one column at a time
  // read a cache line (or decoded a whole quantized block) per row per item: ~15 us a column, 6 ms
  // for a GPT-2 layer's ~400 on one thread. A column's prepared vector does not depend on its
  // neighbours, so the bits are the same.
  constexpr int64_t kWindow = 64;
  const int64_t d = ctx.model.config().d_model;
  const size_t first = items.size();
  items.resize(first + todo.size());
  std::vector<std::pair<size_t, size_t>> windows;  // [i0, i1) of todo: columns in [todo[i0], todo[i0] + kWindow)
  for (size_t i = 0; i < todo.size();) {
    size_t j = i + 1;
    while (j < todo.size() && todo[j] >= todo[i] && todo[j] - todo[i] < kWindow) ++j;
    windows.emplace_back(i, j);
    i = j;
  }
  parallel_for(ctx.threads, static_cast<int64_t>(windows.size()), [&](int64_t a, int64_t b) {
    for (int64_t w = a; w < b; ++w) {
      const auto [i0, i1] = windows[static_cast<size_t>(w)];
      const int64_t k0 = todo[i0];
      int64_t k1 = k0;
      for (size_t i = i0; i < i1; ++i) k1 = std::max(k1, todo[i]);
      const std::vector<float> Y = prepared_columns(ctx.model, W_out, k0, k1 - k0 + 1);  // [k1 - k0 + 1, d]
      for (size_t i = i0; i < i1; ++i) {
        const int64_t k = todo[i];
        FfnLeftover& it = items[first + i];
        it.l = l, it.k = k, it.t = &t;
        const double s = static_cast<double>(m[k]);
        it.y0.assign(Y.begin() + (k - k0) * d, Y.begin() + (k - k0 + 1) * d);
        it.head_delta.resize(static_cast<size_t>(nh));
        for (int64_t h = 0; h < nh; ++h) it.head_delta[static_cast<size_t>(h)] = s * gh[static_cast<size_t>(k * nh + h)];
        it.s = s / ctx.proj.scale();
        it.lin = s * mt[static_cast<size_t>(k)];
        it.delta_w = it.head_delta[static_cast<size_t>(wi)];
      }
    }
  });
}

// The head size of the extended split (extend_tail) that the vectors the first bound leaves get
// (ExplainOptions::extended_head; 0: none). Their head deltas against it cost |H| d float
// multiply-adds each, next to the sketch's V d int8 ones; at 2048 tokens it certifies 19-24% of them
// on random weights (GPT-2 124M, Llama 2 7B shapes), the sketch's error term, sqrt(q_T,max), shrinks
// for the others, and fewer go on to the exact pass (V d float multiply-adds each). That pays where
// the int8 products are slow (AVX2: the GPT-2 explain's attention and FFN phases ~10% faster with
// it) and where the exact pass is dear (a 7B model: ~3,200 exact vectors without it, ~1,550 with
// it), not on a small model whose sketch runs on AMX (GPT-2 124M: ~25% slower with it; the exact
// vectors are whole heads either way). docs/benchmarks.md, "Stop 42".
constexpr int64_t kExtendedHeadAuto = 2048;
constexpr int64_t kExtendedHeadMinWidth = 2048;  // auto: d_model from which AMX keeps the split

int64_t extended_head(const ExplainContext& ctx) {
  const int64_t asked = ctx.opts.extended_head;
  int64_t n = asked >= 0 ? asked : kExtendedHeadAuto;
  if (asked < 0 && ctx.sketch != nullptr && ctx.model.config().d_model < kExtendedHeadMinWidth &&
      ops::detail::int8_dot_active_kernel() == ops::detail::Int8Kernel::amx) {
    n = 0;
  }
  // Only a head well inside the vocabulary leaves a tail worth bounding apart.
  return n > 0 && ctx.model.config().d_vocab >= 4 * n ? n : 0;
}

// Storage the extended splits' products reuse from layer to layer (it only grows): a 7B layer's
// head rows are 32 MB, and its leftovers' vectors and products ~10-20 MB, which allocated afresh
// each layer left holes that the items allocated in between filled, ~1 GB of heap in all.
struct ExtendScratch {
  std::vector<float> rows;  // [|H|, d] the extended head's W_U rows
  std::vector<float> Y, G;  // [n, d] the leftovers' prepared vectors, [n, |H|] their products
};

// G [n, |H|] = Y [n, d] . e's head rows^T into the scratch, then e's rows back to it (the scratch
// keeps their storage for the next split).
void extended_products(const ExplainContext& ctx, TailSplit& e, int64_t n, ExtendScratch& x) {
  const int64_t d = ctx.model.config().d_model, nh = static_cast<int64_t>(e.ids.size());
  x.G.resize(static_cast<size_t>(n * nh));
  ops::matmul_nt(n, nh, d, x.Y.data(), d, e.head_rows.data(), d, x.G.data(), nh, ctx.threads);
  x.rows = std::move(e.head_rows);
  e.head_rows = {};
}

// Layer l's queued neurons (items[first..]) against the extended split e: their head deltas and
// tail means from e's head rows (one GEMM), then the bound again. Those it certifies are scored and
// dropped; the others carry e from now on (the sketch then takes e's head exactly too). Returns how
// many it certified.
int64_t certify_ffn_items_extended(const ExplainContext& ctx, int64_t l, TailSplit& e, std::vector<FfnLeftover>& items,
                                   size_t first, ExtendScratch& x, Explanation& ex) {
  const int64_t d = ctx.model.config().d_model;
  const auto n = static_cast<int64_t>(items.size() - first), nh = static_cast<int64_t>(e.ids.size());
  if (n == 0) return 0;
  const double sigma = ctx.proj.scale();
  const int wi = e.index_of(ctx.w);
  const float* m = ctx.trace.post(l, ctx.P);
  x.Y.resize(static_cast<size_t>(n * d));  // [n, d] the items' prepared vectors
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<float>& y = items[first + static_cast<size_t>(i)].y0;
    std::copy(y.begin(), y.end(), x.Y.begin() + i * d);
  }
  extended_products(ctx, e, n, x);  // x.G [n, |H|] y0 . u_h
  const std::vector<float>& Y = x.Y;
  const std::vector<float>& G = x.G;
  std::vector<char> done(static_cast<size_t>(n), 0);
  parallel_for(ctx.threads, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      FfnLeftover& it = items[first + static_cast<size_t>(i)];
      const double s = static_cast<double>(m[it.k]);
      double ym = 0;  // y0 . mu_T, in double as head_projections sums it
      for (int64_t r = 0; r < d; ++r) ym += static_cast<double>(Y[static_cast<size_t>(i * d + r)]) * e.mu[static_cast<size_t>(r)];
      it.head_delta.resize(static_cast<size_t>(nh));
      for (int64_t h = 0; h < nh; ++h) it.head_delta[static_cast<size_t>(h)] = s * (static_cast<double>(G[static_cast<size_t>(i * nh + h)]) / sigma);
      it.t = &e;
      it.lin = s * (ym / sigma);
      it.delta_w = it.head_delta[static_cast<size_t>(wi)];
      double hw = 0;
      const double lse = bounded_log_expectation(e, it.head_delta.data(), ffn_tail_terms(*ctx.bounds, l, it.k, s, sigma, it.lin),
                                                 ctx.opts.bound_tol, &hw);
      if (std::isnan(lse)) continue;
      ex.ffn_neuron.at({l, it.k}) = log_prob_increase_from(it.delta_w, lse);
      record_width(ctx, &ScoreWidths::ffn_neuron, {l, it.k}, hw);
      done[static_cast<size_t>(i)] = 1;
    }
  });
  size_t kept = first;
  for (int64_t i = 0; i < n; ++i) {
    if (done[static_cast<size_t>(i)]) continue;
    if (kept != first + static_cast<size_t>(i)) items[kept] = std::move(items[first + static_cast<size_t>(i)]);
    ++kept;
  }
  const auto certified = static_cast<int64_t>(items.size() - kept);
  items.resize(kept);
  return certified;
}

// The queued neurons from their sketches; returns those it could not certify, in order, for the
// exact pass.
// `shared_read` receives how many of them read an earlier step's products (SharedProjections).
std::vector<std::pair<int64_t, int64_t>> score_ffn_sketched(const ExplainContext& ctx,
                                                            const std::vector<FfnLeftover>& items, Explanation& ex,
                                                            int64_t& shared_read) {
  std::vector<SketchJob> jobs(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const FfnLeftover& it = items[i];
    jobs[i] = SketchJob{it.t, it.y0.data(), it.s, it.head_delta.data(), it.lin, it.l, it.k, ctx.bounds->ffn_forms_of(it.l, it.k)};
  }
  std::vector<double> hw;  // [jobs] certified half-widths, for a target's sums (record_width)
  const std::vector<double> lse =
      sketched_log_expectations(*ctx.sketch, jobs, ctx.opts.bound_tol, ctx.threads, &hw, ctx.shared, &shared_read);
  std::vector<std::pair<int64_t, int64_t>> rest;
  for (size_t i = 0; i < items.size(); ++i) {
    if (std::isnan(lse[i])) {
      rest.emplace_back(items[i].l, items[i].k);
    } else {
      ex.ffn_neuron.at({items[i].l, items[i].k}) = log_prob_increase_from(items[i].delta_w, lse[i]);
      record_width(ctx, &ScoreWidths::ffn_neuron, {items[i].l, items[i].k}, hw[i]);
    }
  }
  return rest;
}

}  // namespace

void score_ffn_neurons_bounded(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const int64_t L = c.n_layers, N = c.d_mlp;
  ex.ffn_neuron = ScoreArray({L, N});
  ex.ffn_coef = ScoreArray({L, N});
  if (ex.has_contrast) ex.contrast_ffn_neuron = ScoreArray({L, N});
  if (ctx.widths != nullptr) ctx.widths->ffn_neuron = ScoreArray({L, N});  // 0: exact
  int64_t bounded = 0, full = 0, cached = 0, sketched = 0, sketch_shared = 0;
  std::vector<std::pair<int64_t, int64_t>> exact_jobs;  // (layer, neuron) for the exact pass
  std::vector<FfnLeftover> items;                       // the same, for the extended split and the sketch first
  // The sketch takes its queue whenever it holds kSketchBatch neurons (and at the end): each item
  // holds its d_model vector and the sketch two more per item, so a 7B model's ~48k leftovers at
  // once took 2.2 GB beyond the weights. A sketched value depends only on its own item, so where
  // the queue is cut changes no score; the exact pass still gets its jobs in (layer, neuron) order.
  constexpr size_t kSketchBatch = 4096;
  auto sketch_queue = [&] {
    int64_t read = 0;
    std::vector<std::pair<int64_t, int64_t>> rest = score_ffn_sketched(ctx, items, ex, read);
    sketched += static_cast<int64_t>(items.size() - rest.size());
    sketch_shared += read;
    exact_jobs.insert(exact_jobs.end(), rest.begin(), rest.end());
    items.clear();
  };
  // The extended splits the queued items point to, one per layer that needed one (the head rows
  // dropped once used: a 7B layer's 2048 rows are 32 MB).
  std::deque<TailSplit> extended;
  ExtendScratch scratch;
  const int64_t extend = extended_head(ctx);  // 0: no extended split
  FloatWeights W_out;  // [d_model, d_mlp] layer l's, decoded into the same storage every layer
  // Progress: a unit per layer (with the sketch's batches as they fill), and one for the last batch.
  for (int64_t l = 0; l < L; ++l) {
    ctx.report("ffn", l, L + 1);
    const TailSplit& t = ctx.tails[static_cast<size_t>(2 * l + 1)];
    std::vector<double> gh, mt;  // [d_mlp, |H|], [d_mlp]
    W_out = FloatWeights(ctx.model.weights().layers[static_cast<size_t>(l)].W_out, ctx.threads, std::move(W_out));
    head_projections(ctx, t, W_out.view(), 0, N, gh, mt);
    std::vector<int64_t> todo = score_ffn_layer_bounded(ctx, l, t, gh, mt, ex);
    bounded += N - static_cast<int64_t>(todo.size());
    todo = score_ffn_layer_from_cache(ctx, l, t, gh, mt, todo, ex, cached);
    const size_t first = items.size();
    queue_ffn_leftovers(ctx, l, t, W_out.view(), gh, mt, todo, items);
    if (extend > 0 && items.size() > first) {
      extended.push_back(extend_tail(ctx.model, t, ctx.before_ffn(l), extend, ctx.threads, std::move(scratch.rows)));
      bounded += certify_ffn_items_extended(ctx, l, extended.back(), items, first, scratch, ex);
      extended.back().mu = {};
    }
    if (ctx.sketch != nullptr) {
      if (items.size() >= kSketchBatch) sketch_queue();
      continue;
    }
    full += static_cast<int64_t>(items.size());
    for (const FfnLeftover& it : items) exact_jobs.emplace_back(it.l, it.k);
    items.clear();
  }
  W_out = FloatWeights();  // freed before the sketch's last batch and the exact pass
  ctx.report("ffn", L, L + 1);
  if (ctx.sketch != nullptr) {
    if (!items.empty()) sketch_queue();
    full = static_cast<int64_t>(exact_jobs.size());
  }
  ctx.report("ffn", L + 1, L + 1);
  score_exact_ffn_jobs(ctx, exact_jobs, ex);
  ex.method_counts["ffn_bounded"] = bounded;
  ex.method_counts["ffn_full"] = full;
  ex.method_counts["ffn_cached"] = cached;
  if (ctx.sketch != nullptr) ex.method_counts["ffn_sketched"] = sketched;
  // Sketched neurons whose products an earlier step made (of those sketched, certified or not).
  if (ctx.sketch != nullptr && ctx.shared != nullptr) ex.method_counts["ffn_sketch_shared"] = sketch_shared;
}

namespace {

// score_attention_bounded, step by step. Per layer l (context h_P^{l-1}, tail split t): the head
// projections of every attention neuron's direction, then per head h, on one thread each:
//   1. head_coefficient_rows: the coefficient rows of the head's combinations;
//   2. score_head_neurons_bounded: every attention neuron (n, p), from power sums of its direction;
//   3. score_head_combos_bounded: every head x position and the whole head, from small matrix
//      products against the head's projections and Gram matrices;
//   4. score_head_leftovers_from_cache: what 2 and 3 could not certify, from the projection cache;
//   5. queue_exact_jobs: the rest, as vectors for the exact pass.
// Then, after every layer, score_exact_attention_jobs projects those onto the whole vocabulary in
// batches (6). Every score is written once, by the first step that certifies it.

// One layer's inputs shared by its heads.
struct AttnLayerInputs {
  int64_t l = 0;
  const TailSplit& t;
  const MatrixView& W_O;       // [d_model, H*d_head] the layer's W_O as float32 (FloatWeights)
  std::vector<double> gh, mt;  // [H*d_head, |H|] head projections, [H*d_head] tail means
  int64_t nh = 0;              // |H|, the head tokens
  int wi = -1, fi = -1;        // target and foil among the head tokens
  const std::vector<double>& gn;  // per neuron: y0^T Gamma y0, |y0| and |W_U y0|_4^2 (ModelBounds)
  const std::vector<double>& nn;
  const std::vector<double>& n4;
};

// One head's scores that the cheap bounds could not certify.
struct HeadLeftovers {
  std::vector<char> need_dir;  // [d_head] directions the exact pass must project
  std::vector<std::pair<int64_t, int64_t>> neuron_fails;  // (n, p)
  std::vector<FailedCombo> combos;
  int64_t count() const { return static_cast<int64_t>(neuron_fails.size() + combos.size()); }
};

// Per-thread buffers, reused across the thread's heads.
struct HeadScratch {
  std::vector<double> delta;          // [|H|]
  std::vector<HeadPowerSums> sums;    // [d_head]
  std::vector<double> C, D, TG, TE;   // [Pn+1, d_head] coefficients; [Pn+1, |H|]; [Pn+1, d_head] x2
  // queue_exact_jobs: the head's W_O columns as rows [d_head, d_model], the failed combinations'
  // coefficients [n, d_head] and their vectors [n, d_model]
  std::vector<float> wo_t;
  std::vector<double> coefs, vectors;
};

// Scores of one head by how they were computed.
struct HeadCounts {
  int64_t bounded = 0, cached = 0, full = 0;
};

// Step 1. Every combination of the head at once: row p < Pn is head x position p, row Pn the whole
// head; C[r, n] is the coefficient of neuron n in row r. coefs is the head's [d_head, Pn] block.
void head_coefficient_rows(const double* coefs, int64_t dh, int64_t Pn, std::vector<double>& C) {
  C.assign(static_cast<size_t>((Pn + 1) * dh), 0.0);
  for (int64_t n = 0; n < dh; ++n) {
    for (int64_t p = 0; p < Pn; ++p) {
      const double s = coefs[n * Pn + p];
      C[static_cast<size_t>(p * dh + n)] = s;
      C[static_cast<size_t>(Pn * dh + n)] += s;
    }
  }
}

// The tail terms of attention neuron `dir`'s direction at coefficient s (y0^T Gamma y0, |y0| and
// |g0|_4^2 from the model's bounds, each within kBoundSlack of its exact value).
TailTerms neuron_tail_terms(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t dir, double s) {
  const auto di = static_cast<size_t>(dir);
  return direction_tail_terms(in.gn[di], in.nn[di], in.n4[di], ctx.bounds->umax, s, ctx.proj.scale(), s * in.mt[di]);
}

// Step 2. Every attention neuron (n, p) of head h (and its contrast score): the head part from the
// direction's power sums (every position scales the same direction), or exponentiated when the
// series does not apply, plus the certified tail. Failures go to `left`.
void score_head_neurons_bounded(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t h, HeadScratch& w,
                                Explanation& ex, HeadLeftovers& left) {
  const ModelConfig& c = ctx.model.config();
  const int64_t H = c.n_heads, dh = c.d_head, Pn = ctx.P + 1, l = in.l, nh = in.nh;
  const double tol = ctx.opts.bound_tol;
  // attn_coef and attn_neuron are [L, H, d_head, Pn]: this head's block.
  const size_t base = static_cast<size_t>(((l * H + h) * dh) * Pn);
  const double* coefs = ex.attn_coef.values.data() + base;
  double* scores = ex.attn_neuron.values.data() + base;
  for (int64_t n = 0; n < dh; ++n) w.sums[static_cast<size_t>(n)] = head_power_sums(in.t, in.gh.data() + (h * dh + n) * nh);
  for (int64_t n = 0; n < dh; ++n) {
    const int64_t dir = h * dh + n;
    const double* g = in.gh.data() + dir * nh;
    double head_square = 0;  // sum_H g_j^2 of the direction
    for (int64_t j = 0; j < nh; ++j) head_square += g[j] * g[j];
    for (int64_t p = 0; p < Pn; ++p) {
      const double s = coefs[n * Pn + p];
      if (in.fi >= 0) ex.contrast_attn_neuron.values[base + static_cast<size_t>(n * Pn + p)] = foil_contrast(s, g[in.wi], g[in.fi]);
      const TailTerms tt = neuron_tail_terms(ctx, in, dir, s);
      double head_err = 0;
      const double head = head_part(w.sums[static_cast<size_t>(n)], s, head_err);
      double lse = 0, hw = 0;
      if (!std::isnan(head)) {
        lse = bounded_from_head(in.t, head, head_err, s * s * head_square, tt, tol, &hw);
      } else {
        for (int64_t j = 0; j < nh; ++j) w.delta[static_cast<size_t>(j)] = s * g[j];
        lse = bounded_log_expectation(in.t, w.delta.data(), tt, tol, &hw);
      }
      if (!std::isnan(lse)) {
        scores[n * Pn + p] = log_prob_increase_from(s * g[in.wi], lse);
        if (ctx.widths != nullptr) ctx.widths->attn_neuron.values[base + static_cast<size_t>(n * Pn + p)] = hw;
      } else {
        left.neuron_fails.emplace_back(n, p);
        left.need_dir[static_cast<size_t>(n)] = 1;
      }
    }
  }
}

// Step 3. The combinations' head values, and the quadratic forms c^T G c of their tail bounds as
// c . (G c), from small matrix products against the head's rows and Gram matrices (w.C from step
// 1). Failures go to `left`.
void score_head_combos_bounded(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t h, HeadScratch& w,
                               Explanation& ex, HeadLeftovers& left) {
  const ModelConfig& c = ctx.model.config();
  const ModelBounds& mb = *ctx.bounds;
  const int64_t dh = c.d_head, Pn = ctx.P + 1, l = in.l, nh = in.nh;
  const double sigma = ctx.proj.scale(), tol = ctx.opts.bound_tol;
  const auto rows = static_cast<size_t>(Pn + 1);
  w.D.assign(rows * static_cast<size_t>(nh), 0.0);
  w.TG.assign(rows * static_cast<size_t>(dh), 0.0);
  w.TE.assign(rows * static_cast<size_t>(dh), 0.0);
  const double* gg = mb.head_gram_gamma[static_cast<size_t>(l)].data() + h * dh * dh;
  const double* ge = mb.head_gram[static_cast<size_t>(l)].data() + h * dh * dh;
  ops::matmul_nn_accumulate_small(Pn + 1, nh, dh, w.C.data(), dh, in.gh.data() + h * dh * nh, nh, w.D.data(), nh);
  ops::matmul_nn_accumulate_small(Pn + 1, dh, dh, w.C.data(), dh, gg, dh, w.TG.data(), dh);
  ops::matmul_nn_accumulate_small(Pn + 1, dh, dh, w.C.data(), dh, ge, dh, w.TE.data(), dh);
  for (int64_t r = 0; r <= Pn; ++r) {
    const double* cf = w.C.data() + r * dh;
    double lin = 0, quad = 0, norm2 = 0, norm4 = 0;
    for (int64_t n = 0; n < dh; ++n) {
      lin += cf[n] * in.mt[static_cast<size_t>(h * dh + n)];
      quad += cf[n] * w.TG[static_cast<size_t>(r * dh + n)];
      norm2 += cf[n] * w.TE[static_cast<size_t>(r * dh + n)];
      norm4 += std::abs(cf[n]) * std::sqrt(in.n4[static_cast<size_t>(h * dh + n)]);  // Minkowski: |sum c g|_4 <= sum |c| |g|_4
    }
    TailTerms tt;
    tt.linear = lin;
    // (1 + 1e-12): the double sum and roots' rounding, far below kBoundSlack's margin.
    tt.quartic = norm4 * norm4 * (1 + 1e-12) / (sigma * sigma);
    // Gram matrices come from float GEMMs: a relative slack on each side of the quadratic form.
    tt.quadratic = std::max(0.0, quad) * kBoundSlack / (sigma * sigma);
    tt.quadratic_lo = std::max(0.0, quad) / (kBoundSlack * sigma * sigma);
    tt.range = std::sqrt(std::max(0.0, norm2) * kBoundSlack) * mb.umax / sigma;
    const double* dr = w.D.data() + r * nh;
    double hw = 0;
    const double lse = bounded_log_expectation(in.t, dr, tt, tol, &hw);
    const int64_t pos = r < Pn ? r : -1;
    if (pos < 0 && in.fi >= 0) ex.contrast_head.at({l, h}) = foil_contrast(1.0, dr[in.wi], dr[in.fi]);
    if (std::isnan(lse)) {
      left.combos.push_back(FailedCombo{std::vector<double>(cf, cf + dh), pos, tt});
    } else if (pos >= 0) {
      ex.head_position.at({l, h, pos}) = log_prob_increase_from(dr[in.wi], lse);
      record_width(ctx, &ScoreWidths::head_position, {l, h, pos}, hw);
    } else {
      ex.head.at({l, h}) = log_prob_increase_from(dr[in.wi], lse);
      record_width(ctx, &ScoreWidths::head, {l, h}, hw);
    }
  }
}

// Step 4. Streaming the head's d_head cached rows costs about what projecting one vector exactly
// does (measured: from 2 such combinations on, the rows are the cheaper way); failed neurons read
// only their own rows, and use the head's when it is read anyway. Returns how many it scored and
// leaves in `left` (need_dir included) what it could not.
int64_t score_head_leftovers_from_cache(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t h, Explanation& ex,
                                        HeadLeftovers& left) {
  constexpr size_t kWorthIt = 2;
  const bool stream_head = left.combos.size() >= kWorthIt;
  if (ctx.projections == nullptr || (!stream_head && left.neuron_fails.empty())) return 0;
  const int64_t dh = ctx.model.config().d_head;
  int64_t scored = 0;
  thread_local CachedHead head;
  ctx.projections->attn_head(in.l, h, head);
  if (stream_head) ctx.projections->read_rows(head, 0, dh);
  scored += score_neurons_from_cache(ctx, in.t, head, stream_head, in.l, h, in.gh, in.mt, ex, left.neuron_fails);
  if (stream_head) {
    scored += score_combos_from_cache(ctx, in.t, head, in.l, h, in.gh, in.mt, ex, left.combos);
  }
  ctx.projections->release_head(head);
  std::fill(left.need_dir.begin(), left.need_dir.end(), 0);
  for (const auto& np : left.neuron_fails) left.need_dir[static_cast<size_t>(np.first)] = 1;
  return scored;
}

// Step 5. What is left is scored exactly after every layer's bounded pass, in one batched
// projection: a neuron needs its direction's projection (shared by every position, as the position
// only scales it), a combination (head x position, head) its own vector's.
void queue_exact_jobs(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t h, const HeadLeftovers& left,
                      HeadScratch& w, std::vector<ExactJob>& out) {
  const ModelConfig& c = ctx.model.config();
  const int64_t dh = c.d_head, d = c.d_model, l = in.l;
  for (int64_t n = 0; n < dh; ++n) {
    if (!left.need_dir[static_cast<size_t>(n)]) continue;
    ExactJob job{l, h, n, -1, std::vector<float>(static_cast<size_t>(d)), {}, {}, 0.0, {}};
    for (int64_t r = 0; r < d; ++r) job.v[static_cast<size_t>(r)] = in.W_O.at(r, h * dh + n);  // W_O's column
    const auto gi = in.gh.begin() + (h * dh + n) * in.nh;
    job.head_g.assign(gi, gi + in.nh);
    job.lin = in.mt[static_cast<size_t>(h * dh + n)];
    job.tail = neuron_tail_terms(ctx, in, h * dh + n, 1.0);
    for (const auto& np : left.neuron_fails) {
      if (np.first == n) job.positions.push_back(np.second);
    }
    out.push_back(std::move(job));
  }
  if (left.combos.empty()) return;
  // A combination's vector sum_a c_a W_O[:, h*d_head + a], each element the double chain
  // 0 + c_0 w_0 + c_1 w_1 + ... over a in order, rounded to float once. Formed as one small product
  // against the head's columns as rows, register-blocked across d_model, rather than one element's
  // chain of d_head dependent additions at a time: 3.4 -> 1.2 s of CPU for a 7B explain's ~5,000
  // combinations (the transposition included), the same bits.
  const int64_t ld = d + kRowPad;
  std::vector<float>& wo_t = w.wo_t;  // [d_head, d_model] (row stride ld)
  head_columns_as_rows(in.W_O, h, dh, ld, wo_t);
  const size_t first = out.size();
  for (const FailedCombo& fc : left.combos) {
    ExactJob job{l, h, -1, fc.pos, std::vector<float>(static_cast<size_t>(d)), {}, {}, 0.0, fc.tail};
    const std::vector<double>& cf = fc.coefs;
    job.head_g.assign(static_cast<size_t>(in.nh), 0.0);
    for (int64_t a = 0; a < dh; ++a) {
      const double* g = in.gh.data() + (h * dh + a) * in.nh;
      for (int64_t j = 0; j < in.nh; ++j) job.head_g[static_cast<size_t>(j)] += cf[static_cast<size_t>(a)] * g[j];
      job.lin += cf[static_cast<size_t>(a)] * in.mt[static_cast<size_t>(h * dh + a)];
    }
    out.push_back(std::move(job));
  }
  // [combos, d_model] = coefficients [combos, d_head] . wo_t [d_head, d_model], a in order per element.
  const auto n = static_cast<int64_t>(left.combos.size());
  w.coefs.resize(static_cast<size_t>(n * dh));
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<double>& cf = left.combos[static_cast<size_t>(i)].coefs;
    std::copy(cf.begin(), cf.end(), w.coefs.begin() + i * dh);
  }
  w.vectors.assign(static_cast<size_t>(n * d), 0.0);
  ops::matmul_nn_accumulate_small(n, d, dh, w.coefs.data(), dh, wo_t.data(), ld, w.vectors.data(), d);
  for (int64_t i = 0; i < n; ++i) {
    float* v = out[first + static_cast<size_t>(i)].v.data();
    for (int64_t k = 0; k < d; ++k) v[k] = static_cast<float>(w.vectors[static_cast<size_t>(i * d + k)]);
  }
}

// Steps 1-5 for head h of one layer.
HeadCounts score_head_bounded(const ExplainContext& ctx, const AttnLayerInputs& in, int64_t h, HeadScratch& w,
                              Explanation& ex, std::vector<ExactJob>& jobs) {
  const ModelConfig& c = ctx.model.config();
  const int64_t H = c.n_heads, dh = c.d_head, Pn = ctx.P + 1;
  HeadCounts counts;
  // Scores whose bounds fail are computed from the projection cache or exactly after the bounded
  // pass: a neuron needs its direction's projection, a combination its own vector's.
  HeadLeftovers left;
  left.need_dir.assign(static_cast<size_t>(dh), 0);
  head_coefficient_rows(ex.attn_coef.values.data() + static_cast<size_t>(((in.l * H + h) * dh) * Pn), dh, Pn, w.C);
  score_head_neurons_bounded(ctx, in, h, w, ex, left);
  score_head_combos_bounded(ctx, in, h, w, ex, left);
  const int64_t n_loose = left.count();
  counts.bounded = Pn * (dh + 1) + 1 - n_loose;
  if (n_loose == 0) return counts;
  counts.cached = score_head_leftovers_from_cache(ctx, in, h, ex, left);
  counts.full = left.count();
  if (counts.full == 0) return counts;
  queue_exact_jobs(ctx, in, h, left, w, jobs);
  return counts;
}

// Step 6a. The leftovers again, first against their layer's extended split (extend_tail: a larger
// head), then, where the sketch runs, from their int8 sketches (analysis/projection_sketch.h) with
// that split: a neuron's direction at each of its positions, a combination as itself. Removes what
// they certify (a neuron's certified positions, whole combinations) from `jobs`; adds how many
// scores each wrote to `bounded` and `sketched`.
void score_attention_leftovers(const ExplainContext& ctx, std::vector<std::vector<ExactJob>>& jobs, Explanation& ex,
                               int64_t& bounded, int64_t& sketched) {
  const int64_t d = ctx.model.config().d_model, L = ctx.model.config().n_layers;
  const double sigma = ctx.proj.scale(), tol = ctx.opts.bound_tol;
  struct Item {
    ExactJob* job;
    size_t y;     // its job's vector among y0s
    int64_t pos;  // the neuron's position, or the combination's (-1: the head)
    double coef;  // a neuron's coefficient; 1 for a combination
  };
  std::vector<Item> items;
  // Per job: its vector gamma_f * c(v) [d], its split (the extended one where it applies, below), its
  // head projections against that split's head [|H|] (in units of 1/sigma) and its tail mean term.
  std::vector<std::vector<float>> y0s;
  std::vector<const TailSplit*> split_of;
  std::vector<std::vector<double>> g_of;
  std::vector<double> lin_of;
  std::vector<std::vector<size_t>> y0s_of_layer(static_cast<size_t>(L));
  for (auto& per_head : jobs) {
    for (ExactJob& j : per_head) {
      y0s_of_layer[static_cast<size_t>(j.layer)].push_back(y0s.size());
      y0s.push_back(prepared_unscaled(ctx, j.v.data(), d));
      split_of.push_back(&ctx.tails[static_cast<size_t>(2 * j.layer)]);
      g_of.push_back(j.head_g);
      lin_of.push_back(j.lin);
      const std::vector<int64_t> at = j.dir >= 0 ? j.positions : std::vector<int64_t>{j.pos};
      for (int64_t p : at) items.push_back(Item{&j, y0s.size() - 1, p, j.dir >= 0 ? ex.attn_coef.at({j.layer, j.head, j.dir, p}) : 1.0});
    }
  }
  std::deque<TailSplit> extended;  // kept while the sketch reads them
  const int64_t extend = extended_head(ctx);  // 0: no extended split
  if (extend > 0) {
    ExtendScratch scratch;
    for (int64_t l = 0; l < L; ++l) {
      const std::vector<size_t>& ys = y0s_of_layer[static_cast<size_t>(l)];
      if (ys.empty()) continue;
      extended.push_back(extend_tail(ctx.model, ctx.tails[static_cast<size_t>(2 * l)], ctx.before_attn(l), extend,
                                     ctx.threads, std::move(scratch.rows)));
      TailSplit& e = extended.back();
      const auto n = static_cast<int64_t>(ys.size()), nh = static_cast<int64_t>(e.ids.size());
      scratch.Y.resize(static_cast<size_t>(n * d));  // [n, d]
      for (int64_t i = 0; i < n; ++i) {
        std::copy(y0s[ys[static_cast<size_t>(i)]].begin(), y0s[ys[static_cast<size_t>(i)]].end(), scratch.Y.begin() + i * d);
      }
      extended_products(ctx, e, n, scratch);  // scratch.G [n, |H|]
      for (int64_t i = 0; i < n; ++i) {
        const size_t y = ys[static_cast<size_t>(i)];
        double ym = 0;  // y0 . mu_T in double
        for (int64_t r = 0; r < d; ++r) ym += static_cast<double>(scratch.Y[static_cast<size_t>(i * d + r)]) * e.mu[static_cast<size_t>(r)];
        g_of[y].resize(static_cast<size_t>(nh));
        for (int64_t h = 0; h < nh; ++h) g_of[y][static_cast<size_t>(h)] = static_cast<double>(scratch.G[static_cast<size_t>(i * nh + h)]) / sigma;
        lin_of[y] = ym / sigma;
        split_of[y] = &e;
      }
      e.mu = {};
    }
  }
  // Items a batch at a time: each one's head deltas (coefficient times its job's projections) exist
  // only while its batch is scored, so a long prompt's many leftovers never hold |H| doubles each
  // at once. A value depends only on its own item, so the batching changes no score.
  constexpr size_t kBatch = 4096;
  std::vector<double> lse, hw;
  std::vector<std::vector<double>> delta;
  for (size_t b0 = 0; b0 < items.size(); b0 += kBatch) {
    const size_t nb = std::min(kBatch, items.size() - b0);
    lse.assign(nb, std::numeric_limits<double>::quiet_NaN());
    hw.assign(nb, 0.0);
    delta.resize(nb);
    std::vector<char> by_sketch(nb, 0);
    parallel_for(ctx.threads, static_cast<int64_t>(nb), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const Item& it = items[b0 + static_cast<size_t>(i)];
        const std::vector<double>& g = g_of[it.y];
        std::vector<double>& dl = delta[static_cast<size_t>(i)];
        dl.resize(g.size());
        for (size_t h = 0; h < g.size(); ++h) dl[h] = it.coef * g[h];
        if (extend == 0) continue;
        // The job's tail terms at coefficient 1, at this item's coefficient.
        const TailTerms tt = it.job->tail.scaled(it.coef, it.coef * lin_of[it.y]);
        lse[static_cast<size_t>(i)] = bounded_log_expectation(*split_of[it.y], dl.data(), tt, tol, &hw[static_cast<size_t>(i)]);
      }
    });
    if (ctx.sketch != nullptr) {
      std::vector<size_t> rest;  // the batch's items still uncertified
      for (size_t i = 0; i < nb; ++i) {
        if (std::isnan(lse[i])) rest.push_back(i);
      }
      std::vector<SketchJob> sj(rest.size());
      for (size_t r = 0; r < rest.size(); ++r) {
        const Item& it = items[b0 + rest[r]];
        sj[r] = SketchJob{split_of[it.y], y0s[it.y].data(), it.coef / sigma, delta[rest[r]].data(), it.coef * lin_of[it.y]};
      }
      std::vector<double> shw;  // [rest] certified half-widths, for a target's sums (record_width)
      const std::vector<double> slse = sketched_log_expectations(*ctx.sketch, sj, tol, ctx.threads, &shw);
      for (size_t r = 0; r < rest.size(); ++r) {
        lse[rest[r]] = slse[r];
        hw[rest[r]] = shw[r];
        by_sketch[rest[r]] = 1;
      }
    }
    for (size_t i = 0; i < nb; ++i) {
      if (std::isnan(lse[i])) continue;
      const Item& it = items[b0 + i];
      const ExactJob& j = *it.job;
      const int wi = split_of[it.y]->index_of(ctx.w);
      const double score = log_prob_increase_from(delta[i][static_cast<size_t>(wi)], lse[i]);
      if (j.dir >= 0) {
        ex.attn_neuron.at({j.layer, j.head, j.dir, it.pos}) = score;
        record_width(ctx, &ScoreWidths::attn_neuron, {j.layer, j.head, j.dir, it.pos}, hw[i]);
        auto& ps = it.job->positions;
        ps.erase(std::find(ps.begin(), ps.end(), it.pos));
      } else if (j.pos >= 0) {
        ex.head_position.at({j.layer, j.head, j.pos}) = score;
        record_width(ctx, &ScoreWidths::head_position, {j.layer, j.head, j.pos}, hw[i]);
        it.job->pos = kSketched;
      } else {
        ex.head.at({j.layer, j.head}) = score;
        record_width(ctx, &ScoreWidths::head, {j.layer, j.head}, hw[i]);
        it.job->pos = kSketched;
      }
      ++(by_sketch[i] ? sketched : bounded);
    }
  }
  for (auto& per_head : jobs) {
    per_head.erase(std::remove_if(per_head.begin(), per_head.end(), [](const ExactJob& j) {
                     return j.dir >= 0 ? j.positions.empty() : j.pos == kSketched;
                   }),
                   per_head.end());
  }
}

// Step 6. The exact pass over every layer's leftovers, in chunks (one GEMM each) of up to 128 vectors.
// A neuron's direction is W_O's column, a weight: projected unscaled (g0, scored with coef / sigma)
// and shared with other steps through ctx.shared, as the FFN's exact pass does; a combination is
// this step's own vector, projected as bs.
void score_exact_attention_jobs(const ExplainContext& ctx, std::vector<std::vector<ExactJob>>& jobs, Explanation& ex) {
  const int64_t d = ctx.model.config().d_model, V = ctx.model.config().d_vocab, dh = ctx.model.config().d_head;
  const double inv_scale = 1.0 / ctx.proj.scale();
  auto score = [&](const ExactJob& job, const float* g) {
    const Distribution& dist = ctx.before_attn(job.layer);
    if (job.dir >= 0) {
      for (int64_t p : job.positions) {
        ex.attn_neuron.at({job.layer, job.head, job.dir, p}) =
            log_prob_increase(dist, g, ex.attn_coef.at({job.layer, job.head, job.dir, p}) * inv_scale, ctx.w);
      }
    } else if (job.pos >= 0) {
      ex.head_position.at({job.layer, job.head, job.pos}) = log_prob_increase(dist, g, 1.0, ctx.w);
    } else {
      ex.head.at({job.layer, job.head}) = log_prob_increase(dist, g, 1.0, ctx.w);
    }
  };
  std::vector<ExactJob> dirs, combos;  // to project: unscaled directions, this step's combinations
  std::vector<std::pair<ExactJob, const float*>> known;
  for (auto& per_head : jobs) {
    for (auto& j : per_head) {
      if (j.dir < 0) {
        combos.push_back(std::move(j));
        continue;
      }
      const float* g0 = ctx.shared != nullptr ? ctx.shared->attn(j.layer, j.head * dh + j.dir) : nullptr;
      if (g0 != nullptr) {
        known.emplace_back(std::move(j), g0);
      } else {
        dirs.push_back(std::move(j));
      }
    }
  }
  if (ctx.shared != nullptr) {
    int64_t n_shared = 0;  // scores (a direction's positions each) read from shared rows
    for (const auto& [job, g0] : known) n_shared += static_cast<int64_t>(job.positions.size());
    ex.method_counts["attention_shared"] = n_shared;
  }
  parallel_for(ctx.threads, static_cast<int64_t>(known.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) score(known[static_cast<size_t>(i)].first, known[static_cast<size_t>(i)].second);
  });
  const auto n_todo = static_cast<int64_t>(dirs.size() + combos.size());
  int64_t n_done = 0;
  if (n_todo > 0) ctx.report("attention_exact", 0, n_todo);
  for (const bool unscaled : {true, false}) {
    const std::vector<ExactJob>& all = unscaled ? dirs : combos;
    const size_t kChunk = even_chunk(all.size());
    std::vector<float> rows(kChunk * static_cast<size_t>(d)), G(kChunk * static_cast<size_t>(V));
    for (size_t i0 = 0; i0 < all.size(); i0 += kChunk) {
      const size_t n = std::min(kChunk, all.size() - i0);
      for (size_t i = 0; i < n; ++i) std::copy(all[i0 + i].v.begin(), all[i0 + i].v.end(), rows.begin() + static_cast<std::ptrdiff_t>(i * static_cast<size_t>(d)));
      if (unscaled) {
        ctx.proj.project_unscaled(rows.data(), static_cast<int64_t>(n), d, G.data());
      } else {
        ctx.proj.project(rows.data(), static_cast<int64_t>(n), d, G.data());
      }
      parallel_for(ctx.threads, static_cast<int64_t>(n), [&](int64_t a, int64_t b) {
        for (int64_t i = a; i < b; ++i) score(all[i0 + static_cast<size_t>(i)], G.data() + i * V);
      });
      if (unscaled && ctx.shared != nullptr) {
        for (size_t i = 0; i < n; ++i) {
          const ExactJob& job = all[i0 + i];
          ctx.shared->keep_attn(job.layer, job.head * dh + job.dir, G.data() + i * static_cast<size_t>(V));
        }
      }
      n_done += static_cast<int64_t>(n);
      ctx.report("attention_exact", n_done, n_todo);
    }
  }
}

}  // namespace

void score_attention_bounded(const ExplainContext& ctx, Explanation& ex) {
  const ModelConfig& c = ctx.model.config();
  const ModelBounds& mb = *ctx.bounds;
  const int64_t L = c.n_layers, H = c.n_heads, dh = c.d_head;
  init_attention_arrays(ctx, ex);
  if (ctx.widths != nullptr) {  // 0: exact
    ctx.widths->head = ScoreArray(ex.head.shape);
    ctx.widths->head_position = ScoreArray(ex.head_position.shape);
    ctx.widths->attn_neuron = ScoreArray(ex.attn_neuron.shape);
  }
  std::vector<HeadCounts> counts(static_cast<size_t>(H));
  std::vector<std::vector<ExactJob>> jobs(static_cast<size_t>(H));  // per head (one writer each)
  FloatWeights W_O;  // [d_model, H*d_head] layer l's, decoded into the same storage every layer
  // Progress: a unit per layer, and one for what the layers' bounds left (the extended split and
  // the sketch, over every layer at once).
  for (int64_t l = 0; l < L; ++l) {
    ctx.report("attention", l, L + 1);
    fill_attention_coefficients(ctx, ex, l);
    const TailSplit& t = ctx.tails[static_cast<size_t>(2 * l)];
    // Read column by column below: an encoded W_O is decoded once per layer (d_model x H*d_head floats).
    W_O = FloatWeights(ctx.model.weights().layers[static_cast<size_t>(l)].W_O, ctx.threads, std::move(W_O));
    AttnLayerInputs in{l, t, W_O.view(), {}, {}, static_cast<int64_t>(t.ids.size()),
                       t.index_of(ctx.w), ctx.foil >= 0 ? t.index_of(ctx.foil) : -1,
                       mb.attn_gamma_norm[static_cast<size_t>(l)], mb.attn_norm[static_cast<size_t>(l)],
                       mb.attn_quartic[static_cast<size_t>(l)]};
    head_projections(ctx, t, in.W_O, 0, H * dh, in.gh, in.mt);
    parallel_for(ctx.threads, H, [&](int64_t h0, int64_t h1) {
      HeadScratch w;
      w.delta.resize(static_cast<size_t>(in.nh));
      w.sums.resize(static_cast<size_t>(dh));
      for (int64_t h = h0; h < h1; ++h) {
        const HeadCounts hc = score_head_bounded(ctx, in, h, w, ex, jobs[static_cast<size_t>(h)]);
        HeadCounts& total = counts[static_cast<size_t>(h)];
        total.bounded += hc.bounded, total.cached += hc.cached, total.full += hc.full;
      }
    });
  }
  W_O = FloatWeights();  // freed before the sketch and the exact pass
  ctx.report("attention", L, L + 1);
  int64_t extended = 0, sketched = 0;
  score_attention_leftovers(ctx, jobs, ex, extended, sketched);
  ctx.report("attention", L + 1, L + 1);
  score_exact_attention_jobs(ctx, jobs, ex);
  int64_t b = extended, f = -sketched - extended, cc = 0;
  for (const HeadCounts& hc : counts) b += hc.bounded, f += hc.full, cc += hc.cached;
  if (ctx.sketch != nullptr) ex.method_counts["attention_sketched"] = sketched;
  ex.method_counts["attention_bounded"] = b;
  ex.method_counts["attention_full"] = f;
  ex.method_counts["attention_cached"] = cc;
}

}  // namespace reslens::analysis
