// The error budget of a multi-token target's sums (analysis/target_tightening.h): select, per
// summed component, the steps whose certified widths must be replaced by exact scores, compute
// those exactly (layer by layer: each step's context distribution once, each weight direction's
// unscaled projection once, shared by every step that needs it), then correct the sums.
#include "analysis/target_tightening.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "analysis/ranking.h"
#include "analysis/target_sums.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/vector_ops.h"
#include "reslens/error.h"

namespace reslens::analysis {

namespace {
// Named too: a unity build compiles other files' anonymous namespaces beside this one.
namespace budget {

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

// Marks, for every component of `s` whose unmarked widths add up to more than `tol`, its widest
// steps (ties: the earlier term) until the rest add up to at most `tol`. Returns how many summed
// components needed it.
int64_t select_steps(const SumTerms& s, std::vector<StepRef>& refs, double tol) {
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
  for (int64_t i = 0; i < s.sum->size(); ++i) {
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

// How score_directions evaluates its jobs.
enum class Evaluation { kMoments, kExact };

// The layer of entry `index` of a step's array of `level`.
int64_t layer_of(const ScoreArray& a, int64_t index) {
  int64_t per_layer = 1;
  for (size_t k = 1; k < a.shape.size(); ++k) per_layer *= a.shape[k];
  return index / per_layer;
}

// Everything the exact scores of one layer read: per step, its projector and the distributions of
// the layer's two contexts (before attention, before the FFN).
class LayerContexts {
 public:
  LayerContexts(const Model& model, std::vector<StepRef>& refs) : model_(model), refs_(refs), proj_(refs.size()) {
    attn_.resize(refs.size());
    ffn_.resize(refs.size());
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
    std::vector<float> logits(rows.size() * static_cast<size_t>(V));
    projector(rows.front().first).project_prepared(ys.data(), static_cast<int64_t>(rows.size()), logits.data());
    parallel_for(threads(), static_cast<int64_t>(rows.size()), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [r, is_ffn] = rows[static_cast<size_t>(i)];
        (is_ffn ? ffn_ : attn_)[r] = make_distribution({logits.data() + i * V, static_cast<size_t>(V)}, projector_const(r).bias(),
                                                    static_cast<double>(c.final_softcap));
      }
    });
  }

  const Distribution& attn(size_t r) const { return attn_[r]; }
  const Distribution& ffn(size_t r) const { return ffn_[r]; }
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

// f = log sum_j q_j exp(s g_j) certified from the row's moments under q, without exponentials:
//   sum_j q_j e^{s g_j} = Q + s m1 + s^2 sum_j q_j g_j^2 psi(s g_j),  psi(s g_j) in [psi(-b), psi(b)],
// b = |s| max_j |g_j| (gabs), with Q = sum q, m1 = sum q g, a2 = sum q g^2 summed in double (8
// lanes, then in order). The interval is third order in s (psi(b) - psi(-b) ~ b / 3) where the
// step's bound was second order, so it is far narrower. Returns NaN when it cannot certify (the
// caller computes f exactly); `half_width` receives the interval's half-width in log units.
double moment_log_expectation(const Distribution& d, const float* g, double s, double gabs, double& half_width) {
  const auto n = static_cast<int64_t>(d.q.size());
  double l0[8] = {}, l1[8] = {}, la[8] = {}, l2[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int t = 0; t < 8; ++t) {
      const double w = d.q[static_cast<size_t>(i + t)], x = static_cast<double>(g[i + t]);
      const double wx = w * x;
      l0[t] += w;
      l1[t] += wx;
      la[t] += std::abs(wx);
      l2[t] += wx * x;
    }
  }
  double Q = 0, m1 = 0, a1 = 0, a2 = 0;
  for (int t = 0; t < 8; ++t) Q += l0[t], m1 += l1[t], a1 += la[t], a2 += l2[t];
  for (; i < n; ++i) {
    const double w = d.q[static_cast<size_t>(i)], x = static_cast<double>(g[i]);
    Q += w, m1 += w * x, a1 += std::abs(w * x), a2 += w * x * x;
  }
  const double b = std::abs(s) * gabs;
  if (!(b < 50)) return std::numeric_limits<double>::quiet_NaN();
  const double base = Q + s * m1;
  const double hi_q = s * s * a2 * psi_pos_upper(b);
  // Each double sum of n terms is within n * 2^-53 of its terms' absolute sum: 1e-9 covers it.
  const double err = 1e-9 * (Q + std::abs(s) * a1 + hi_q);
  const double lower = base + s * s * a2 * psi_neg_lower(b) - err;
  const double upper = base + hi_q + err;
  if (!(lower > 0) || !std::isfinite(upper)) return std::numeric_limits<double>::quiet_NaN();
  const double width = std::log1p((upper - lower) / lower);
  half_width = 0.5 * width;
  return std::log(lower) + half_width;
}

// Exact scores of weight directions (FFN neuron k: W_out's column; attention neuron direction
// h*d_head+n: W_O's column) for the jobs in `jobs` (all of one level and layer, sorted by
// direction): each direction's unscaled projection g0 once (from `shared` when an explain kept it),
// then every job's score with its step's coefficient / sigma, as the exact pass scores it.
void score_directions(const Model& model, LayerContexts& ctx, const std::vector<StepRef>& refs, int64_t l, int level,
                      std::vector<Job*>& jobs, SharedProjections* shared, Evaluation how) {
  if (jobs.empty()) return;
  const ModelConfig& c = model.config();
  const int64_t d = c.d_model, V = c.d_vocab, H = c.n_heads, dh = c.d_head;
  const bool ffn = level == kFfn;
  // The direction of a job: k, or h*d_head+n from the [L, H, d_head, n] index.
  auto dir_of = [&](const Job& j) {
    if (ffn) return j.index % c.d_mlp;
    const int64_t n_t = (refs[j.ref].step->explanation.*kScoreOf[level]).shape.back();
    return (j.index / n_t) % (H * dh);
  };
  std::stable_sort(jobs.begin(), jobs.end(), [&](const Job* a, const Job* b) { return dir_of(*a) < dir_of(*b); });
  const FloatWeights W(ffn ? model.weights().layers[static_cast<size_t>(l)].W_out
                           : model.weights().layers[static_cast<size_t>(l)].W_O,
                       ctx.threads());  // [d_model, d_mlp] or [d_model, H*d_head]
  constexpr size_t kChunk = 128;
  std::vector<float> rows(kChunk * static_cast<size_t>(d)), G(kChunk * static_cast<size_t>(V));
  size_t j0 = 0;
  while (j0 < jobs.size()) {
    // The next directions, up to kChunk of them, and their jobs [j0, j1).
    std::vector<int64_t> dirs;
    size_t j1 = j0;
    while (j1 < jobs.size()) {
      const int64_t dir = dir_of(*jobs[j1]);
      if (dirs.empty() || dirs.back() != dir) {
        if (dirs.size() == kChunk) break;
        dirs.push_back(dir);
      }
      ++j1;
    }
    std::vector<const float*> g0(dirs.size(), nullptr);
    std::vector<size_t> to_project;
    for (size_t i = 0; i < dirs.size(); ++i) {
      if (shared != nullptr) g0[i] = ffn ? shared->ffn(l, dirs[i]) : shared->attn(l, dirs[i]);
      if (g0[i] == nullptr) to_project.push_back(i);
    }
    if (!to_project.empty()) {
      for (size_t i = 0; i < to_project.size(); ++i) {
        for (int64_t r = 0; r < d; ++r) rows[i * static_cast<size_t>(d) + static_cast<size_t>(r)] = W->at(r, dirs[to_project[i]]);
      }
      ctx.projector(jobs[j0]->ref).project_unscaled(rows.data(), static_cast<int64_t>(to_project.size()), d, G.data());
      for (size_t i = 0; i < to_project.size(); ++i) g0[to_project[i]] = G.data() + i * static_cast<size_t>(V);
    }
    std::vector<double> gmin(dirs.size()), gmax(dirs.size());  // per row, shared by its steps
    parallel_for(ctx.threads(), static_cast<int64_t>(dirs.size()), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const auto [lo, hi] = std::minmax_element(g0[static_cast<size_t>(i)], g0[static_cast<size_t>(i)] + V);
        gmin[static_cast<size_t>(i)] = static_cast<double>(*lo);
        gmax[static_cast<size_t>(i)] = static_cast<double>(*hi);
      }
    });
    parallel_for(ctx.threads(), static_cast<int64_t>(j1 - j0), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        Job& job = *jobs[j0 + static_cast<size_t>(i)];
        const Explanation& ex = refs[job.ref].step->explanation;
        const size_t slot = static_cast<size_t>(std::lower_bound(dirs.begin(), dirs.end(), dir_of(job)) - dirs.begin());
        const double s = (ffn ? ex.ffn_coef : ex.attn_coef).values[static_cast<size_t>(job.index)];
        const double inv_scale = 1.0 / ex.frozen_scale;  // as the exact pass scales: s * (1 / sigma)
        const Distribution& dist = ffn ? ctx.ffn(job.ref) : ctx.attn(job.ref);
        if (how == Evaluation::kMoments && dist.softcap <= 0) {
          const double coef = s * inv_scale;
          const double gabs = std::max(std::abs(gmin[slot]), std::abs(gmax[slot]));
          double hw = 0;
          const double f = moment_log_expectation(dist, g0[slot], coef, gabs, hw);
          job.value = std::isnan(f) ? 0.0 : log_prob_increase_from(coef * static_cast<double>(g0[slot][ex.target]), f);
          job.width = std::isnan(f) ? f : hw;
          continue;
        }
        job.value = increase_from_row(dist, g0[slot], gmin[slot], gmax[slot], s * inv_scale, ex.target);
        job.width = 0;
      }
    });
    j0 = j1;
  }
}

// Exact scores of head and head x position combinations sum_n c_n W_O[:, h*d_head+n] (the
// coefficients of the step, summed over positions for the whole head, as the bounded pass forms
// them), projected with their step's frozen scale.
void score_combinations(const Model& model, LayerContexts& ctx, const std::vector<StepRef>& refs, int64_t l,
                        std::vector<Job*>& jobs) {
  if (jobs.empty()) return;
  const ModelConfig& c = model.config();
  const int64_t d = c.d_model, V = c.d_vocab, H = c.n_heads, dh = c.d_head;
  const FloatWeights W_O(model.weights().layers[static_cast<size_t>(l)].W_O, ctx.threads());  // [d_model, H*d_head]
  std::stable_sort(jobs.begin(), jobs.end(), [](const Job* a, const Job* b) { return a->ref < b->ref; });
  constexpr size_t kChunk = 128;
  std::vector<float> rows(kChunk * static_cast<size_t>(d)), G(kChunk * static_cast<size_t>(V));
  size_t j0 = 0;
  while (j0 < jobs.size()) {
    const size_t r = jobs[j0]->ref;
    size_t j1 = j0;
    while (j1 < jobs.size() && j1 - j0 < kChunk && jobs[j1]->ref == r) ++j1;
    const Explanation& ex = refs[r].step->explanation;
    const int64_t Pn = ex.n_positions;
    parallel_for(ctx.threads(), static_cast<int64_t>(j1 - j0), [&](int64_t a, int64_t b) {
      std::vector<double> cf(static_cast<size_t>(dh));
      for (int64_t i = a; i < b; ++i) {
        const Job& job = *jobs[j0 + static_cast<size_t>(i)];
        const bool whole = job.level == kHead;
        const int64_t h = whole ? job.index % H : (job.index / Pn) % H, p = whole ? -1 : job.index % Pn;
        const double* coefs = ex.attn_coef.values.data() + static_cast<size_t>(((l * H + h) * dh) * Pn);  // [d_head, Pn]
        for (int64_t n = 0; n < dh; ++n) {
          double s = 0;
          if (whole) {
            for (int64_t q = 0; q < Pn; ++q) s += coefs[n * Pn + q];
          } else {
            s = coefs[n * Pn + p];
          }
          cf[static_cast<size_t>(n)] = s;
        }
        float* v = rows.data() + i * d;
        for (int64_t k = 0; k < d; ++k) {
          const float* wo = W_O->row(k) + h * dh;
          double acc = 0;
          for (int64_t n = 0; n < dh; ++n) acc += cf[static_cast<size_t>(n)] * static_cast<double>(wo[n]);
          v[k] = static_cast<float>(acc);
        }
      }
    });
    ctx.projector(r).project(rows.data(), static_cast<int64_t>(j1 - j0), d, G.data());
    parallel_for(ctx.threads(), static_cast<int64_t>(j1 - j0), [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        Job& job = *jobs[j0 + static_cast<size_t>(i)];
        job.value = log_prob_increase(ctx.attn(r), G.data() + i * V, 1.0, ex.target);
      }
    });
    j0 = j1;
  }
}

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
  const int64_t L = model.config().n_layers;
  LayerContexts ctx(model, refs);
  // The marked entries as jobs, in a fixed order (step, level, entry), evaluated layer by layer.
  auto select_and_score = [&](Evaluation how, int64_t* sums_needed, bool query_inputs) {
    for (StepRef& r : refs) {
      for (auto& m : r.marked) std::fill(m.begin(), m.end(), 0);
    }
    for (const SumTerms& st : sums) {
      const int64_t n = select_steps(st, refs, bound_tol);
      if (sums_needed != nullptr) sums_needed[st.level] += n;
    }
    if (query_inputs) {
      // The query analyses (Q1-Q3) weight each step's top query_top_n FFN and attention neurons by
      // their scores, with ratios that can be large (spec A17): those are made exact too.
      for (StepRef& r : refs) {
        if (r.pass != refs.front().pass) continue;  // the foil's own steps add to no query sum
        const Explanation& ex = r.step->explanation;
        for (const int lv : {static_cast<int>(kFfn), static_cast<int>(kAttnNeuron)}) {
          const ScoreArray& w = r.widths->*kWidthOf[lv];
          if (w.values.empty()) continue;
          for (const int64_t i : top_indices((ex.*kScoreOf[lv]).values, r.step->options.query_top_n)) {
            if (w.values[static_cast<size_t>(i)] > 0) r.marked[lv][static_cast<size_t>(i)] = 1;
          }
        }
      }
    }
    std::vector<Job> jobs;
    for (size_t r = 0; r < refs.size(); ++r) {
      for (int lv = 0; lv < kLevels; ++lv) {
        const std::vector<char>& m = refs[r].marked[lv];
        for (size_t i = 0; i < m.size(); ++i) {
          if (m[i]) jobs.push_back({r, lv, static_cast<int64_t>(i), 0.0, 0.0});
        }
      }
    }
    std::vector<std::vector<Job*>> by_layer(static_cast<size_t>(L));
    for (Job& j : jobs) by_layer[static_cast<size_t>(layer_of(refs[j.ref].step->explanation.*kScoreOf[j.level], j.index))].push_back(&j);
    for (int64_t l = 0; l < L; ++l) {
      std::vector<Job*>& in_layer = by_layer[static_cast<size_t>(l)];
      if (in_layer.empty()) continue;
      std::vector<char> need_attn(refs.size(), 0), need_ffn(refs.size(), 0);
      std::vector<Job*> per_level[kLevels];
      for (Job* j : in_layer) {
        (j->level == kFfn ? need_ffn : need_attn)[j->ref] = 1;
        per_level[j->level].push_back(j);
      }
      ctx.prepare(l, need_attn, need_ffn);
      score_directions(model, ctx, refs, l, kFfn, per_level[kFfn], shared, how);
      score_directions(model, ctx, refs, l, kAttnNeuron, per_level[kAttnNeuron], shared, how);
      std::vector<Job*> combos = per_level[kHead];
      combos.insert(combos.end(), per_level[kHeadPosition].begin(), per_level[kHeadPosition].end());
      score_combinations(model, ctx, refs, l, combos);  // exact: few, and each is its own vector
    }
    return jobs;
  };
  // Round 1: the widest steps of each sum that needs it, certified again from their rows' moments
  // (their new widths replace the step's); round 2: where the sum of the widths is still above
  // bound_tol, the widest of those over the whole vocabulary, exactly.
  int64_t sums_needed[kLevels] = {};
  const std::vector<Job> certified = select_and_score(Evaluation::kMoments, sums_needed, false);
  for (const Job& j : certified) {
    if (!std::isnan(j.width)) (refs[j.ref].widths->*kWidthOf[j.level]).values[static_cast<size_t>(j.index)] = j.width;
  }
  const std::vector<Job> exact = select_and_score(Evaluation::kExact, nullptr, true);

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
  for (const Job& j : certified) {
    if (!std::isnan(j.width) && !refs[j.ref].marked[j.level][static_cast<size_t>(j.index)]) apply(j);
  }
  for (const Job& j : exact) apply(j);
  redo_query_sums(model, ctx, refs, replaced, s);
  for (int lv = 0; lv < kLevels; ++lv) {
    const std::string name = kName[lv];
    s.method_counts[name + "_tightened"] = n_moments[lv] + n_exact[lv];
    s.method_counts[name + "_tightened_exact"] = n_exact[lv];
    s.method_counts[name + "_sums_tightened"] = sums_needed[lv];
  }
  count_query_sets(s, set_size);
}

}  // namespace reslens::analysis
