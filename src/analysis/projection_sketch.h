// Sketched projections: a certified middle step between the cheap weight-only bounds and the exact
// projection onto the whole vocabulary (docs/explain.md, "The sketched projection").
//
// A vector whose cheap bound fails needs its tail second moment m2 = sum_T q_j g_j^2 (g = W_U y0,
// y0 = gamma_f * c(v)), known to a few per cent, not each g_j to float precision. The sketch holds
// W_U's rows as int8 codes with one scale each, u_j = a_j c_j + E_j; a vector is rounded to int8 the
// same way, y0 = b y~ + f, and g~_j = a_j b (c_j . y~) is an exact integer product (ops/int8_dot.h,
// a quarter of a float GEMM's cost with AVX-512 VNNI, a half with AVX2). Its error e_j = g_j - g~_j = u_j . f + E_j . z
// (z = b y~) is bounded without touching the vocabulary again:
//   sum_T q_j e_j^2 <= q_T,max (|W_U f| + |E z|)^2,  |W_U f|^2 = f^T Gamma f,  |E z|^2 = z^T Gamma_E z,
//   |e_j| <= umax |f| + emax |z|,
// with Gamma = W_U^T W_U and Gamma_E = E^T E weight-only [d, d] matrices (their float rounding is
// bounded and added). Then, by Cauchy-Schwarz over the tail weights,
//   m2 in [a2 - 2 sqrt(a2) eps2 , a2 + 2 sqrt(a2) eps2 + eps2^2],  a2 = sum_T q_j g~_j^2,
// and the tail's higher orders are bounded through psi as for a cached row (cached_log_expectation).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "analysis/bounds.h"
#include "analysis/shared_projections.h"
#include "ops/int8_dot.h"
#include "reslens/model.h"

namespace reslens::analysis {

/// The model's W_U as int8 codes and the weight-only quantities of their error bounds.
struct ProjectionSketch {
  int64_t d = 0, V = 0;
  ops::Int8Rows codes;            ///< c_j, packed for ops::int8_dot_tile
  std::vector<float> scale;       ///< [V] a_j = max_i |u_ji| / 127
  double umax = 0;                ///< >= max_j |u_j|
  double emax = 0;                ///< >= max_j |E_j|, E_j = u_j - a_j c_j
  std::vector<float> gram;        ///< [d, d] Gamma = W_U^T W_U (float GEMM)
  std::vector<float> gram_err;    ///< [d, d] Gamma_E = E^T E (float GEMM)
  double trace = 0, trace_err = 0;      ///< their traces (sum_j |u_j|^2, sum_j |E_j|^2), for rounding bounds
  double max_abs = 0, max_abs_err = 0;  ///< max |entry| of each
  double gram_chain = 0;                ///< roundings per Gram entry (their error bound)
  /// Certified upper bounds on the largest eigenvalue of Gamma and Gamma_E as stored (their lower
  /// triangles; ops::certified_max_eigenvalue), +inf where none was certified.
  double gram_lambda = std::numeric_limits<double>::infinity();
  double gram_err_lambda = std::numeric_limits<double>::infinity();
  /// Whether a vector's error norms are first bounded by lambda_max |x|^2 (d multiply-adds) and its
  /// quadratic forms (2 d^2) computed only where that leaves it uncertified: set where the forms cost
  /// as much as a sixteenth of the int8 products (32 d >= V: Llama 2's 4096 x 32000, not GPT-2's
  /// 768 x 50257), where they were most of a 7B explain's float work.
  bool screen_forms = false;
};

/// The sketch of a model's W_U, built on first use (a pass over W_U and two [d, V] x [V, d] float
/// GEMMs, in blocks of 4096 rows) and kept for the process while in use: V d bytes of codes and
/// 2 d^2 floats (GPT-2 124M: 39 + 4.7 MB; a 7B model: 131 + 134 MB). `progress` (when not null)
/// hears the Gram matrices' build when they are not cached: phase "sketch", a unit per block.
std::shared_ptr<const ProjectionSketch> projection_sketch(const Model& model, int n_threads,
                                                          const ExplainProgressFn* progress = nullptr);
/// Whether explain uses the sketch on this CPU: wherever a SIMD kernel of ops::int8_dot_tile runs
/// (AVX-512 VNNI, AVX-VNNI or AVX2; ops::detail::int8_dot_is_fast). They all give the same
/// integers, so the sketched scores are the same bits on each. The portable loops give them too
/// but at ~1-2 GMAC/s, far slower than the exact float pass; without a SIMD kernel those vectors go
/// to the exact pass, so scores may differ from a SIMD CPU's within bound_tol.
bool projection_sketch_available();
/// The sketch of any [V, d] unembedding (tests build adversarial ones).
std::shared_ptr<ProjectionSketch> build_projection_sketch(const MatrixView& W_U, int n_threads);

/// Upper bounds of |g|_4^2 = sqrt(sum_j g_j^4), g = W_U y0, for every row of y0 [n, d] (the bounded
/// method's Hoelder bound, analysis/bounds.h) from the int8 products instead of float ones: with
/// g = g~ + e as above, Minkowski gives |g|_4 <= |g~|_4 + |W_U f|_4 + |E z|_4 and each error term
/// |x|_4 <= sqrt(|x|_2 |x|_inf) <= sqrt(|x|_2 max_j |row_j| |.|) (the 2-norms from lambda_max,
/// as a sketched log-expectation bounds them), plus the float rounding of a projection. The error
/// terms add ~8% to |g|_4 (17% to |g|_4^2) on random GPT-2 124M weights, mostly the inf-norms'
/// Cauchy-Schwarz bounds; the products cost a quarter (AVX-512 VNNI) to an eighth (AMX) of the
/// float GEMM's. Every row's value depends only on that row. Needs finite
/// gram_lambda and gram_err_lambda (otherwise returns infinities: no bound).
std::vector<double> sketched_quartic_norms(const ProjectionSketch& sketch, const float* y0, int64_t n, int n_threads);

/// The forms f^T Gamma f and z^T Gamma_E z of every row of y0 [n, d] rounded as a sketched vector
/// is (y0 = b y~ + f, z = b y~): out[2i], out[2i + 1], the bits sketched_log_expectations computes
/// for that vector (a row's values depend only on that row). Weight-only for a model's FFN
/// directions, so the bounds keep them (ModelBounds::ffn_forms) where every vector's forms are
/// computed (screen_forms false): 2 d^2 multiply-adds a vector, a ninth of a GPT-2 explain's time.
std::vector<double> sketched_forms(const ProjectionSketch& sketch, const float* y0, int64_t n, int n_threads);

/// One vector to certify: delta_j = s * (u_j . y0) in the state of `t`, with its exact head deltas
/// (s * g over t.ids) and tail linear term (s * y0 . mu_T), as the cheap bound had them.
struct SketchJob {
  const TailSplit* t = nullptr;
  const float* y0 = nullptr;  ///< [d]
  double s = 0;
  const double* head_delta = nullptr;  ///< [|H|]
  double tail_linear = 0;
  /// FFN neuron (ffn_layer, ffn_neuron) when y0 is its unscaled direction gamma_f * c(fc2_k), the
  /// same at every step: its integer products and forms are then shared through SharedProjections.
  /// -1: a vector of its own.
  int64_t ffn_layer = -1, ffn_neuron = -1;
  /// [2] y0's forms f^T Gamma f and z^T Gamma_E z when the model's bounds hold them
  /// (ModelBounds::ffn_forms, from sketched_forms: the same bits), else nullptr: computed here.
  const double* forms = nullptr;
};

/// f = log sum_j q_j exp(delta_j) for every job, certified within tol, or NaN where the sketch's
/// interval is wider than 2 tol (the caller then projects the vector exactly). The values depend
/// only on each job, never on the other jobs, the thread count or the CPU's instruction set.
/// `half_widths` (when not nullptr) receives each certified value's half-width (NaN where none),
/// which a multi-token target's sums budget (analysis/target_tightening.h). `shared` (when not
/// nullptr): the FFN directions' products and forms an earlier call published are read from it
/// instead of computed, and this call's are published to it while its budget lasts; the values are
/// the same bits either way. `shared_read` (when not nullptr) receives how many jobs read them.
std::vector<double> sketched_log_expectations(const ProjectionSketch& sketch, const std::vector<SketchJob>& jobs,
                                              double tol, int n_threads, std::vector<double>* half_widths = nullptr,
                                              SharedProjections* shared = nullptr, int64_t* shared_read = nullptr);

/// sketched_log_expectations for FFN jobs whose vectors' integer products and forms `shared` holds
/// (an earlier call published them), many states per vector, as a multi-token target's sums
/// re-certify their steps (analysis/target_tightening.h): the tail sums of every (state, vector)
/// pair come from float products of the states' code weights with the vectors' squared products,
/// 256 tokens at a time added in double, instead of a pass over the vocabulary per pair. The same
/// certificate (within the same 1e-5 of float rounding), not the same bits: the sums run in another
/// order. Jobs whose vector `shared` does not hold come back NaN. Values depend only on each job.
std::vector<double> sketched_log_expectations_shared(const ProjectionSketch& sketch, const std::vector<SketchJob>& jobs,
                                                     double tol, int n_threads, std::vector<double>& half_widths,
                                                     const SharedProjections& shared);

}  // namespace reslens::analysis
