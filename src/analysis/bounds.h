// Certified bounds for the log-normaliser change behind every importance score, so that most of the
// paper's scores need a few dozen vocabulary entries instead of all of them (docs/explain.md,
// "The bounded method").
//
// For a state with distribution q = softmax(bs(x)) and a vector v with projection s*g = bs(v),
//   f = log sum_j q_j exp(s g_j)
// splits the vocabulary into a head H (the tokens q ranks highest, plus the target and foil) and
// the tail T. The head part is computed exactly. In the tail, exp(t) = 1 + t + phi(t) with
// 0 <= phi(t) <= t^2 psi(|t|), psi(z) = (e^z - 1 - z) / z^2 increasing, so
//   sum_T q_j exp(s g_j) = Q_T + s m_T + R,   m_T = y . mu_T,   mu_T = sum_T q_j u_j,
//   0 <= R <= psi(|s| B) s^2 q_T,max sum_j g_j^2 = psi(|s| B) s^2 q_T,max (y^T Gamma y),
// with u_j the rows of W_U, y the prepared vector (bs(v) = W_U y), Gamma = W_U^T W_U,
// B >= max_j |g_j| (Cauchy-Schwarz: |y| max_j |u_j|). Hoelder's inequality bounds the same tail sum
// by the tail's 2-norm instead of its largest weight, sum_T q_j g_j^2 <= |q_T|_2 sqrt(sum_j g_j^4),
// with sqrt(sum_j g_j^4) = |g|_4^2 a per-direction weight-only quantity (one projection of every
// direction per model), and R takes the smaller of the two: for any tail whose largest weight is
// more than ~3x its mean (every real distribution) the 2-norm one is the narrower, by 2.3x on
// random GPT-2 124M weights. Both bounds only bound R from above. A centred one gives it a lower
// side too: with c = Q_T / |T| the tail's mean weight,
//   sum_T q_j g_j^2 = c sum_T g_j^2 + sum_T (q_j - c) g_j^2,  |second term| <= |q_T - c|_2 |g|_4^2,
//   sum_T g_j^2 = y^T Gamma y - sum_H g_j^2,
// so where the tail is near flat (|q_T - c|_2 well below |q_T|_2, as on random weights) the tail's
// second moment is known within a few per cent, and with psi(-|s| B) <= psi(s g_j) <= psi(|s| B)
// so is R. f is then known within log(R_hi - R_lo over S_lo + R_lo); when that is below the
// tolerance the midpoint is exact to half of it, otherwise the caller computes f over the whole
// vocabulary. Everything except mu_T and the head is a property of the weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "analysis/projector.h"
#include "reslens/explain.h"
#include "reslens/model.h"

namespace reslens::analysis {

/// The relative slack on the weight-only numbers that come from float products (Gram forms, norms,
/// |g|_4^2): each is stored as its computed value times this, so the exact value lies within
/// [stored / kBoundSlack^2, stored].
inline constexpr double kBoundSlack = 1.01;

/// Weight-only quantities of a model (in units where the frozen norm's scale is 1; divide by
/// sigma / sigma^2 per explanation). Computed once per model and cached (memory and disk).
struct ModelBounds {
  int64_t d = 0, V = 0;
  double umax = 0;                           ///< max_j |W_U[j]|
  /// Per layer, per FFN neuron k with y0 = gamma_f * c(fc2_k): y0^T Gamma y0 and |y0|.
  std::vector<std::vector<double>> ffn_gamma_norm, ffn_norm;
  /// Per layer, per attention neuron (h, n) with y0 = gamma_f * c(W_O[:, h*d_head+n]).
  std::vector<std::vector<double>> attn_gamma_norm, attn_norm;
  /// Per layer, per head: the [d_head, d_head] Gram matrices of its neurons' y0 under Gamma and
  /// under the dot product, for bounds on combinations (head-positions, heads).
  std::vector<std::vector<double>> head_gram_gamma, head_gram;
  /// Per layer, per FFN neuron and per attention neuron: |g0|_4^2 = sqrt(sum_j g0_j^4) of the
  /// direction's projection g0 = W_U y0 over the whole vocabulary (float products, with kSlack).
  std::vector<std::vector<double>> ffn_quartic, attn_quartic;
  /// Per layer, per FFN neuron k: the int8 sketch's forms of its direction y0 (sketched_forms: qf
  /// at 2k, qz at 2k + 1), which a sketched explain would otherwise compute for every such vector
  /// (ProjectionSketch::screen_forms false); empty layers where the sketch screens its forms, where
  /// computing them all would cost over 2e12 multiply-adds, or where the sketch does not run on the
  /// CPU that built the bounds.
  std::vector<std::vector<double>> ffn_forms;
  /// ffn_forms's pair for neuron k of layer l, or nullptr where there is none.
  const double* ffn_forms_of(int64_t l, int64_t k) const {
    if (l < 0 || static_cast<size_t>(l) >= ffn_forms.size()) return nullptr;
    const std::vector<double>& f = ffn_forms[static_cast<size_t>(l)];
    return k >= 0 && static_cast<size_t>(2 * k + 1) < f.size() ? f.data() + 2 * k : nullptr;
  }
};

/// The model's bounds, computed on first use and kept for the process; also cached on disk under
/// $RESLENS_CACHE_DIR (default $XDG_CACHE_HOME/reslens or ~/.cache/reslens) when writable.
/// `progress` (when not null) hears the build, when there is one: phase "bounds", a unit per layer
/// (and "sketch" while the sketch's Gram matrices are built for it).
std::shared_ptr<const ModelBounds> model_bounds(const Model& model, int n_threads,
                                                const ExplainProgressFn* progress = nullptr);

/// The prepared value vector y0 = gamma_f * c(v) of each column of a [d_model, n] matrix: [n, d].
/// The same bits for any thread count (a column's values depend on that column only).
std::vector<float> prepared_columns(const Model& model, const MatrixView& m, int64_t first, int64_t count,
                                    int n_threads = 1);
/// The same into out [count, d] (every value written).
void prepared_columns_into(const Model& model, const MatrixView& m, int64_t first, int64_t count, float* out,
                           int n_threads = 1);

/// The head/tail split of one state's distribution.
struct TailSplit {
  std::vector<int32_t> ids;     ///< head tokens (target and foil included)
  std::vector<double> q;        ///< their probabilities
  std::vector<float> head_rows; ///< [|H|, d] the W_U rows of the head, for the head GEMM
  double mass = 0;              ///< Q_T
  double q_max = 0;             ///< max probability in the tail
  /// |q_T|_2 = sqrt(sum_T q_j^2), rounded up; infinity when not known (the Hoelder bound then unused)
  double q_l2 = std::numeric_limits<double>::infinity();
  double q_mean = 0;            ///< c = Q_T / |T|, the tail's mean weight
  /// |q_T - c|_2 = sqrt(sum_T (q_j - c)^2), rounded up; infinity when not known (the centred bound
  /// then unused)
  double q_dev = std::numeric_limits<double>::infinity();
  std::vector<double> mu;       ///< [d] sum_T q_j W_U[j]
  std::vector<float> tail_q;    ///< [V] q on the tail, 0 on the head (for cached-row moments)
  int index_of(int32_t id) const;
};

/// Head sets for several states at once (one pass over W_U for every tail mean).
std::vector<TailSplit> split_tails(const Model& model, const ModelBounds& mb, const std::vector<const Distribution*>& dists,
                                   int head_size, const std::vector<int32_t>& always, int n_threads);

/// What a split holds beyond its distribution: its head and its tail mean (the costly part, a pass
/// over W_U), with a hash of the bits of the distribution it was made from. A multi-token target's
/// steps keep theirs (ScoreWidths::tails) and its tightening rebuilds them (split_from_kept) instead
/// of splitting the same states again.
struct KeptSplit {
  std::vector<int32_t> ids;  ///< the head, as TailSplit::ids
  std::vector<double> mu;    ///< [d] TailSplit::mu
  uint64_t q_hash = 0;       ///< distribution_hash of the distribution split
};
KeptSplit keep_split(const TailSplit& t, const Distribution& dist);
/// A hash of q's bits (and its length).
uint64_t distribution_hash(const Distribution& dist);
/// The split `kept` came from, the same bits as split_tails made it, when `dist` is the distribution
/// it was made from (the same hash and size); false otherwise (`out` untouched).
bool split_from_kept(const Model& model, const KeptSplit& kept, const Distribution& dist, TailSplit& out);

/// The split `t` of `dist` with a larger head: t's tokens first (same order), then the next tokens
/// by probability (ties by id) up to `head_size` in all (or V). Every tail number is recomputed over
/// the smaller tail; mu = t.mu minus the added tokens' q_j W_U[j] (the same float weights t.tail_q
/// holds); head_rows holds all its head tokens' rows. For vectors whose bound fails with t: a larger
/// head takes the tail's largest weights out of it, so its Hoelder and centred bounds and the
/// sketch's error term (sqrt(q_T,max)) narrow. `rows` is storage for head_rows (a previous split's,
/// moved in), so that a loop over layers reuses one allocation: 32 MB a layer on a 7B model, which,
/// freed and allocated anew each layer, fragmented the heap by ~1 GB.
TailSplit extend_tail(const Model& model, const TailSplit& t, const Distribution& dist, int64_t head_size, int n_threads,
                      std::vector<float> rows = {});

/// What a caller knows of the tail for the vector s*g (in units of g; the caller divides by sigma).
/// Every field is a bound that must hold; the defaults are "not known".
struct TailTerms {
  double linear = 0;  ///< s m_T = s sum_T q_j g_j
  /// An upper and a lower bound on s^2 sum_j g_j^2 over the whole vocabulary (s^2 y^T Gamma y).
  double quadratic = std::numeric_limits<double>::infinity();
  double quadratic_lo = 0;
  double range = std::numeric_limits<double>::infinity();    ///< >= |s| max_j |g_j|
  double quartic = std::numeric_limits<double>::infinity();  ///< >= s^2 |g|_4^2 = s^2 sqrt(sum_j g_j^4)

  /// The terms of c times the vector these describe: the quadratic ones scale by c^2, the range by |c|
  /// (each bound stays a bound); `linear` is c s m_T, given by the caller.
  TailTerms scaled(double c, double linear_c) const {
    TailTerms t;
    t.linear = linear_c;
    t.quadratic = c * c * quadratic;
    t.quadratic_lo = c * c * quadratic_lo;
    t.range = std::abs(c) * range;
    t.quartic = c * c * quartic;
    return t;
  }
};

/// The certified value of f = log sum_j q_j exp(delta_j) for delta = s*g, given head_delta[h] =
/// s * g_{ids[h]} and the tail terms: the tail's second moment lies below min(q_max quadratic,
/// |q_T|_2 quartic, c (quadratic - sum_H delta^2) + |q_T - c|_2 quartic) and above
/// c (quadratic_lo - sum_H delta^2) - |q_T - c|_2 quartic.
/// Returns NaN when the interval is wider than 2 * tol (the caller computes f exactly).
/// `half_width` (when given and a value is returned): the certified half-width of the interval, so
/// that |f - returned| <= *half_width <= tol; a multi-token target sums these over its steps
/// (analysis/target_tightening.h). The returned value is the same with or without it.
double bounded_log_expectation(const TailSplit& t, const double* head_delta, const TailTerms& tail, double tol,
                               double* half_width = nullptr);

/// The bounded value from an already summed head part `head` (known within +-head_err), with
/// head_square = sum_H delta_j^2 of the head tokens' deltas.
double bounded_from_head(const TailSplit& t, double head, double head_err, double head_square, const TailTerms& tail,
                         double tol, double* half_width = nullptr);

/// Power sums of one direction over a state's head tokens, so that the head part of every multiple
/// s*g of it costs a few multiply-adds instead of |H| exponentials (attention neurons: one direction,
/// one coefficient per source position):
///   sum_H q_j exp(s g_j) = sum_{k<=K} s^k/k! P_k + R,  P_k = sum_H q_j g_j^k,
///   |R| <= Q_H x^(K+1) e^x / (K+1)!  with x = |s| max_H |g_j|   (Taylor with Lagrange remainder).
struct HeadPowerSums {
  static constexpr int kTerms = 12;  ///< K + 1
  double p[kTerms] = {};  ///< P_k / k!
  double gabs = 0;  ///< max_H |g_j|
  double qh = 0;    ///< Q_H
};
HeadPowerSums head_power_sums(const TailSplit& t, const double* g);
/// The head part for coefficient s with its error bound; NaN when |s| max|g| > 1 (then exponentiate).
double head_part(const HeadPowerSums& m, double s, double& err);

/// The same from a direction's tail second moment instead of the Gamma bound, when that moment is
/// known within an interval (from a cached, quantized projection: analysis/projection_cache.h). With
/// a1 = sum_T q_j |g~_j|, a2 = sum_T q_j g~_j^2 of an approximate projection g~ with |g - g~| <= eps
/// per token, sum_T q_j g_j^2 lies in [a2 - 2 eps a1, a2 + 2 eps a1 + eps^2 Q_T]; exp(t) = 1 + t +
/// t^2 psi(t) with psi increasing gives the tail within s^2 [psi(-|s| gmax), psi(|s| gmax)] times it.
/// Everything is in units of g (the caller divides by sigma). NaN when the interval is too wide.
/// `half_width` as for bounded_log_expectation.
double cached_log_expectation(const TailSplit& t, const double* head_delta, double tail_linear, double s, double a1,
                              double a2, double eps, double gmax, double tol, double* half_width = nullptr);

}  // namespace reslens::analysis
