// The error budget of a multi-token target's sums (analysis/target_tightening.h): select, per
// summed component, the steps whose certified widths must be replaced by exact scores, compute
// those exactly (layer by layer: each step's context distribution once, each weight direction's
// unscaled projection once, shared by every step that needs it), then correct the sums.
#include "analysis/target_tightening.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "analysis/bounds.h"
#include "analysis/projection_sketch.h"
#include "analysis/ranking.h"
#include "analysis/target_sums.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/combine_rows.h"
#include "ops/gemm.h"
#include "ops/vector_ops.h"
#include "reslens/error.h"
#include "reslens/tensor.h"

namespace reslens::analysis {

namespace {
// Named too: a unity build compiles other files' anonymous namespaces beside this one.
namespace budget {

std::atomic<bool> g_heads_by_direction{false};
std::atomic<int64_t> g_heads_by_position{0};
std::atomic<int64_t> g_splits_rebuilt{0}, g_splits_made{0};

// The four summed levels whose step scores are bounded.
enum Level { kFfn = 0, kAttnNeuron = 1, kHead = 2, kHeadPosition = 3 };
constexpr int kLevels = 4;
ScoreArray ScoreWidths::*const kWidthOf[kLevels] = {&ScoreWidths::ffn_neuron, &ScoreWidths::attn_neuron,
                                                    &ScoreWidths::head, &ScoreWidths::head_position};
ScoreArray Explanation::*const kScoreOf[kLevels] = {&Explanation::ffn_neuron, &Explanation::attn_neuron,
                                                    &Explanation::head, &Explanation::head_position};
const char* const kName[kLevels] = {"ffn", "attention", "head", "head_position"};

// A step of either pass, with its widths and the entries chosen for an exact score.
struct StepRef {
  const TeacherForcedPass* pass = nullptr;
  const TargetStep* step = nullptr;
  ScoreWidths* widths = nullptr;  // the step's, narrowed where a score is certified again
  std::vector<char> marked[kLevels];  // per entry of the step's array: recompute exactly
};

// One summed array and its terms: (index into the refs, sign).
struct SumTerms {
  int level = 0;
  ScoreArray* sum = nullptr;
  std::vector<std::pair<size_t, double>> terms;
};

// Entry i of an array whose last axis is n_sum, in a step's array whose last axis is n_step (source
// positions: the step has the first n_step), or -1 when the step has no such entry.
int64_t step_index(int64_t i, int64_t n_sum, int64_t n_step) {
  const int64_t r = i / n_sum, p = i % n_sum;
  return p < n_step ? r * n_step + p : -1;
}

// Marks, for every component of `s` in [begin, end) whose unmarked widths add up to more than `tol`, its widest
// steps (ties: the earlier term) until the rest add up to at most `tol`. Returns how many summed
// components needed it.
int64_t select_steps(const SumTerms& s, std::vector<StepRef>& refs, double tol, int64_t begin, int64_t end) {
  if (s.sum->values.empty()) return 0;
  const int64_t n_sum = s.sum->shape.back();
  int64_t needed = 0;
  struct Entry {
    double width;
    size_t term;
    int64_t index;
  };
  std::vector<Entry> entries;
  std::vector<double> rest;
  for (int64_t i = begin; i < end; ++i) {
    entries.clear();
    double total = 0;
    for (size_t k = 0; k < s.terms.size(); ++k) {
      const StepRef& r = refs[s.terms[k].first];
      const ScoreArray& w = r.widths->*kWidthOf[s.level];
      if (w.values.empty()) continue;
      const int64_t j = step_index(i, n_sum, w.shape.back());
      if (j < 0 || r.marked[s.level][static_cast<size_t>(j)]) continue;
      const double x = w.values[static_cast<size_t>(j)];
      if (x > 0) {
        entries.push_back({x, k, j});
        total += x;
      }
    }
    if (total <= tol) continue;
    ++needed;
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.width > b.width; });
    // rest[k]: the widths from the k-th widest on, summed smallest first.
    rest.assign(entries.size() + 1, 0.0);
    for (size_t k = entries.size(); k-- > 0;) rest[k] = rest[k + 1] + entries[k].width;
    for (size_t k = 0; k < entries.size() && rest[k] > tol; ++k) {
      refs[s.terms[entries[k].term].first].marked[s.level][static_cast<size_t>(entries[k].index)] = 1;
    }
  }
  return needed;
}

// A step score to compute again from the whole vocabulary: certified from its row's moments (a
// far narrower interval than the step's bound), or exactly.
struct Job {
  size_t ref;
  int level;
  int64_t index;  // into the step's array
  double value = 0;
  double width = 0;  // certified half-width of value (0: exact); NaN: the moments could not certify it
};

// The layer of entry `index` of a step's array of `level`.
int64_t layer_of(const ScoreArray& a, int64_t index) {
  int64_t per_layer = 1;
  for (size_t k = 1; k < a.shape.size(); ++k) per_layer *= a.shape[k];
  return index / per_layer;
}

// Q = sum_j q_j as the moments sum (16 lanes j % 16, then in order, then the last n % 16): the
// same for every row under q, so taken once per distribution.
double weights_total(const std::vector<double>& q) {
  constexpr int64_t kLanes = ops::MomentLanes::kLanes;
  const auto n = static_cast<int64_t>(q.size());
  const int64_t n16 = n / kLanes * kLanes;
  double lane[kLanes] = {};
  for (int64_t i = 0; i < n16; i += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) lane[k] += q[static_cast<size_t>(i + k)];
  }
  double Q = 0;
  for (int64_t k = 0; k < kLanes; ++k) Q += lane[k];
  for (int64_t j = n16; j < n; ++j) Q += q[static_cast<size_t>(j)];
  return Q;
}

// Everything the exact scores of one layer read: per step, its projector and the distributions of
// the layer's two contexts (before attention, before the FFN).
class LayerContexts {
 public:
  LayerContexts(const Model& model, std::vector<StepRef>& refs) : model_(model), refs_(refs), proj_(refs.size()) {
    attn_.resize(refs.size());
    ffn_.resize(refs.size());
    attn_total_.resize(refs.size());
    ffn_total_.resize(refs.size());
  }

  const VocabProjector& projector(size_t r) {
    if (proj_[r] == nullptr) {
      const StepRef& ref = refs_[r];
      const TraceView& trace = trace_of(ref);
      const ExplainOptions& o = ref.step->options;
      const int64_t d = model_.config().d_model, L = model_.config().n_layers;
      proj_[r] = std::make_unique<VocabProjector>(model_, std::span<const float>(trace.resid_post(L - 1, ref.step->position), static_cast<size_t>(d)),
                                                  o.include_final_bias, threads());
    }
    return *proj_[r];
  }

  // Builds the distributions of layer l's contexts for the steps flagged (one GEMM for all).
  void prepare(int64_t l, const std::vector<char>& need_attn, const std::vector<char>& need_ffn) {
    const ModelConfig& c = model_.config();
    const int64_t d = c.d_model, V = c.d_vocab;
    std::vector<std::pair<size_t, bool>> rows;  // (ref, ffn context)
    for (size_t r = 0; r < refs_.size(); ++r) {
      attn_[r] = Distribution{};
      ffn_[r] = Distribution{};
      attn_total_[r] = ffn_total_[r] = 0;
      if (need_attn[r]) rows.emplace_back(r, false);
      if (need_ffn[r]) rows.emplace_back(r, true);
    }
    if (rows.empty()) return;
    std::vector<float> ys(rows.size() * static_cast<size_t>(d));  // [rows, d] prepared contexts
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto [r, is_ffn] = rows[i];
      const TraceView& trace = trace_of(refs_[r]);
      const int64_t P = refs_[r].step->position;
      // As explain() lays out its points: h^{l-1} (the embedding for l = 0) and r^l.
      const float* v = is_ffn ? trace.resid_mid(l, P) : (l == 0 ? trace.embed(P) : trace.resid_post(l - 1, P));
      projector(r).prepare(v, ys.data() + i * static_cast<size_t>(d));
    }
    std::vector<float, DefaultInitAllocator<float>> logits(rows.size() * static_cast<size_t>(V));  // [rows, V], all written
    projector(rows.front().first).project_prepared(ys.data(), static_cast<int64_t>(rows.size()), logits.data());
    parallel_for(threads(), static_cast<int64_t>(rows.size()), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [r, is_ffn] = rows[static_cast<size_t>(i)];
        (is_ffn ? ffn_ : attn_)[r] = make_distribution({logits.data() + i * V, static_cast<size_t>(V)}, projector_const(r).bias(),
                                                    static_cast<double>(c.final_softcap));
        (is_ffn ? ffn_total_ : attn_total_)[r] = weights_total((is_ffn ? ffn_ : attn_)[r].q);
      }
    });
    // The same weights as float rows on cache lines, for the moments' products (0 where unused).
    weights_ld_ = (V + 15) / 16 * 16;
    for (int ctx = 0; ctx < 2; ++ctx) weights_[ctx].assign(refs_.size() * static_cast<size_t>(weights_ld_), 0.0f);
    parallel_for(threads(), static_cast<int64_t>(rows.size()), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [r, is_ffn] = rows[static_cast<size_t>(i)];
        const std::vector<double>& q = (is_ffn ? ffn_ : attn_)[r].q;
        float* w = weights_[is_ffn ? 1 : 0].data() + r * static_cast<size_t>(weights_ld_);
        for (int64_t j = 0; j < V; ++j) w[j] = static_cast<float>(q[static_cast<size_t>(j)]);
      }
    });
  }

  const Distribution& attn(size_t r) const { return attn_[r]; }
  const Distribution& ffn(size_t r) const { return ffn_[r]; }
  /// Every step's weights q of one context as float: [steps, weights_ld()], row r the step's.
  const float* weights(bool ffn_context) const { return weights_[ffn_context ? 1 : 0].data(); }
  int64_t weights_ld() const { return weights_ld_; }
  /// Their weights' sums (weights_total).
  double attn_total(size_t r) const { return attn_total_[r]; }
  double ffn_total(size_t r) const { return ffn_total_[r]; }
  int threads() const {
    const int t = refs_.front().step->options.n_threads;
    return t > 0 ? t : default_threads();
  }
  const TraceView& trace_of(const StepRef& ref) {
    for (auto& [pass, trace] : traces_) {
      if (pass == ref.pass) return *trace;
    }
    traces_.emplace_back(ref.pass, std::make_unique<TraceView>(model_, *ref.pass->run, false));
    return *traces_.back().second;
  }

 private:
  const VocabProjector& projector_const(size_t r) const { return *proj_[r]; }

  const Model& model_;
  std::vector<StepRef>& refs_;
  std::vector<std::unique_ptr<VocabProjector>> proj_;
  std::vector<std::pair<const TeacherForcedPass*, std::unique_ptr<TraceView>>> traces_;
  std::vector<Distribution> attn_, ffn_;
  std::vector<double> attn_total_, ffn_total_;
  std::vector<float, DefaultInitAllocator<float>> weights_[2];  // [steps, weights_ld_]: attention, FFN contexts
  int64_t weights_ld_ = 0;
};

// log_prob_increase(d, g, s, w) for a row whose largest and smallest entries are known: the shift
// log_expectation takes, max_j s g_j, is s * gmax (s >= 0) or s * gmin, the same double (s * g is
// monotone in g), so this is the same number without the pass over the row that finds it.
double increase_from_row(const Distribution& d, const float* g, double gmin, double gmax, double s, int32_t w) {
  if (d.softcap > 0) return log_prob_increase(d, g, s, w);
  const double shift = s >= 0 ? s * gmax : s * gmin;
  const double sum = ops::exp_weighted_sum(d.q.data(), g, s, shift, static_cast<int64_t>(d.q.size()));
  const double f = sum >= 1e-200 ? shift + std::log(sum) : log_expectation(d, g, s);
  return log_prob_increase_from(d.logit_change(w, s * static_cast<double>(g[w])), f);
}

// Lower and upper bounds of psi(-b) and psi(b), psi(z) = (e^z - 1 - z) / z^2 (increasing), for
// b >= 0: the series 1/2 + z/6 + z^2/24 + ... where the closed form would cancel, else the closed
// form with a relative margin for its rounding (a few ulps of e^z - 1 against b^2 / 2).
double psi_neg_lower(double b) {
  if (b < 1e-3) return 0.5 - b / 6;  // alternating, decreasing terms
  return (std::expm1(-b) + b) / (b * b) * (1 - 1e-9);
}
double psi_pos_upper(double b) {
  if (b < 1e-3) return 0.5 + b / 6 + b * b / 12;  // the terms from z^2 on add at most b^2 / 12 for b < 1
  return (std::expm1(b) - b) / (b * b) * (1 + 1e-9);
}

// The sums that certify f = log sum_j q_j exp(s g_j) from a row's moments under q (Q = sum q,
// m1 = sum q g, a2 = sum q g^2), m1 and a2 each within `rel` of their terms' absolute sum (beyond
// the double rounding that moment_log_expectation always allows for); where known, the third
// moment's two sides p3 = sum_{g>0} q g^3 and n3 = sum_{g<0} q |g|^3, each within `rel3` of itself.
struct Moments {
  double Q = 0, m1 = 0, a2 = 0;
  double rel = 0;
  double p3 = std::numeric_limits<double>::quiet_NaN(), n3 = std::numeric_limits<double>::quiet_NaN();
  double rel3 = 0;
};

// chi(z) = (e^z - 1 - z - z^2/2) / z^3 = sum_k z^k / (k+3)! = int_0^1 (1-t)^2/2 e^{tz} dt, positive and
// increasing, chi(0) = 1/6: an upper bound of chi(b) and a lower bound of chi(-b), b >= 0. Below 1
// by the series (its terms after the 10th add less than 1e-9 of 1/6 at b = 1; the alternating one
// stops after a negative term, a lower bound since its terms decrease), with a relative margin for
// the double sums; above, the closed form, whose cancellation costs at most a few ulps of e^b there.
double chi_pos_upper(double b) {
  if (b < 1) {
    double term = 1.0 / 6, sum = 0;
    for (int k = 0; k <= 10; ++k) {
      sum += term;
      term *= b / (k + 4);
    }
    return (sum + 2 * term) * (1 + 1e-12);
  }
  return (std::expm1(b) - b - 0.5 * b * b) / (b * b * b) * (1 + 1e-9);
}
double chi_neg_lower(double b) {
  if (b < 1) {
    double term = 1.0 / 6, sum = 0;
    for (int k = 0; k <= 9; ++k) {  // k = 9: the last term added is negative
      sum += term;
      term *= -b / (k + 4);
    }
    return sum * (1 - 1e-12);
  }
  return (1 - b + 0.5 * b * b - std::exp(-b)) / (b * b * b) * (1 - 1e-9);
}

// The float products that give a chunk's moments (Tightening::directions): per block of 256 tokens a
// chain of 16 fused multiply-adds per lane and a 4-level tree, each term's weight and square rounded
// to float once: 22 roundings of 2^-24 of the terms' sizes, and the blocks added in double. A cube
// takes one rounding more.
constexpr double kProductRel = 22.0 / 16777216.0;
constexpr double kCubeRel = 23.0 / 16777216.0;


// f certified from the moments, without exponentials:
//   sum_j q_j e^{s g_j} = Q + s m1 + s^2 sum_j q_j g_j^2 psi(s g_j),  psi(s g_j) in [psi(-b), psi(b)],
// b = |s| max_j |g_j| (gabs). The interval is third order in s (psi(b) - psi(-b) ~ b / 3) where the
// step's bound was second order, so it is far narrower; with the third moment's sides, fourth order
// (below). Returns NaN when it cannot certify (the
// caller computes f exactly); `half_width` receives the interval's half-width in log units.
double moment_log_expectation(const Moments& m, double s, double gabs, double& half_width) {
  const double b = std::abs(s) * gabs;
  if (!(b < 50)) return std::numeric_limits<double>::quiet_NaN();
  const double base = m.Q + s * m.m1;
  const double hi_q = s * s * m.a2 * psi_pos_upper(b);
  // Each double sum of n terms is within n * 2^-53 of its terms' absolute sum: 1e-9 covers it (n up
  // to 1e6 with a 100x margin); m1 and a2 may carry `rel` more (float products). m1's terms add up to
  // sum_j q_j |g_j| <= sqrt(Q a2 (1 + rel)) (Cauchy-Schwarz), a2's are a2 itself.
  const double err = 1e-9 * (m.Q + std::abs(s) * std::sqrt(m.Q * m.a2) + hi_q) +
                     m.rel * (std::abs(s) * std::sqrt(m.Q * m.a2 * (1 + m.rel)) + hi_q) * (1 + 1e-9);
  double lower = base + s * s * m.a2 * psi_neg_lower(b) - err;
  double upper = base + hi_q + err;
  if (std::isfinite(m.p3) && std::isfinite(m.n3)) {
    // One order further: sum_j q_j e^{z_j} = Q + s m1 + s^2 a2 / 2 + sum_j q_j z_j^3 chi(z_j), z = s g.
    // Where z > 0, chi(z) lies in [1/6, chi(b)]; where z < 0, in [chi(-b), 1/6] and z^3 < 0. With
    // P = sum_{z>0} q z^3 and N = sum_{z<0} q |z|^3 the cubic part lies in [(P - N) / 6,
    // P chi(b) - N chi(-b)]: an interval fourth order in s (~ (P + N) b / 24), which holds as the
    // second-order one does, so the two are intersected.
    const double s3 = std::abs(s) * s * s;
    const double P = s3 * (s >= 0 ? m.p3 : m.n3), N = s3 * (s >= 0 ? m.n3 : m.p3);
    const double chi_hi = chi_pos_upper(b), chi_lo = chi_neg_lower(b);
    const double base3 = base + 0.5 * s * s * m.a2;
    const double err3 = 1e-9 * (m.Q + std::abs(s) * std::sqrt(m.Q * m.a2) + s * s * m.a2 + P + N) +
                        m.rel * (std::abs(s) * std::sqrt(m.Q * m.a2 * (1 + m.rel)) + 0.5 * s * s * m.a2) * (1 + 1e-9) +
                        m.rel3 * (P + N) * chi_hi * (1 + 1e-9);
    lower = std::max(lower, base3 + (P - N) / 6 - err3);
    upper = std::min(upper, base3 + P * chi_hi - N * chi_lo + err3);
  }
  if (!(lower > 0) || !std::isfinite(upper) || !(upper >= lower)) return std::numeric_limits<double>::quiet_NaN();
  const double width = std::log1p((upper - lower) / lower);
  half_width = 0.5 * width;
  return std::log(lower) + half_width;
}

// One row under one distribution.
struct MomentTask {
  const float* g;   // [n] the row
  double Q;         // sum q (weights_total)
  Moments sums;
  size_t ref = 0;   // the step (its weights: LayerContexts::weights)
};

// A row over the vocabulary and its extremes (the shift of an exact evaluation, b of the moments).
struct Row {
  const float* g = nullptr;  // [d_vocab]
  double gmin = 0, gmax = 0;
};

void find_extremes(std::vector<Row>& rows, int64_t V, int threads) {
  parallel_for(threads, static_cast<int64_t>(rows.size()), [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) {
      Row& r = rows[static_cast<size_t>(i)];
      float lo = 0, hi = 0;
      ops::min_max(r.g, V, lo, hi);
      r.gmin = static_cast<double>(lo);
      r.gmax = static_cast<double>(hi);
    }
  });
}

// The budget of one call: the jobs of round 1 (selected from all sums at once), evaluated layer by
// layer and, within a layer, by groups of components that read the same rows (a chunk of weight
// directions; one head's combinations). After a group's certified scores narrow its steps' widths,
// its components are selected again at once (round 2: the widest steps, exactly), while the rows
// are still in memory.
class Tightening {
 public:
  Tightening(const Model& model, std::vector<StepRef>& refs, const std::vector<SumTerms>& sums, double tol,
             SharedProjections* shared)
      : model_(model), c_(model.config()), refs_(refs), sums_(sums), tol_(tol), shared_(shared), ctx_(model, refs) {}

  std::vector<Job> sketched, certified, exact;  // round 0's, round 1's and round 2's scores

  LayerContexts& contexts() { return ctx_; }

  // Round 1: the widest steps of every sum that needs it; round 2 marks are made per group.
  // `query_marks`: per ref and level, the entries the query analyses read (made exact in round 2).
  void run(int64_t* sums_needed, std::vector<std::vector<char>> query_marks[kLevels]) {
    query_marks_ = query_marks;
    for (const SumTerms& st : sums_) sums_needed[st.level] += select_steps(st, refs_, tol_, 0, st.sum->size());
    std::vector<Job> round1;  // (the marks cleared: from here on, round 2's)
    for (int lv = 0; lv < kLevels; ++lv) {
      const std::vector<Job> marked = take_marks(lv, 0, std::numeric_limits<int64_t>::max());
      round1.insert(round1.end(), marked.begin(), marked.end());
    }
    const int64_t L = c_.n_layers;
    std::vector<std::vector<Job>> by_layer(static_cast<size_t>(L));
    for (const Job& j : round1) by_layer[static_cast<size_t>(layer_of(scores(j), j.index))].push_back(j);
    for (int64_t l = 0; l < L; ++l) layer(l, by_layer[static_cast<size_t>(l)]);
  }

 private:
  // The entries of `level` marked in [begin, end) of every step's array, as jobs in step order;
  // their marks are cleared.
  std::vector<Job> take_marks(int level, int64_t begin, int64_t end) {
    std::vector<Job> out;
    for (size_t r = 0; r < refs_.size(); ++r) {
      std::vector<char>& m = refs_[r].marked[level];
      for (int64_t i = begin; i < std::min(end, static_cast<int64_t>(m.size())); ++i) {
        if (!m[static_cast<size_t>(i)]) continue;
        out.push_back({r, level, i, 0.0, 0.0});
        m[static_cast<size_t>(i)] = 0;
      }
    }
    return out;
  }

  const ScoreArray& scores(const Job& j) const { return refs_[j.ref].step->explanation.*kScoreOf[j.level]; }
  const ScoreArray& scores(size_t r, int level) const { return refs_[r].step->explanation.*kScoreOf[level]; }
  int threads() const { return ctx_.threads(); }

  // The weight direction of an FFN or attention-neuron entry: k, or h*d_head+n of [L, H, d_head, n].
  int64_t direction(size_t r, int level, int64_t index) const {
    if (level == kFfn) return index % c_.d_mlp;
    return (index / scores(r, level).shape.back()) % (c_.n_heads * c_.d_head);
  }
  // The head of a head or head x position entry ([L, H] or [L, H, n]).
  int64_t head(size_t r, int level, int64_t index) const {
    if (level == kHead) return index % c_.n_heads;
    return (index / scores(r, level).shape.back()) % c_.n_heads;
  }

  void layer(int64_t l, std::vector<Job>& jobs) {
    std::vector<Job> per_level[kLevels];
    for (const Job& j : jobs) per_level[j.level].push_back(j);
    // Directions the query analyses need exactly, though no sum selected them in round 1.
    std::vector<int64_t> query_dirs[2];
    for (const int lv : {static_cast<int>(kFfn), static_cast<int>(kAttnNeuron)}) {
      for (size_t r = 0; r < refs_.size(); ++r) {
        const std::vector<char>& q = query_marks_[lv][r];
        for (size_t i = 0; i < q.size(); ++i) {
          if (q[i] && layer_of(scores(r, lv), static_cast<int64_t>(i)) == l) {
            query_dirs[lv].push_back(direction(r, lv, static_cast<int64_t>(i)));
          }
        }
      }
    }
    const bool need_ffn = !per_level[kFfn].empty() || !query_dirs[kFfn].empty();
    const bool need_attn = !per_level[kAttnNeuron].empty() || !query_dirs[kAttnNeuron].empty() ||
                           !per_level[kHead].empty() || !per_level[kHeadPosition].empty();
    if (!need_ffn && !need_attn) return;
    // Every step's context: round 2 may pick a step that round 1 did not.
    ctx_.prepare(l, std::vector<char>(refs_.size(), need_attn ? 1 : 0), std::vector<char>(refs_.size(), need_ffn ? 1 : 0));
    if (!per_level[kFfn].empty()) per_level[kFfn] = sketch_round(l, per_level[kFfn]);
    directions(l, kFfn, per_level[kFfn], query_dirs[kFfn]);
    directions(l, kAttnNeuron, per_level[kAttnNeuron], query_dirs[kAttnNeuron]);
    std::vector<Job> combos = std::move(per_level[kHead]);
    combos.insert(combos.end(), per_level[kHeadPosition].begin(), per_level[kHeadPosition].end());
    heads(l, combos);
  }

  // Round 0 for layer l's FFN jobs: each job's step score certified again by the int8 sketch
  // (analysis/projection_sketch.h), whose integer products a direction shares across the steps
  // (SharedProjections: the steps' own sketches, or the first job's here) and whose interval knows
  // the tail's second moment to a few per cent, where the steps' cheap bound had only an upper bound
  // of it. Where that is narrower, it replaces the step's width and score. The layer's FFN sums are
  // then selected again: a direction goes on to its exact row (rounds 1 and 2) only if its widths
  // still add up to more than bound_tol, which on random GPT-2 weights leaves mostly the directions
  // with sketched steps (their widths already the sketch's). Returns the jobs selected again.
  std::vector<Job> sketch_round(int64_t l, const std::vector<Job>& selected) {
    const ExplainOptions& o = refs_.front().step->options;
    if (!o.projection_sketch || !projection_sketch_available() || c_.final_softcap > 0) return selected;
    const std::vector<Job> jobs = sketch_round_jobs(l, selected);
    if (jobs.empty()) return selected;
    sketch_certify(l, jobs);
    // The layer's FFN sums selected again with the narrowed widths (round 1's marks, cleared after).
    const int64_t N = c_.d_mlp;
    for (const SumTerms& st : sums_) {
      if (st.level == kFfn) select_steps(st, refs_, tol_, l * N, (l + 1) * N);
    }
    return take_marks(kFfn, l * N, (l + 1) * N);
  }

  // Round 0's jobs: every bounded step of each FFN sum of layer l that needs tightening, not only its
  // widest (`selected`'s directions): the steps left out would otherwise keep their cheap-bound
  // widths, which alone often add up to more than bound_tol once the widest are narrowed. (A sum
  // within bound_tol keeps its steps' scores.)
  std::vector<Job> sketch_round_jobs(int64_t l, const std::vector<Job>& selected) const {
    const int64_t N = c_.d_mlp;
    std::vector<char> chosen(static_cast<size_t>(N), 0);
    for (const Job& j : selected) chosen[static_cast<size_t>(direction(j.ref, kFfn, j.index))] = 1;
    return bounded_steps_of_wide_sums(kFfn, l, [&](int64_t i, int64_t) { return chosen[static_cast<size_t>(i % N)] != 0; });
  }

  // For every summed entry i of `level` in layer l that chosen(i, n_sum) names (n_sum: the summed
  // array's last axis) and whose steps' widths add up to more than tol, every step with a bounded
  // score there, as jobs in step order, then entry order (round 0 certifies them all).
  template <class Chosen>
  std::vector<Job> bounded_steps_of_wide_sums(int level, int64_t l, const Chosen& chosen) const {
    std::vector<std::vector<char>> take(refs_.size());  // [ref][entry of its array]
    for (const SumTerms& st : sums_) {
      if (st.level != level || st.sum->values.empty()) continue;
      const int64_t n_sum = st.sum->shape.back(), per_layer = st.sum->size() / c_.n_layers;
      // A term's entry for summed entry i (-1: none) and its width there.
      const auto entry = [&](size_t r, int64_t i) {
        const ScoreArray& w = refs_[r].widths->*kWidthOf[level];
        return w.values.empty() ? int64_t{-1} : step_index(i, n_sum, w.shape.back());
      };
      const auto width = [&](size_t r, int64_t j) { return (refs_[r].widths->*kWidthOf[level]).values[static_cast<size_t>(j)]; };
      for (int64_t i = l * per_layer; i < (l + 1) * per_layer; ++i) {
        if (!chosen(i, n_sum)) continue;
        double total = 0;
        for (const auto& term : st.terms) {
          if (const int64_t j = entry(term.first, i); j >= 0) total += width(term.first, j);
        }
        if (!(total > tol_)) continue;
        for (const auto& term : st.terms) {
          const int64_t j = entry(term.first, i);
          if (j < 0 || !(width(term.first, j) > 0)) continue;
          std::vector<char>& t = take[term.first];
          if (t.empty()) t.assign((refs_[term.first].widths->*kWidthOf[level]).values.size(), 0);
          t[static_cast<size_t>(j)] = 1;
        }
      }
    }
    std::vector<Job> jobs;
    for (size_t r = 0; r < refs_.size(); ++r) {
      for (size_t j = 0; j < take[r].size(); ++j) {
        if (take[r][j]) jobs.push_back({r, level, static_cast<int64_t>(j), 0.0, 0.0});
      }
    }
    return jobs;
  }

  // Round 0's certificates of layer l's FFN `jobs` from the int8 sketch; where one is narrower than
  // the step's width it replaces it (and joins `sketched`).
  void sketch_certify(int64_t l, const std::vector<Job>& jobs) {
    const int64_t N = c_.d_mlp;
    const std::shared_ptr<const ModelBounds> mb = model_bounds(model_, threads());
    // The layer's prepared directions y0_k = gamma_f * c(fc2_k): [d_mlp, d].
    prepared_.resize(static_cast<size_t>(N * c_.d_model));  // (kept between layers: its pages faulted in once)
    prepared_columns_into(model_, model_.weights().layers[static_cast<size_t>(l)].W_out, 0, N, prepared_.data(), threads());
    const float* const Y = prepared_.data();
    std::vector<SketchTask> tasks(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Job& j = jobs[i];
      const Explanation& ex = refs_[j.ref].step->explanation;
      // As the steps' sketch scales: s = coefficient / sigma on the unscaled direction.
      tasks[i] = {j.ref, direction(j.ref, kFfn, j.index), ex.ffn_coef.values[static_cast<size_t>(j.index)] * (1.0 / ex.frozen_scale)};
    }
    // The steps' products of a direction are read, not made again: the same integers, and without
    // the forms' screening (GPT-2 shapes) the same forms, so the same bits either way. (Where the
    // forms are screened, a step's published forms could differ in kind from this call's, and the
    // values would depend on which directions the steps' budget held: not read there.)
    const SketchVectors vectors{Y, [l](int64_t k) { return std::make_pair(l, k); },
                                [&mb, l](int64_t k) { return mb->ffn_forms_of(l, k); }, true};
    keep_sketched(jobs, tasks, sketch_values(l, vectors, true, tasks));
  }

  // A score for the sketch: step `ref`'s delta_j = s * (u_j . y0) for vector `vec` of the call.
  struct SketchTask {
    size_t ref = 0;
    int64_t vec = 0;
    double s = 0;
  };
  // The vectors of a sketch call: y0 [n, d] (unscaled, prepared: gamma_f * c(v)); the key under
  // which each one's integer products are kept for the call's other tasks (SharedProjections' FFN
  // slots, distinct per vector); its forms where the model's bounds hold them (or nullptr); and
  // whether products the steps published under the same keys may be read instead of made.
  struct SketchVectors {
    const float* y0 = nullptr;
    std::function<std::pair<int64_t, int64_t>(int64_t)> key;
    std::function<const double*(int64_t)> forms;
    bool steps_products = false;
  };
  // A task's certificate: f = log sum_j q_j exp(delta_j) and its half-width (NaN: none), and the
  // target's unscaled projection u_w . y0 (its logit change is s times that).
  struct SketchResult {
    double f = std::numeric_limits<double>::quiet_NaN(), half_width = std::numeric_limits<double>::quiet_NaN(), at_target = 0;
  };

  // Each task certified by the int8 sketch in its step's FFN context (`ffn_context`) or attention
  // context of layer l. A vector's integer products are made once, by its first task, and read by the rest.
  std::vector<SketchResult> sketch_values(int64_t l, const SketchVectors& vs, bool ffn_context, const std::vector<SketchTask>& tasks) {
    const int64_t d = c_.d_model;
    std::vector<SketchResult> out(tasks.size());
    if (tasks.empty()) return out;
    const std::shared_ptr<const ProjectionSketch> sk = projection_sketch(model_, threads());
    const std::shared_ptr<const ModelBounds> mb = model_bounds(model_, threads());
    // Each step's context of layer l split into head and tail: the split the step's own explain made
    // of it (ScoreWidths::tails, its target and foil in the head), rebuilt without another pass over
    // W_U; where a step kept none of 64 tokens or more (or of another distribution: it never is),
    // one made here (no tokens forced into the head: the target's projection is taken directly below).
    std::vector<size_t> step_refs;
    std::vector<int64_t> split_of(refs_.size(), -1);
    for (const SketchTask& t : tasks) {
      if (split_of[t.ref] < 0) split_of[t.ref] = static_cast<int64_t>(step_refs.size()), step_refs.push_back(t.ref);
    }
    std::vector<TailSplit> tails(step_refs.size());
    std::vector<char> rebuilt(step_refs.size(), 0);
    const auto point = static_cast<size_t>(2 * l + (ffn_context ? 1 : 0));  // ExplainContext::points
    parallel_for(threads(), static_cast<int64_t>(step_refs.size()), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const size_t r = step_refs[static_cast<size_t>(i)];
        const std::vector<KeptSplit>& kept = refs_[r].widths->tails;
        rebuilt[static_cast<size_t>(i)] = point < kept.size() && kept[point].ids.size() >= 64 &&
                                          split_from_kept(model_, kept[point], ffn_context ? ctx_.ffn(r) : ctx_.attn(r),
                                                          tails[static_cast<size_t>(i)]);
      }
    });
    std::vector<const Distribution*> dists;
    for (size_t i = 0; i < step_refs.size(); ++i) {
      if (!rebuilt[i]) dists.push_back(ffn_context ? &ctx_.ffn(step_refs[i]) : &ctx_.attn(step_refs[i]));
    }
    g_splits_rebuilt.fetch_add(static_cast<int64_t>(step_refs.size() - dists.size()));
    g_splits_made.fetch_add(static_cast<int64_t>(dists.size()));
    if (!dists.empty()) {
      std::vector<TailSplit> made = split_tails(model_, *mb, dists, 64, {}, threads());
      for (size_t i = 0, k = 0; i < step_refs.size(); ++i) {
        if (!rebuilt[i]) tails[i] = std::move(made[k++]);
      }
    }
    // The vectors the tasks read (ascending), gathered: [n_used, d] and transposed [d, n_used].
    std::vector<int64_t> used;
    for (const SketchTask& t : tasks) used.push_back(t.vec);
    std::sort(used.begin(), used.end());
    used.erase(std::unique(used.begin(), used.end()), used.end());
    const auto nv = static_cast<int64_t>(used.size());
    auto column_of = [&](int64_t vec) { return std::lower_bound(used.begin(), used.end(), vec) - used.begin(); };
    std::vector<float, DefaultInitAllocator<float>> Yu(static_cast<size_t>(nv * d)), Yt(static_cast<size_t>(d * nv));
    // 16 vectors at a time, so that each of Yt's rows gets a cache line's 16 values in one go.
    parallel_for(threads(), (nv + 15) / 16, [&](int64_t b0, int64_t b1) {
      for (int64_t k0 = b0 * 16; k0 < std::min(nv, b1 * 16); k0 += 16) {
        const int64_t k1 = std::min(nv, k0 + 16);
        for (int64_t k = k0; k < k1; ++k) {
          const float* y = vs.y0 + used[static_cast<size_t>(k)] * d;
          std::copy(y, y + d, Yu.begin() + k * d);
        }
        for (int64_t r = 0; r < d; ++r) {
          for (int64_t k = k0; k < k1; ++k) Yt[static_cast<size_t>(r * nv + k)] = Yu[static_cast<size_t>(k * d + r)];
        }
      }
    });
    // Per step: the target's unscaled projection u_w . y0 and the tail mean's term mu_T . y0 of every
    // vector, in double (k ascending per element, so an element's bits depend only on its row and
    // column): [2 * steps, n_used].
    const auto n_steps = static_cast<int64_t>(step_refs.size());
    std::vector<double> U(static_cast<size_t>(2 * n_steps * d));  // [2 * steps, d]: the targets' rows, then the tail means
    std::vector<float> urow;  // [d] a decoded row of an encoded W_U
    for (int64_t i = 0; i < n_steps; ++i) {
      const float* u = row_floats(model_.weights().W_U, refs_[step_refs[static_cast<size_t>(i)]].step->explanation.target, urow);
      for (int64_t r = 0; r < d; ++r) {
        U[static_cast<size_t>(i * d + r)] = static_cast<double>(u[r]);
        U[static_cast<size_t>((n_steps + i) * d + r)] = tails[static_cast<size_t>(i)].mu[static_cast<size_t>(r)];
      }
    }
    std::vector<double> UY(static_cast<size_t>(2 * n_steps * nv), 0.0);  // [2 * steps, n_used]
    parallel_for(threads(), (nv + 63) / 64, [&](int64_t b0, int64_t b1) {
      const int64_t c0 = b0 * 64, c1 = std::min(nv, b1 * 64);
      ops::matmul_nn_accumulate_small(2 * n_steps, c1 - c0, d, U.data(), d, Yt.data() + c0, nv, UY.data() + c0, nv);
    });
    // Every vector's projections on each split's head tokens, a float GEMM (as the steps' own head
    // projections are float sums). The steps' head tokens overlap (their contexts share the prompt),
    // so it runs once over their union: [n_used, |union|], column col_of[i][h] for split i's head
    // token h (an element's value depends only on its two rows, ops/gemm.h: the same bits as one GEMM
    // per step).
    std::vector<int32_t> union_ids;
    for (const TailSplit& t : tails) union_ids.insert(union_ids.end(), t.ids.begin(), t.ids.end());
    std::sort(union_ids.begin(), union_ids.end());
    union_ids.erase(std::unique(union_ids.begin(), union_ids.end()), union_ids.end());
    const auto nu = static_cast<int64_t>(union_ids.size());
    std::vector<float, DefaultInitAllocator<float>> union_rows(static_cast<size_t>(nu * d));  // [|union|, d] their W_U rows (each written)
    std::vector<std::vector<int64_t>> col_of(tails.size());
    for (size_t i = 0; i < tails.size(); ++i) {
      for (size_t h = 0; h < tails[i].ids.size(); ++h) {
        const auto c = std::lower_bound(union_ids.begin(), union_ids.end(), tails[i].ids[h]) - union_ids.begin();
        col_of[i].push_back(c);
        std::copy(tails[i].head_rows.begin() + static_cast<std::ptrdiff_t>(h) * d,
                  tails[i].head_rows.begin() + static_cast<std::ptrdiff_t>(h + 1) * d, union_rows.begin() + c * d);
      }
    }
    std::vector<float, DefaultInitAllocator<float>> heads(static_cast<size_t>(nv * nu));  // [n_used, |union|]
    if (nu > 0) ops::matmul_nt(nv, nu, d, Yu.data(), d, union_rows.data(), d, heads.data(), nu, threads());
    // By chunks of vectors: the first task of each vector makes its integer products and forms (kept
    // in a SharedProjections of the chunk's own), its other tasks read them. A generous tol: every
    // certifiable interval comes back with its width; the caller keeps the narrower ones.
    std::vector<size_t> order(tasks.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tasks[a].vec < tasks[b].vec; });
    constexpr int64_t kChunkVectors = 384;
    const int64_t entry_bytes = sk->codes.n_pad * static_cast<int64_t>(sizeof(int32_t));
    size_t nh_max = 0;
    for (const TailSplit& t : tails) nh_max = std::max(nh_max, t.ids.size());
    std::vector<double, DefaultInitAllocator<double>> hd;  // [chunk tasks, nh_max] the chunk's head deltas (a task's first |H| read)
    for (size_t c0 = 0; c0 < order.size();) {
      std::vector<size_t> first, rest;
      size_t c1 = c0;
      for (int64_t n_vecs = 0; c1 < order.size(); ++c1) {
        const bool new_vec = c1 == c0 || tasks[order[c1]].vec != tasks[order[c1 - 1]].vec;
        if (new_vec && n_vecs == kChunkVectors) break;
        if (new_vec) ++n_vecs;
        (new_vec ? first : rest).push_back(order[c1]);
      }
      hd.resize((c1 - c0) * nh_max);
      // Each vector's first task (it makes the products), then the rest; x-th of the chunk in that order.
      std::vector<SketchJob> head_jobs(first.size()), tail_jobs(rest.size());
      parallel_for(threads(), static_cast<int64_t>(c1 - c0), [&](int64_t a, int64_t b) {
        for (int64_t x = a; x < b; ++x) {
          const auto xi = static_cast<size_t>(x);
          const bool is_first = xi < first.size();
          const SketchTask& task = tasks[is_first ? first[xi] : rest[xi - first.size()]];
          const auto si = static_cast<size_t>(split_of[task.ref]);
          const TailSplit& t = tails[si];
          const auto col = column_of(task.vec);
          double* delta = hd.data() + static_cast<size_t>(x) * nh_max;
          const float* g = heads.data() + col * nu;
          for (size_t h = 0; h < t.ids.size(); ++h) delta[h] = task.s * static_cast<double>(g[col_of[si][h]]);
          const double lin = UY[static_cast<size_t>((n_steps + static_cast<int64_t>(si)) * nv + col)];
          const auto [key_l, key_k] = vs.key(task.vec);
          (is_first ? head_jobs[xi] : tail_jobs[xi - first.size()]) =
              SketchJob{&t, vs.y0 + task.vec * d, task.s, delta, task.s * lin, key_l, key_k, vs.forms(task.vec)};
        }
      });
      SharedProjections chunk(c_, static_cast<int64_t>(first.size()) * entry_bytes);
      if (vs.steps_products && shared_ != nullptr && !sk->screen_forms) chunk.read_sketches_from(shared_);
      // The products go to pages the previous chunks faulted in already (sketch_arena_).
      const auto arena_size = static_cast<int64_t>(first.size()) * sk->codes.n_pad;
      if (static_cast<int64_t>(sketch_arena_.size()) < arena_size) sketch_arena_.resize(static_cast<size_t>(arena_size));
      chunk.use_arena(sketch_arena_.data(), arena_size);
      std::vector<double> w1, w2;
      // The rest read the first's products, their tail sums one float product per block of tokens.
      const std::vector<double> v1 = sketched_log_expectations(*sk, head_jobs, 1.0, threads(), &w1, &chunk, nullptr);
      const std::vector<double> v2 = sketched_log_expectations_shared(*sk, tail_jobs, 1.0, threads(), w2, chunk);
      for (size_t b = 0; b < first.size(); ++b) out[first[b]].f = v1[b], out[first[b]].half_width = w1[b];
      for (size_t b = 0; b < rest.size(); ++b) out[rest[b]].f = v2[b], out[rest[b]].half_width = w2[b];
      c0 = c1;
    }
    for (size_t i = 0; i < tasks.size(); ++i) {
      out[i].at_target = UY[static_cast<size_t>(split_of[tasks[i].ref] * nv + column_of(tasks[i].vec))];
    }
    return out;
  }

  // Where a job's sketched certificate is narrower than its step's width, it replaces it (and joins
  // `sketched`).
  void keep_sketched(const std::vector<Job>& jobs, const std::vector<SketchTask>& tasks, const std::vector<SketchResult>& res) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      const SketchResult& r = res[i];
      if (std::isnan(r.f)) continue;
      const Job& j = jobs[i];
      double& width = (refs_[j.ref].widths->*kWidthOf[j.level]).values[static_cast<size_t>(j.index)];
      if (!(r.half_width < width)) continue;
      width = r.half_width;
      sketched.push_back({j.ref, j.level, j.index, log_prob_increase_from(tasks[i].s * r.at_target, r.f), r.half_width});
    }
  }

  // The entries of an array of `level` (its last axis n_last: source positions, or the level's own)
  // that read direction `dir` of layer l (head `dir` for the head levels): a range, the same in a
  // summed array and in a step's.
  std::pair<int64_t, int64_t> entries(int level, int64_t l, int64_t dir, int64_t n_last) const {
    const int64_t H = c_.n_heads;
    switch (level) {
      case kFfn: return {l * c_.d_mlp + dir, l * c_.d_mlp + dir + 1};
      case kAttnNeuron: return {(l * H * c_.d_head + dir) * n_last, (l * H * c_.d_head + dir + 1) * n_last};
      case kHead: return {l * H + dir, l * H + dir + 1};
      default: return {(l * H + dir) * n_last, (l * H + dir + 1) * n_last};
    }
  }

  // Round 2 for the components of `levels` that read `dir` (of layer l): selection from the
  // narrowed widths, then the query marks; returns the marked entries as jobs.
  std::vector<Job> select_again(int64_t l, std::initializer_list<int> levels, int64_t dir) {
    for (const SumTerms& st : sums_) {
      if (std::find(levels.begin(), levels.end(), st.level) == levels.end()) continue;
      const auto [b, e] = entries(st.level, l, dir, st.sum->shape.back());
      select_steps(st, refs_, tol_, b, e);
    }
    std::vector<Job> out;
    for (size_t r = 0; r < refs_.size(); ++r) {
      for (const int lv : levels) {
        std::vector<char>& m = refs_[r].marked[lv];
        if (m.empty()) continue;
        const auto [b, e] = entries(lv, l, dir, scores(r, lv).shape.back());
        const std::vector<char>* q = lv == kFfn || lv == kAttnNeuron ? &query_marks_[lv][r] : nullptr;
        const std::vector<double>& w = (refs_[r].widths->*kWidthOf[lv]).values;
        for (int64_t i = b; i < e; ++i) {
          // A query input whose score is still bounded (a certified or exact one has width 0).
          if (q != nullptr && !q->empty() && (*q)[static_cast<size_t>(i)] && w[static_cast<size_t>(i)] > 0) m[static_cast<size_t>(i)] = 1;
          if (m[static_cast<size_t>(i)]) out.push_back({r, lv, i, 0.0, 0.0});
        }
      }
    }
    return out;
  }

  // FFN neurons (W_out's columns) or attention neurons (W_O's columns) of layer l: by chunks of
  // directions, each direction's unscaled projection g0 once (from `shared` when an explain kept
  // it), shared by every step that scores it with its own coefficient / sigma.
  void directions(int64_t l, int level, std::vector<Job>& jobs, std::vector<int64_t>& extra_dirs) {
    if (jobs.empty() && extra_dirs.empty()) return;
    const int64_t d = c_.d_model, V = c_.d_vocab;
    const bool ffn = level == kFfn;
    std::stable_sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
      return direction(a.ref, level, a.index) < direction(b.ref, level, b.index);
    });
    std::vector<int64_t> dirs = extra_dirs;
    for (const Job& j : jobs) dirs.push_back(direction(j.ref, level, j.index));
    std::sort(dirs.begin(), dirs.end());
    dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
    // [d_model, d_mlp] or [d_model, H*d_head] as stored: only the columns projected below are read.
    const MatrixView& W = ffn ? model_.weights().layers[static_cast<size_t>(l)].W_out : model_.weights().layers[static_cast<size_t>(l)].W_O;
    constexpr size_t kChunk = 128;
    // ys starts on a cache line (a pooled allocation), so the ~50 products over W_U's blocks that
    // read it need no aligned copy of their own (ops/gemm.cpp).
    std::vector<float> stage(kChunk * static_cast<size_t>(d));                          // [chunk, d] W's columns
    std::vector<float, DefaultInitAllocator<float>> ys(kChunk * static_cast<size_t>(d));  // [chunk, d]
    // [chunk, d_vocab] the projected rows: kept between calls (rows_), whose pages are then faulted
    // in once; every row is written before it is read.
    rows_.resize(kChunk * static_cast<size_t>(V));
    float* const G = rows_.data();
    size_t next_job = 0;
    for (size_t c0 = 0; c0 < dirs.size(); c0 += kChunk) {
      const size_t c1 = std::min(dirs.size(), c0 + kChunk);
      std::vector<Row> rows(c1 - c0);
      std::vector<size_t> to_project;
      for (size_t i = c0; i < c1; ++i) {
        if (shared_ != nullptr) rows[i - c0].g = ffn ? shared_->ffn(l, dirs[i]) : shared_->attn(l, dirs[i]);
        if (rows[i - c0].g == nullptr) to_project.push_back(i - c0);
      }
      // The rows to project, prepared (gamma * c(w)); their products come block by block below into G.
      std::vector<char> projected(rows.size(), 0);
      const VocabProjector& projector = ctx_.projector(0);
      std::vector<int64_t> cols(to_project.size());
      for (size_t i = 0; i < to_project.size(); ++i) cols[i] = dirs[c0 + to_project[i]];
      read_columns(W, cols, stage.data(), threads());  // an encoded W decodes only their blocks
      for (size_t i = 0; i < to_project.size(); ++i) {
        projector.prepare_unscaled(stage.data() + i * static_cast<size_t>(d), ys.data() + i * static_cast<size_t>(d));
        rows[to_project[i]].g = G + i * static_cast<size_t>(V);
        projected[to_project[i]] = 1;
      }
      // The shared rows are whole already: their extremes now (the projected ones' come per block).
      std::vector<Row> whole;
      for (size_t i = 0; i < rows.size(); ++i) {
        if (!projected[i]) whole.push_back(rows[i]);
      }
      find_extremes(whole, V, threads());
      for (size_t i = 0, w = 0; i < rows.size(); ++i) {
        if (!projected[i]) rows[i] = whole[w++];
      }
      // Round 1's sums with the projection streamed: W_U's rows block by block, and each block of the
      // chunk's rows (their squares, and their cubes' two sides) multiplied by every step's weights
      // while it is in cache (the whole rows stay for round 2). A product per (step, row) pair rather
      // than per job: computing pairs no job needs costs less than a loop per job (float GEMMs against
      // one double loop).
      auto stream = [&](std::vector<MomentTask>& tasks) {
        constexpr int64_t kVBlock = 1024, kKBlock = 256;  // kKBlock: kProductRel's block
        const auto n_proj = static_cast<int64_t>(to_project.size()), N = static_cast<int64_t>(rows.size());
        // A: every step's weights in this level's context (LayerContexts::weights); each task's row in
        // the chunk.
        const float* Q = ctx_.weights(ffn);
        const int64_t ldq = ctx_.weights_ld(), R = static_cast<int64_t>(refs_.size());
        std::vector<size_t> row_in(tasks.size());
        for (size_t t = 0; t < tasks.size(); ++t) {
          while (rows[row_in[t]].g != tasks[t].g) ++row_in[t];
        }
        // [R, 4N] sum q g, sum q g^2, sum_{g>0} q g^3, sum_{g<0} q |g|^3
        std::vector<double> sums(static_cast<size_t>(R * 4 * N), 0.0);
        std::vector<float> lo(to_project.size(), std::numeric_limits<float>::infinity());
        std::vector<float> hi(to_project.size(), -std::numeric_limits<float>::infinity());
        for (int64_t v0 = 0; v0 < V; v0 += kVBlock) {
          const int64_t v1 = std::min(V, v0 + kVBlock), len = v1 - v0;
          if (n_proj > 0) projector.project_prepared_block(ys.data(), n_proj, v0, v1, G + v0, V);
          // Each thread takes rows [a, b): their block, squares and cubes' sides [4m, len] against the
          // weights [R, len], one product; a pair's value depends only on its two rows.
          parallel_for(threads(), N, [&](int64_t a, int64_t b) {
            const int64_t m = b - a;
            std::vector<float, DefaultInitAllocator<float>> B(static_cast<size_t>(4 * m * len));
            std::vector<float> C(static_cast<size_t>(R * 4 * m));  // [R, 4m]
            for (int64_t i = 0; i < m; ++i) {
              const float* g = rows[static_cast<size_t>(a + i)].g + v0;
              float* b1 = B.data() + i * len;
              float* b2 = B.data() + (m + i) * len;
              float* b3 = B.data() + (2 * m + i) * len;
              float* b4 = B.data() + (3 * m + i) * len;
              for (int64_t j = 0; j < len; ++j) {
                const float x = g[j], x2 = x * x, x3 = x2 * x;
                b1[j] = x, b2[j] = x2, b3[j] = x > 0 ? x3 : 0.0f, b4[j] = x < 0 ? -x3 : 0.0f;
              }
            }
            for (int64_t k0 = 0; k0 < len; k0 += kKBlock) {
              ops::matmul_nt(R, 4 * m, std::min(kKBlock, len - k0), Q + v0 + k0, ldq, B.data() + k0, len, C.data(), 4 * m, 1);
              for (int64_t r = 0; r < R; ++r) {
                for (int64_t part = 0; part < 4; ++part) {
                  for (int64_t i = 0; i < m; ++i) {
                    sums[static_cast<size_t>(r * 4 * N + part * N + a + i)] += static_cast<double>(C[static_cast<size_t>(r * 4 * m + part * m + i)]);
                  }
                }
              }
            }
          });
          parallel_for(threads(), n_proj, [&](int64_t a, int64_t b) {
            for (int64_t k = a; k < b; ++k) {
              float mn = 0, mx = 0;
              ops::min_max(G + k * V + v0, len, mn, mx);
              lo[static_cast<size_t>(k)] = std::min(lo[static_cast<size_t>(k)], mn);
              hi[static_cast<size_t>(k)] = std::max(hi[static_cast<size_t>(k)], mx);
            }
          });
        }
        for (size_t k = 0; k < to_project.size(); ++k) {
          rows[to_project[k]].gmin = static_cast<double>(lo[k]);
          rows[to_project[k]].gmax = static_cast<double>(hi[k]);
        }
        for (size_t t = 0; t < tasks.size(); ++t) {
          const size_t at = tasks[t].ref * static_cast<size_t>(4 * N) + row_in[t];
          const auto n = static_cast<size_t>(N);
          tasks[t].sums = Moments{tasks[t].Q, sums[at], sums[at + n], kProductRel, sums[at + 2 * n], sums[at + 3 * n], kCubeRel};
        }
      };
      auto row_of = [&](const Job& j) -> const Row& {
        const int64_t dir = direction(j.ref, level, j.index);
        return rows[static_cast<size_t>(std::lower_bound(dirs.begin() + static_cast<std::ptrdiff_t>(c0), dirs.begin() + static_cast<std::ptrdiff_t>(c1), dir) -
                                        (dirs.begin() + static_cast<std::ptrdiff_t>(c0)))];
      };
      auto coef_of = [&](const Job& j) {
        const Explanation& ex = refs_[j.ref].step->explanation;
        // As the exact pass scales: s * (1 / sigma).
        return (ffn ? ex.ffn_coef : ex.attn_coef).values[static_cast<size_t>(j.index)] * (1.0 / ex.frozen_scale);
      };
      // Round 1 of this chunk's jobs (they are sorted by direction).
      size_t end_job = next_job;
      while (end_job < jobs.size() && direction(jobs[end_job].ref, level, jobs[end_job].index) < (c1 < dirs.size() ? dirs[c1] : std::numeric_limits<int64_t>::max())) ++end_job;
      std::vector<Job> chunk(jobs.begin() + static_cast<std::ptrdiff_t>(next_job), jobs.begin() + static_cast<std::ptrdiff_t>(end_job));
      next_job = end_job;
      certify(chunk, level, row_of, coef_of, stream);
      // Round 2 for the chunk's components, with its rows still here.
      std::vector<Job> again;
      for (size_t i = c0; i < c1; ++i) {
        std::vector<Job> more = select_again(l, {level}, dirs[i]);
        again.insert(again.end(), more.begin(), more.end());
      }
      evaluate_exactly(again, level, row_of, coef_of);
    }
  }

  // Head h's coefficient vectors (attn_coef[l, h, :, p] of every step and source position) as
  // multiples of a few basis vectors: a step's column p is alpha_{s,p} v_p (its attention weight
  // times the value at p), and a generated answer's steps share their prefixes' values, so column p
  // of every step (of each pass past the foil's parting) is one vector's multiple. A combination's
  // row is then alpha times its basis vector's row, or for a whole head sum_p alpha_{s,p} row_p:
  // K rows projected instead of d_head, and a head x position's moments one pass over its row
  // instead of a d_head-term combination per token. K = -1 when the columns need more than d_head
  // basis vectors (the direction rows are then cheaper). A generated answer of 32 tokens after 16
  // on GPT-2 124M shapes: ~47 basis vectors per head, of which round 1 reads ~32 (6,768 and 4,675
  // rows in all, instead of 9,216 direction rows and 52k combinations of 64 of them).
  struct HeadBasis {
    int64_t K = -1;
    std::vector<double> u;                      // [K, d_head] the basis vectors
    std::vector<std::vector<int32_t>> cluster;  // [ref][p] the basis vector of column p; -1: a zero column
    std::vector<std::vector<double>> alpha;     // [ref][p] column p = alpha * u[cluster]
  };

  // Head and head x position combinations sum_n c_n W_O[:, h*d_head+n] of layer l (the step's
  // coefficients, summed over positions for the whole head, as the bounded pass forms them), head
  // by head. bs is linear, so a combination's row is a combination of rows: of the head's source
  // positions where it can (head_basis), else of its d_head direction rows.
  void heads(int64_t l, std::vector<Job>& jobs) {
    if (jobs.empty()) return;
    const int64_t d = c_.d_model, dh = c_.d_head;
    // Each head's basis, found once (K = -1: its rows are its direction rows).
    std::vector<HeadBasis> bases(static_cast<size_t>(c_.n_heads));
    std::vector<char> found(static_cast<size_t>(c_.n_heads), 0);
    const auto basis_of = [&](int64_t h) -> const HeadBasis& {
      if (!found[static_cast<size_t>(h)]) {
        bases[static_cast<size_t>(h)] = g_heads_by_direction.load() ? HeadBasis{} : head_basis(l, h);
        found[static_cast<size_t>(h)] = 1;
      }
      return bases[static_cast<size_t>(h)];
    };
    jobs = sketch_heads(l, std::move(jobs), basis_of);
    std::stable_sort(jobs.begin(), jobs.end(), [&](const Job& a, const Job& b) {
      return head(a.ref, a.level, a.index) < head(b.ref, b.level, b.index);
    });
    const MatrixView& W_O = model_.weights().layers[static_cast<size_t>(l)].W_O;  // [d_model, H*d_head] as stored
    std::vector<float, DefaultInitAllocator<float>> stage(static_cast<size_t>(dh * d));  // [d_head, d], on a cache line
    std::vector<int64_t> cols(static_cast<size_t>(dh));                                  // the head's columns of W_O
    std::vector<float, DefaultInitAllocator<float>> rows;  // [d_head, V] the head's direction rows, or [K, V] its basis rows
    size_t j0 = 0;
    while (j0 < jobs.size()) {
      const int64_t h = head(jobs[j0].ref, jobs[j0].level, jobs[j0].index);
      size_t j1 = j0;
      while (j1 < jobs.size() && head(jobs[j1].ref, jobs[j1].level, jobs[j1].index) == h) ++j1;
      std::vector<Job> round1(jobs.begin() + static_cast<std::ptrdiff_t>(j0), jobs.begin() + static_cast<std::ptrdiff_t>(j1));
      std::iota(cols.begin(), cols.end(), h * dh);
      read_columns(W_O, cols, stage.data(), threads());  // an encoded W_O decodes only the head's blocks
      const HeadBasis& basis = basis_of(h);
      if (basis.K >= 0) {
        g_heads_by_position.fetch_add(1);
        heads_by_position(l, h, round1, basis, stage.data(), rows);
      } else {
        heads_by_direction(l, h, round1, stage.data(), rows);
      }
      j0 = j1;
    }
  }

  // Round 0 for layer l's head x position jobs of heads with a basis (head_basis). A job's row is
  // alpha times its basis vector's row, so the sketch certifies it as it does an FFN neuron: the
  // basis vector's direction y0 = gamma_f * c(u . W_O[h]) (the vector whose row round 1 would
  // project) with s = alpha / sigma, its integer products made once for every step and position that
  // reads it, at an eighth (AMX) to a quarter (AVX-512 VNNI) of a float row's cost. As for the FFN
  // sums, every bounded step of each selected head x position sum is certified, and where that is
  // narrower it replaces the step's width; those sums are then selected again, and only the jobs
  // selected again go on to rounds 1 and 2 (with the layer's whole-head jobs, which combine all of a
  // head's basis rows). Returns round 1's jobs.
  std::vector<Job> sketch_heads(int64_t l, std::vector<Job> jobs, const std::function<const HeadBasis&(int64_t)>& basis_of) {
    const ExplainOptions& o = refs_.front().step->options;
    if (!o.projection_sketch || !projection_sketch_available() || c_.final_softcap > 0) return jobs;
    const int64_t H = c_.n_heads, dh = c_.d_head, d = c_.d_model;
    // The source positions of each head that round 1 selected: [h][p].
    std::vector<std::vector<char>> chosen(static_cast<size_t>(H));
    for (const Job& j : jobs) {
      if (j.level != kHeadPosition || basis_of(head(j.ref, j.level, j.index)).K < 0) continue;
      const int64_t n_t = scores(j.ref, kHeadPosition).shape.back();
      std::vector<char>& c = chosen[static_cast<size_t>(head(j.ref, j.level, j.index))];
      if (static_cast<int64_t>(c.size()) < n_t) c.resize(static_cast<size_t>(n_t), 0);
      c[static_cast<size_t>(j.index % n_t)] = 1;
    }
    // Round 0's jobs: every bounded step of each of those sums that exceeds tol; the tasks, and the
    // basis vectors they read: vec_of[h][k] their index among the call's vectors.
    const std::vector<Job> candidates = bounded_steps_of_wide_sums(kHeadPosition, l, [&](int64_t i, int64_t n_sum) {
      const std::vector<char>& c = chosen[static_cast<size_t>((i / n_sum) % H)];
      return i % n_sum < static_cast<int64_t>(c.size()) && c[static_cast<size_t>(i % n_sum)] != 0;
    });
    std::vector<Job> round0;
    std::vector<SketchTask> tasks;
    std::vector<std::vector<int64_t>> vec_of(static_cast<size_t>(H));
    std::vector<std::pair<int64_t, int64_t>> vecs;  // (h, k) of each vector
    for (const Job& job : candidates) {
      const int64_t n_t = scores(job.ref, kHeadPosition).shape.back();
      const int64_t h = (job.index / n_t) % H, p = job.index % n_t;
      const HeadBasis& b = basis_of(h);
      const int32_t k = b.cluster[job.ref][static_cast<size_t>(p)];
      if (k < 0) continue;  // a zero column: its score is exact already
      std::vector<int64_t>& v = vec_of[static_cast<size_t>(h)];
      if (v.empty()) v.assign(static_cast<size_t>(b.K), -1);
      if (v[static_cast<size_t>(k)] < 0) v[static_cast<size_t>(k)] = static_cast<int64_t>(vecs.size()), vecs.emplace_back(h, k);
      tasks.push_back({job.ref, v[static_cast<size_t>(k)], b.alpha[job.ref][static_cast<size_t>(p)] * (1.0 / refs_[job.ref].step->explanation.frozen_scale)});
      round0.push_back(job);
    }
    const auto nv = static_cast<int64_t>(vecs.size());
    // The call's keys: vector i under FFN slot (i / d_mlp, i % d_mlp) of its own store.
    if (tasks.empty() || nv > c_.n_layers * c_.d_mlp) return jobs;
    // The vectors: per head, Y = U . W_O[h] ([m, d], as round 1 forms it), then gamma_f * c(Y).
    std::vector<float> y0(static_cast<size_t>(nv * d));  // [vectors, d]
    {
      const MatrixView& W_O = model_.weights().layers[static_cast<size_t>(l)].W_O;
      std::vector<float> stage(static_cast<size_t>(dh * d));  // [d_head, d]
      std::vector<int64_t> cols(static_cast<size_t>(dh));
      const VocabProjector& projector = ctx_.projector(0);
      for (int64_t h = 0; h < H; ++h) {
        const std::vector<int64_t>& v = vec_of[static_cast<size_t>(h)];
        std::vector<float> U;       // [m, d_head] the head's basis vectors read
        std::vector<int64_t> dest;  // [m] their vector indices
        for (size_t k = 0; k < v.size(); ++k) {
          if (v[k] < 0) continue;
          const HeadBasis& b = basis_of(h);
          U.insert(U.end(), b.u.begin() + static_cast<std::ptrdiff_t>(k) * dh, b.u.begin() + static_cast<std::ptrdiff_t>(k + 1) * dh);
          dest.push_back(v[k]);
        }
        if (dest.empty()) continue;
        std::iota(cols.begin(), cols.end(), h * dh);
        read_columns(W_O, cols, stage.data(), threads());
        const auto m = static_cast<int64_t>(dest.size());
        std::vector<float> Y(static_cast<size_t>(m * d));  // [m, d_model]
        ops::combine_rows_fma(m, d, dh, U.data(), dh, stage.data(), d, Y.data(), d);
        for (int64_t i = 0; i < m; ++i) projector.prepare_unscaled(Y.data() + i * d, y0.data() + dest[static_cast<size_t>(i)] * d);
      }
    }
    const int64_t N = c_.d_mlp;
    const SketchVectors vectors{y0.data(), [N](int64_t i) { return std::make_pair(i / N, i % N); },
                                [](int64_t) -> const double* { return nullptr; }, false};
    keep_sketched(round0, tasks, sketch_values(l, vectors, false, tasks));
    // The head x position sums of the heads read, selected again with the narrowed widths; the
    // whole-head jobs stay.
    std::vector<Job> round1;
    for (const Job& j : jobs) {
      if (j.level == kHead || chosen[static_cast<size_t>(head(j.ref, j.level, j.index))].empty()) round1.push_back(j);
    }
    for (int64_t h = 0; h < H; ++h) {
      if (chosen[static_cast<size_t>(h)].empty()) continue;
      for (Job& j : select_again(l, {kHeadPosition}, h)) {
        refs_[j.ref].marked[kHeadPosition][static_cast<size_t>(j.index)] = 0;  // round 2 marks its own
        round1.push_back(j);
      }
    }
    return round1;
  }

  // Head h's `round1` jobs and round 2's from the rows of its basis vectors (head_basis): only the
  // vectors that jobs read are projected, when first needed, each into the next free row of `rows`:
  // Y = U . stage [m, d] (stage: the head's W_O columns [d_head, d]), then [m, V].
  void heads_by_position(int64_t l, int64_t h, std::vector<Job>& round1, const HeadBasis& basis, const float* stage,
                         std::vector<float, DefaultInitAllocator<float>>& rows) {
    const int64_t d = c_.d_model, V = c_.d_vocab, dh = c_.d_head;
    std::vector<int32_t> slot(static_cast<size_t>(basis.K), -1);
    int64_t filled = 0;
    auto ensure_rows = [&](const std::vector<Job>& js) {
      std::vector<float> U;  // [missing, d_head]
      for (const Job& j : js) {
        const std::vector<int32_t>& cl = basis.cluster[j.ref];
        const auto [p0, p1] = positions_read(j, static_cast<int64_t>(cl.size()));
        for (int64_t p = p0; p < p1; ++p) {
          const int32_t k = cl[static_cast<size_t>(p)];
          if (k < 0 || slot[static_cast<size_t>(k)] >= 0) continue;
          slot[static_cast<size_t>(k)] = static_cast<int32_t>(filled + static_cast<int64_t>(U.size()) / dh);
          U.insert(U.end(), basis.u.begin() + k * dh, basis.u.begin() + (k + 1) * dh);
        }
      }
      const int64_t m = static_cast<int64_t>(U.size()) / dh;
      if (m == 0) return;
      std::vector<float> Y(static_cast<size_t>(m * d));  // [missing, d_model]
      ops::combine_rows_fma(m, d, dh, U.data(), dh, stage, d, Y.data(), d);
      ctx_.projector(0).project_unscaled(Y.data(), m, d, rows.data() + filled * V);
      filled += m;
    };
    rows.resize(static_cast<size_t>(basis.K * V));
    ensure_rows(round1);
    if (c_.final_softcap > 0) {
      combinations(round1, basis_coefs(basis, slot, filled, round1), filled, rows.data(), false);
    } else {
      std::vector<Job> positions, wholes;
      for (const Job& j : round1) (j.level == kHeadPosition ? positions : wholes).push_back(j);
      certify_scaled(positions, basis, slot, rows.data());
      certify_combinations(wholes, basis_coefs(basis, slot, filled, wholes).data(), filled, rows.data());
    }
    std::vector<Job> again = select_again(l, {kHead, kHeadPosition}, h);
    ensure_rows(again);
    combinations(again, basis_coefs(basis, slot, filled, again), filled, rows.data(), true);
  }

  // Head h's jobs from its d_head direction rows (from `shared` where an explain kept them).
  void heads_by_direction(int64_t l, int64_t h, std::vector<Job>& round1, const float* stage,
                          std::vector<float, DefaultInitAllocator<float>>& rows) {
    const int64_t d = c_.d_model, V = c_.d_vocab, dh = c_.d_head;
    rows.resize(static_cast<size_t>(dh * V));
    std::vector<int64_t> to_project;
    for (int64_t n = 0; n < dh; ++n) {
      const float* g = shared_ != nullptr ? shared_->attn(l, h * dh + n) : nullptr;
      if (g != nullptr) {
        std::copy(g, g + V, rows.begin() + n * V);
      } else {
        to_project.push_back(n);
      }
    }
    if (static_cast<int64_t>(to_project.size()) == dh) {
      ctx_.projector(0).project_unscaled(stage, dh, d, rows.data());  // in place, not through a copy
    } else if (!to_project.empty()) {
      std::vector<float> Y(to_project.size() * static_cast<size_t>(d));  // [to_project, d_model]
      for (size_t i = 0; i < to_project.size(); ++i) {
        std::copy(stage + to_project[i] * d, stage + (to_project[i] + 1) * d, Y.begin() + static_cast<std::ptrdiff_t>(i) * d);
      }
      std::vector<float> P(to_project.size() * static_cast<size_t>(V));  // [to_project, d_vocab]
      ctx_.projector(0).project_unscaled(Y.data(), static_cast<int64_t>(to_project.size()), d, P.data());
      for (size_t i = 0; i < to_project.size(); ++i) {
        std::copy(P.begin() + static_cast<std::ptrdiff_t>(i) * V, P.begin() + static_cast<std::ptrdiff_t>(i + 1) * V,
                  rows.begin() + to_project[i] * V);
      }
    }
    combinations(round1, combination_coefs(l, h, round1), dh, rows.data(), false);
    std::vector<Job> again = select_again(l, {kHead, kHeadPosition}, h);
    combinations(again, combination_coefs(l, h, again), dh, rows.data(), true);
  }

  // The source positions [p0, p1) whose coefficients a head (all Pn) or head x position job reads.
  static std::pair<int64_t, int64_t> positions_read(const Job& j, int64_t Pn) {
    if (j.level == kHead) return {0, Pn};
    return {j.index % Pn, j.index % Pn + 1};
  }

  HeadBasis head_basis(int64_t l, int64_t h) const {
    const int64_t H = c_.n_heads, dh = c_.d_head;
    HeadBasis b;
    b.K = 0;
    b.cluster.resize(refs_.size());
    b.alpha.resize(refs_.size());
    std::vector<std::vector<int64_t>> at_position;  // [p] the basis vectors met at source position p
    std::vector<int64_t> pivot;                     // [K] the largest entry of each basis vector
    std::vector<double> col(static_cast<size_t>(dh));
    for (size_t r = 0; r < refs_.size(); ++r) {
      const Explanation& ex = refs_[r].step->explanation;
      const int64_t Pn = ex.n_positions;
      const double* cf = ex.attn_coef.values.data() + static_cast<size_t>(((l * H + h) * dh) * Pn);  // [d_head, Pn]
      b.cluster[r].assign(static_cast<size_t>(Pn), -1);
      b.alpha[r].assign(static_cast<size_t>(Pn), 0.0);
      if (static_cast<int64_t>(at_position.size()) < Pn) at_position.resize(static_cast<size_t>(Pn));
      for (int64_t p = 0; p < Pn; ++p) {
        double cmax = 0;
        int64_t at = 0;  // the first of the column's largest entries: its pivot if it starts a basis vector
        for (int64_t n = 0; n < dh; ++n) {
          col[static_cast<size_t>(n)] = cf[n * Pn + p];
          if (std::abs(col[static_cast<size_t>(n)]) > cmax) {
            cmax = std::abs(col[static_cast<size_t>(n)]);
            at = n;
          }
        }
        if (!(cmax > 0)) {
          if (cmax == 0) continue;  // a zero column: a zero row
          return {};                // NaN
        }
        int32_t found = -1;
        double a = 0;
        for (const int64_t k : at_position[static_cast<size_t>(p)]) {
          const double* u = b.u.data() + k * dh;
          a = col[static_cast<size_t>(pivot[static_cast<size_t>(k)])] / u[pivot[static_cast<size_t>(k)]];
          double worst = 0;
          for (int64_t n = 0; n < dh; ++n) worst = std::max(worst, std::abs(col[static_cast<size_t>(n)] - a * u[n]));
          // A multiple up to the double rounding of alpha * v (a few ulps): 1e-12 leaves a wide margin,
          // and the rest (at most 1e-12 of the column) is far below the rows' float rounding.
          if (worst <= 1e-12 * cmax) {
            found = static_cast<int32_t>(k);
            break;
          }
        }
        if (found < 0) {
          if (b.K == dh) return {};
          found = static_cast<int32_t>(b.K++);
          a = 1;
          b.u.insert(b.u.end(), col.begin(), col.end());
          pivot.push_back(at);
          at_position[static_cast<size_t>(p)].push_back(found);
        }
        b.cluster[r][static_cast<size_t>(p)] = found;
        b.alpha[r][static_cast<size_t>(p)] = a;
      }
    }
    return b;
  }

  // Each job's coefficients over the basis rows projected so far (`slot`: each basis vector's row,
  // -1 for none yet; `n_rows` of them), as float [jobs, n_rows]: alpha at its column's row for a head
  // x position, sum_p alpha_p per row for a whole head.
  std::vector<float> basis_coefs(const HeadBasis& b, const std::vector<int32_t>& slot, int64_t n_rows,
                                 const std::vector<Job>& jobs) const {
    const auto K = static_cast<size_t>(n_rows);
    std::vector<float> coefs(jobs.size() * K);
    std::vector<double> acc(K);
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Job& job = jobs[i];
      const std::vector<int32_t>& cl = b.cluster[job.ref];
      const std::vector<double>& al = b.alpha[job.ref];
      std::fill(acc.begin(), acc.end(), 0.0);
      const auto [p0, p1] = positions_read(job, static_cast<int64_t>(cl.size()));
      for (int64_t p = p0; p < p1; ++p) {
        if (cl[static_cast<size_t>(p)] >= 0) acc[static_cast<size_t>(slot[static_cast<size_t>(cl[static_cast<size_t>(p)])])] += al[static_cast<size_t>(p)];
      }
      for (size_t k = 0; k < K; ++k) coefs[i * K + k] = static_cast<float>(acc[k]);
    }
    return coefs;
  }

  // Head h's coefficients of each job's combination, as float [jobs, d_head].
  std::vector<float> combination_coefs(int64_t l, int64_t h, const std::vector<Job>& jobs) const {
    const int64_t H = c_.n_heads, dh = c_.d_head;
    std::vector<float> coefs(jobs.size() * static_cast<size_t>(dh));
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Job& job = jobs[i];
      const Explanation& ex = refs_[job.ref].step->explanation;
      const int64_t Pn = ex.n_positions;
      const bool whole = job.level == kHead;
      const int64_t p = whole ? -1 : job.index % Pn;
      const double* cf = ex.attn_coef.values.data() + static_cast<size_t>(((l * H + h) * dh) * Pn);  // [d_head, Pn]
      for (int64_t n = 0; n < dh; ++n) {
        double s = 0;
        if (whole) {
          for (int64_t q = 0; q < Pn; ++q) s += cf[n * Pn + q];
        } else {
          s = cf[n * Pn + p];
        }
        coefs[i * static_cast<size_t>(dh) + static_cast<size_t>(n)] = static_cast<float>(s);
      }
    }
    return coefs;
  }

  // Combinations of K rows for `jobs` (coefs [jobs, K], rows [K, d_vocab]), round 1 (certified
  // from moments) or round 2 (`exactly`).
  void combinations(std::vector<Job>& jobs, const std::vector<float>& coefs, int64_t K, const float* rows, bool exactly) {
    if (jobs.empty()) return;
    const int64_t V = c_.d_vocab;
    const bool softcap = c_.final_softcap > 0;  // the moments do not apply: certify() computes exactly
    if (!exactly && !softcap) {
      certify_combinations(jobs, coefs.data(), K, rows);
      return;
    }
    // Few: each row formed whole, then scored over the vocabulary.
    auto coef_of = [&](const Job& j) { return 1.0 / refs_[j.ref].step->explanation.frozen_scale; };
    constexpr size_t kChunk = 128;
    std::vector<float> G;
    for (size_t j0 = 0; j0 < jobs.size(); j0 += kChunk) {
      const size_t j1 = std::min(jobs.size(), j0 + kChunk);
      G.resize((j1 - j0) * static_cast<size_t>(V));  // [chunk, d_vocab]
      parallel_for(threads(), static_cast<int64_t>(j1 - j0), [&](int64_t a, int64_t b) {
        ops::combine_rows_fma(b - a, V, K, coefs.data() + (j0 + static_cast<size_t>(a)) * static_cast<size_t>(K), K, rows, V,
                              G.data() + a * V, V);
      });
      std::vector<Row> rs(j1 - j0);
      for (size_t i = 0; i < rs.size(); ++i) rs[i].g = G.data() + i * static_cast<size_t>(V);
      find_extremes(rs, V, threads());
      std::vector<Job> chunk(jobs.begin() + static_cast<std::ptrdiff_t>(j0), jobs.begin() + static_cast<std::ptrdiff_t>(j1));
      const Job* base = chunk.data();
      auto row_of = [&](const Job& j) -> const Row& { return rs[static_cast<size_t>(&j - base)]; };
      if (exactly) {
        evaluate_exactly(chunk, kHeadPosition, row_of, coef_of);
      } else {
        // (With a softcap no job becomes a moment task: certify() computes each exactly.)
        certify(chunk, kHeadPosition, row_of, coef_of, [](std::vector<MomentTask>&) {});
      }
    }
  }

  // m1 and a2 of a row from its lanes (tokens [0, n8)) and its last tokens [n8, V) (`tail`: their
  // values), in that order.
  static void add_lanes_and_tail(const ops::MomentLanes& lanes, const double* q, const float* tail, int64_t n8, int64_t V,
                                 double& m1, double& a2) {
    for (int k = 0; k < ops::MomentLanes::kLanes; ++k) m1 += lanes.m1[k], a2 += lanes.a2[k];
    for (int64_t j = n8; j < V; ++j) {
      const double w = q[j], x = static_cast<double>(tail[j - n8]);
      m1 += w * x, a2 += w * x * x;
    }
  }

  // A combination's moments under its step's distribution, its extremes and its target entry.
  struct Summary {
    Moments sums;
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity(), at_target = 0;
  };

  // Round 1 of combinations without forming their rows: the vocabulary block by block, each job's
  // block of its row (a small product of its coefficients with the K rows, in cache), then its
  // moments, extremes and target entry from that block. Each row's moments run in the lanes of a
  // whole row, so the result does not depend on the thread count.
  void certify_combinations(std::vector<Job>& jobs, const float* coefs, int64_t K, const float* G0) {
    if (jobs.empty()) return;
    const int64_t V = c_.d_vocab, n8 = V / ops::MomentLanes::kLanes * ops::MomentLanes::kLanes;
    std::vector<Summary> out(jobs.size());
    parallel_for(threads(), static_cast<int64_t>(jobs.size()), [&](int64_t a, int64_t b) {
      constexpr int64_t kBlock = 256;
      const int64_t m = b - a;
      std::vector<float> block(static_cast<size_t>(m * kBlock));  // [m, kBlock] the rows' current block
      std::vector<ops::MomentLanes> lanes(static_cast<size_t>(m));
      std::vector<float> tail(static_cast<size_t>(m * ops::MomentLanes::kLanes));  // each row's last V % 16 entries
      for (int64_t v0 = 0; v0 < V; v0 += kBlock) {
        const int64_t len = std::min(kBlock, V - v0), len8 = std::max<int64_t>(0, std::min(len, n8 - v0));
        ops::combine_rows_fma(m, len, K, coefs + a * K, K, G0 + v0, V, block.data(), len);
        for (int64_t i = 0; i < m; ++i) {
          const Job& job = jobs[static_cast<size_t>(a + i)];
          Summary& o = out[static_cast<size_t>(a + i)];
          const float* g = block.data() + i * len;
          ops::weighted_moments_add(ctx_.attn(job.ref).q.data() + v0, g, len8, lanes[static_cast<size_t>(i)]);
          std::copy(g + len8, g + len, tail.begin() + i * ops::MomentLanes::kLanes);
          float lo = 0, hi = 0;
          ops::min_max(g, len, lo, hi);
          o.lo = std::min(o.lo, static_cast<double>(lo));
          o.hi = std::max(o.hi, static_cast<double>(hi));
          const int64_t w = refs_[job.ref].step->explanation.target;
          if (w >= v0 && w < v0 + len) o.at_target = static_cast<double>(g[w - v0]);
        }
      }
      for (int64_t i = 0; i < m; ++i) {
        const double* q = ctx_.attn(jobs[static_cast<size_t>(a + i)].ref).q.data();
        Moments& s = out[static_cast<size_t>(a + i)].sums;
        s.Q = ctx_.attn_total(jobs[static_cast<size_t>(a + i)].ref);
        add_lanes_and_tail(lanes[static_cast<size_t>(i)], q, tail.data() + i * ops::MomentLanes::kLanes, n8, V, s.m1, s.a2);
      }
    });
    certified_from(jobs, out);
  }

  // Round 1 of head x position jobs in a head's basis: the row is alpha times a basis row, so its
  // moments are alpha and alpha^2 times the basis row's under the step's distribution (one pass over
  // that row, no combination), its extremes and target entry alpha times the row's.
  void certify_scaled(std::vector<Job>& jobs, const HeadBasis& b, const std::vector<int32_t>& slot, const float* rows) {
    if (jobs.empty()) return;
    const int64_t V = c_.d_vocab, n8 = V / ops::MomentLanes::kLanes * ops::MomentLanes::kLanes;
    std::vector<Summary> out(jobs.size());
    parallel_for(threads(), static_cast<int64_t>(jobs.size()), [&](int64_t a, int64_t e) {
      for (int64_t i = a; i < e; ++i) {
        const Job& job = jobs[static_cast<size_t>(i)];
        Summary& o = out[static_cast<size_t>(i)];
        const auto p = static_cast<size_t>(positions_read(job, static_cast<int64_t>(b.cluster[job.ref].size())).first);
        const int32_t k = b.cluster[job.ref][p];
        const double alpha = b.alpha[job.ref][p];
        o.sums.Q = ctx_.attn_total(job.ref);
        if (k < 0) {  // a zero column: the zero row
          o.lo = o.hi = 0;
          continue;
        }
        const float* g = rows + static_cast<int64_t>(slot[static_cast<size_t>(k)]) * V;
        const double* q = ctx_.attn(job.ref).q.data();
        ops::MomentLanes lanes;
        ops::weighted_moments_add(q, g, n8, lanes);
        double m1 = 0, a2 = 0;
        add_lanes_and_tail(lanes, q, g + n8, n8, V, m1, a2);
        float lo = 0, hi = 0;
        ops::min_max(g, V, lo, hi);
        o.sums.m1 = alpha * m1;
        o.sums.a2 = alpha * alpha * a2;
        o.lo = alpha >= 0 ? alpha * static_cast<double>(lo) : alpha * static_cast<double>(hi);
        o.hi = alpha >= 0 ? alpha * static_cast<double>(hi) : alpha * static_cast<double>(lo);
        o.at_target = alpha * static_cast<double>(g[refs_[job.ref].step->explanation.target]);
      }
    });
    certified_from(jobs, out);
  }

  // Each job's score certified from its summary; its width replaces the step's where it certifies.
  void certified_from(std::vector<Job>& jobs, const std::vector<Summary>& out) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      Job& job = jobs[i];
      const Summary& o = out[i];
      const double s = 1.0 / refs_[job.ref].step->explanation.frozen_scale;
      const double gabs = std::max(std::abs(o.lo), std::abs(o.hi));
      double hw = 0;
      const double f = moment_log_expectation(o.sums, s, gabs, hw);
      job.value = std::isnan(f) ? 0.0 : log_prob_increase_from(s * o.at_target, f);
      job.width = std::isnan(f) ? f : hw;
      if (!std::isnan(job.width)) (refs_[job.ref].widths->*kWidthOf[job.level]).values[static_cast<size_t>(job.index)] = job.width;
      certified.push_back(job);
    }
  }

  // Round 1: each job's score certified from its row's moments under its step's distribution (the
  // row's extremes bound b); its width replaces the step's where it certifies. With a final-logit
  // softcap the moments do not apply and the score is computed exactly.
  template <class RowOf, class CoefOf, class Summer>
  void certify(std::vector<Job>& jobs, int level, const RowOf& row_of, const CoefOf& coef_of, const Summer& sum) {
    const bool attn_context = level != kFfn;
    std::vector<MomentTask> tasks;
    std::vector<size_t> task_of(jobs.size(), SIZE_MAX);
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Distribution& dist = attn_context ? ctx_.attn(jobs[i].ref) : ctx_.ffn(jobs[i].ref);
      if (dist.softcap > 0) continue;
      task_of[i] = tasks.size();
      tasks.push_back({row_of(jobs[i]).g, attn_context ? ctx_.attn_total(jobs[i].ref) : ctx_.ffn_total(jobs[i].ref), {}, jobs[i].ref});
    }
    sum(tasks);  // (before the rows' extremes are read: a streamed sum finds them)
    parallel_for(threads(), static_cast<int64_t>(jobs.size()), [&](int64_t a, int64_t b) {
      for (int64_t k = a; k < b; ++k) {
        Job& job = jobs[static_cast<size_t>(k)];
        const Explanation& ex = refs_[job.ref].step->explanation;
        const Distribution& dist = attn_context ? ctx_.attn(job.ref) : ctx_.ffn(job.ref);
        const Row& row = row_of(job);
        const double s = coef_of(job);
        if (task_of[static_cast<size_t>(k)] == SIZE_MAX) {
          job.value = increase_from_row(dist, row.g, row.gmin, row.gmax, s, ex.target);
          job.width = 0;
          continue;
        }
        double hw = 0;
        const double gabs = std::max(std::abs(row.gmin), std::abs(row.gmax));
        const double f = moment_log_expectation(tasks[task_of[static_cast<size_t>(k)]].sums, s, gabs, hw);
        job.value = std::isnan(f) ? 0.0 : log_prob_increase_from(s * static_cast<double>(row.g[ex.target]), f);
        job.width = std::isnan(f) ? f : hw;
      }
    });
    for (const Job& j : jobs) {
      if (!std::isnan(j.width)) (refs_[j.ref].widths->*kWidthOf[j.level]).values[static_cast<size_t>(j.index)] = j.width;
      certified.push_back(j);
    }
  }

  // Round 2: each job's score over the whole vocabulary.
  template <class RowOf, class CoefOf>
  void evaluate_exactly(std::vector<Job>& jobs, int level, const RowOf& row_of, const CoefOf& coef_of) {
    const bool attn_context = level != kFfn;
    parallel_for(threads(), static_cast<int64_t>(jobs.size()), [&](int64_t a, int64_t b) {
      for (int64_t k = a; k < b; ++k) {
        Job& job = jobs[static_cast<size_t>(k)];
        const Row& row = row_of(job);
        const Distribution& dist = attn_context ? ctx_.attn(job.ref) : ctx_.ffn(job.ref);
        job.value = increase_from_row(dist, row.g, row.gmin, row.gmax, coef_of(job), refs_[job.ref].step->explanation.target);
        job.width = 0;
      }
    });
    exact.insert(exact.end(), jobs.begin(), jobs.end());
  }

  const Model& model_;
  const ModelConfig& c_;
  std::vector<StepRef>& refs_;
  const std::vector<SumTerms>& sums_;
  double tol_;
  SharedProjections* shared_;
  LayerContexts ctx_;
  std::vector<std::vector<char>>* query_marks_ = nullptr;  // [kLevels][ref] entries
  // [chunk vectors, n_pad] the integer products of a sketch chunk's vectors (sketch_values), kept
  // for the next chunk; uninitialised (every entry is written before it is read).
  std::vector<int32_t, DefaultInitAllocator<int32_t>> sketch_arena_;
  std::vector<float, DefaultInitAllocator<float>> rows_;  // [128, d_vocab] directions()' projected rows
  std::vector<float, DefaultInitAllocator<float>> prepared_;  // [d_mlp, d] sketch_certify's layer directions
};

// The summed query analyses take the steps' new neuron scores too: each target step whose top
// FFN or attention neurons (those Q1-Q3 read) got a new score is analysed again from a copy of its
// explanation that holds them, and the sums move by the difference.
void redo_query_sums(const Model& model, LayerContexts& ctx, std::vector<StepRef>& refs,
                     const std::vector<std::vector<const Job*>>& replaced, TargetSums& s) {
  for (size_t r = 0; r < refs.size(); ++r) {
    const StepRef& ref = refs[r];
    if (replaced[r].empty() || ref.pass != refs.front().pass) continue;  // the foil's own steps add to no Q sum
    const Explanation& ex = ref.step->explanation;
    const int64_t top_n = ref.step->options.query_top_n;
    Explanation again;
    again.n_positions = ex.n_positions;
    again.ffn_neuron = ex.ffn_neuron;
    again.attn_neuron = ex.attn_neuron;
    for (const Job* j : replaced[r]) (again.*kScoreOf[j->level]).values[static_cast<size_t>(j->index)] = j->value;
    // Only a step whose ranked inputs changed needs it.
    bool changed = false;
    for (const int lv : {static_cast<int>(kFfn), static_cast<int>(kAttnNeuron)}) {
      const std::vector<double>& before = (ex.*kScoreOf[lv]).values;
      const std::vector<double>& after = (again.*kScoreOf[lv]).values;
      for (const std::vector<int64_t>& top : {top_indices(before, top_n), top_indices(after, top_n)}) {
        for (const int64_t i : top) changed = changed || before[static_cast<size_t>(i)] != after[static_cast<size_t>(i)];
      }
    }
    if (!changed) continue;
    const ExplainOptions& opts = ref.step->options;
    const ExplainContext qctx{model, ctx.trace_of(ref), ctx.projector(r), opts, ref.step->position, ex.target, ex.foil,
                              {}, ctx.threads(), nullptr, {}, nullptr, nullptr, nullptr, nullptr};
    score_queries(qctx, again);
    if (again.ffn_value_query_layers.size() != s.ffn_value_query_layers.size()) {
      throw InternalError("tighten_target_sums: query-layer keys differ");
    }
    for (size_t v = 0; v < again.ffn_value_query_layers.size(); ++v) {
      for (size_t k = 0; k < again.ffn_value_query_layers[v].slots.size(); ++k) {
        s.ffn_value_query_layers[v].slots[k] += again.ffn_value_query_layers[v].slots[k] - ex.ffn_value_query_layers[v].slots[k];
      }
    }
    for (size_t k = 0; k < again.attn_value_query_layers.slots.size(); ++k) {
      s.attn_value_query_layers.slots[k] += again.attn_value_query_layers.slots[k] - ex.attn_value_query_layers.slots[k];
    }
    for (size_t i = 0; i < again.query_ffn_neuron.values.size(); ++i) {
      s.query_ffn_neuron.values[i] += again.query_ffn_neuron.values[i] - ex.query_ffn_neuron.values[i];
    }
  }
}

}  // namespace budget
}  // namespace

namespace detail {
void set_heads_by_direction(bool on) { budget::g_heads_by_direction.store(on); }
int64_t heads_by_position() { return budget::g_heads_by_position.load(); }
double moment_certificate(const std::vector<double>& q, const std::vector<float>& g, double s, bool cubic, double& half_width) {
  budget::Moments m;
  double gabs = 0;
  m.p3 = m.n3 = cubic ? 0.0 : std::numeric_limits<double>::quiet_NaN();
  for (size_t j = 0; j < q.size(); ++j) {
    const double x = static_cast<double>(g[j]);
    m.Q += q[j], m.m1 += q[j] * x, m.a2 += q[j] * x * x;
    if (cubic) (x > 0 ? m.p3 : m.n3) += q[j] * std::abs(x * x * x);
    gabs = std::max(gabs, std::abs(x));
  }
  return budget::moment_log_expectation(m, s, gabs, half_width);
}
std::pair<int64_t, int64_t> sketch_splits() { return {budget::g_splits_rebuilt.load(), budget::g_splits_made.load()}; }
}  // namespace detail

void tighten_target_sums(const Model& model, ExplainedTarget& done, std::vector<ScoreWidths>& target_widths,
                         std::vector<ScoreWidths>& foil_widths, double bound_tol, int set_size,
                         SharedProjections* shared) {
  using namespace budget;
  const std::vector<TargetStep>& steps = done.target_pass.steps;
  if (target_widths.size() != steps.size() || foil_widths.size() != done.foil_pass.steps.size()) {
    throw InternalError("tighten_target_sums: one ScoreWidths per step expected");
  }
  std::vector<StepRef> refs;
  auto add_ref = [&](const TeacherForcedPass& pass, const TargetStep& step, ScoreWidths& w) {
    StepRef r;
    r.pass = &pass;
    r.step = &step;
    r.widths = &w;
    for (int lv = 0; lv < kLevels; ++lv) r.marked[lv].assign((w.*kWidthOf[lv]).values.size(), 0);
    refs.push_back(std::move(r));
  };
  for (size_t t = 0; t < steps.size(); ++t) add_ref(done.target_pass, steps[t], target_widths[t]);
  for (size_t i = 0; i < done.foil_pass.steps.size(); ++i) add_ref(done.foil_pass, done.foil_pass.steps[i], foil_widths[i]);

  // The sums: every target step adds to the plain sums; the contrast adds the target's steps after
  // the parting (not the contrast step: its term is the exact contrast) and subtracts the foil's.
  TargetSums& s = done.summed;
  ScoreArray TargetSums::*const plain[kLevels] = {&TargetSums::ffn_neuron, &TargetSums::attn_neuron, &TargetSums::head,
                                                  &TargetSums::head_position};
  ScoreArray TargetSums::*const contrast[kLevels] = {&TargetSums::contrast_ffn_neuron, &TargetSums::contrast_attn_neuron,
                                                     &TargetSums::contrast_head, nullptr};
  std::vector<SumTerms> sums;
  for (int lv = 0; lv < kLevels; ++lv) {
    SumTerms p{lv, &(s.*plain[lv]), {}};
    for (size_t t = 0; t < steps.size(); ++t) p.terms.emplace_back(t, 1.0);
    sums.push_back(std::move(p));
  }
  if (s.has_contrast) {
    for (int lv = 0; lv < kLevels; ++lv) {
      if (contrast[lv] == nullptr) continue;
      SumTerms p{lv, &(s.*contrast[lv]), {}};
      for (size_t t = 0; t < steps.size(); ++t) {
        if (static_cast<int>(t) != done.contrast_step && static_cast<int>(t) >= done.first_foil_step) p.terms.emplace_back(t, 1.0);
      }
      for (size_t i = 0; i < done.foil_pass.steps.size(); ++i) p.terms.emplace_back(steps.size() + i, -1.0);
      sums.push_back(std::move(p));
    }
  }
  // The query analyses (Q1-Q3) weight each target step's top query_top_n FFN and attention neurons
  // by their scores, with ratios that can be large (spec A17): round 2 makes those exact too.
  std::vector<std::vector<char>> query_marks[kLevels];
  for (int lv = 0; lv < kLevels; ++lv) query_marks[lv].resize(refs.size());
  for (size_t r = 0; r < refs.size(); ++r) {
    if (refs[r].pass != refs.front().pass) continue;  // the foil's own steps add to no query sum
    const Explanation& ex = refs[r].step->explanation;
    for (const int lv : {static_cast<int>(kFfn), static_cast<int>(kAttnNeuron)}) {
      if ((refs[r].widths->*kWidthOf[lv]).values.empty()) continue;
      query_marks[lv][r].assign(refs[r].marked[lv].size(), 0);
      for (const int64_t i : top_indices((ex.*kScoreOf[lv]).values, refs[r].step->options.query_top_n)) {
        query_marks[lv][r][static_cast<size_t>(i)] = 1;
      }
    }
  }
  // Round 1: the widest steps of each sum that needs it, certified again from their rows' moments
  // (their new widths replace the step's); round 2: where the sum of the widths is still above
  // bound_tol, the widest of those over the whole vocabulary, exactly.
  int64_t sums_needed[kLevels] = {};
  Tightening tightening(model, refs, sums, bound_tol, shared);
  tightening.run(sums_needed, query_marks);

  // Each new score replaces its step's bounded one in every sum the step adds to (an exact one
  // overrides its own certified one).
  int64_t n_moments[kLevels] = {}, n_exact[kLevels] = {};
  std::vector<std::vector<const Job*>> replaced(refs.size());  // per step: its new neuron scores
  auto apply = [&](const Job& j) {
    if (j.level == kFfn || j.level == kAttnNeuron) replaced[j.ref].push_back(&j);
    const ScoreArray& step_scores = refs[j.ref].step->explanation.*kScoreOf[j.level];
    const double delta = j.value - step_scores.values[static_cast<size_t>(j.index)];
    const int64_t n_t = step_scores.shape.back();
    for (const SumTerms& st : sums) {
      if (st.level != j.level) continue;
      for (const auto& [ref, sign] : st.terms) {
        if (ref != j.ref) continue;
        const int64_t n_sum = st.sum->shape.back();
        const int64_t i = (j.index / n_t) * n_sum + j.index % n_t;
        st.sum->values[static_cast<size_t>(i)] += sign * delta;
      }
    }
    if (j.width > 0) {
      ++n_moments[j.level];
    } else {
      ++n_exact[j.level];
    }
  };
  // An entry may be certified by the sketch (round 0), then by its row's moments (round 1), then
  // computed exactly (round 2): only its last value replaces the step's.
  std::unordered_set<uint64_t> later;  // entries with a round-1 certified value
  auto key = [](const Job& j) {
    return (static_cast<uint64_t>(j.ref) << 40) | (static_cast<uint64_t>(j.level) << 36) | static_cast<uint64_t>(j.index);
  };
  for (const Job& j : tightening.certified) {
    if (!std::isnan(j.width)) later.insert(key(j));
  }
  int64_t n_sketched[kLevels] = {};
  for (const Job& j : tightening.sketched) {
    if (later.count(key(j)) != 0 || refs[j.ref].marked[j.level][static_cast<size_t>(j.index)]) continue;
    apply(j);
    ++n_sketched[j.level];
  }
  for (const Job& j : tightening.certified) {
    if (!std::isnan(j.width) && !refs[j.ref].marked[j.level][static_cast<size_t>(j.index)]) apply(j);
  }
  for (const Job& j : tightening.exact) apply(j);
  redo_query_sums(model, tightening.contexts(), refs, replaced, s);
  for (int lv = 0; lv < kLevels; ++lv) {
    const std::string name = kName[lv];
    s.method_counts[name + "_tightened"] = n_moments[lv] + n_exact[lv];
    s.method_counts[name + "_tightened_exact"] = n_exact[lv];
    s.method_counts[name + "_tightened_sketched"] = n_sketched[lv];
    s.method_counts[name + "_sums_tightened"] = sums_needed[lv];
  }
  count_query_sets(s, set_size);
}

}  // namespace reslens::analysis
