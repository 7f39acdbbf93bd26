// diff(): one prompt explained under two models, every level side by side with B - A, the
// components ranked by how much they moved, and the weights/activation split of the neurons that
// moved most (reslens/diff.h, docs/diff.md). It lives in the report module because "every level"
// is the list of arrays `reslens explain --out` writes (explanation_arrays), kept in one place.
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>

#include "analysis/explain_internal.h"
#include "analysis/projector.h"
#include "analysis/trace_view.h"
#include "reslens/diff.h"
#include "reslens/error.h"
#include "report/explain_document.h"

namespace reslens {

std::string shape_text(const Model& m) {
  const ModelConfig& c = m.config();
  std::ostringstream s;
  s << to_string(c.architecture) << " L=" << c.n_layers << " d_model=" << c.d_model << " H=" << c.n_heads
    << " kv=" << c.n_key_value_heads << " d_head=" << c.d_head << " d_mlp=" << c.d_mlp << " vocab=" << c.d_vocab;
  if (c.n_experts > 0) s << " experts=" << c.n_experts << "x" << c.d_expert;
  if (c.final_softcap > 0) s << " final_softcap=" << c.final_softcap;
  return s.str();
}

void require_same_shape(const Model& a, const Model& b) {
  const std::string sa = shape_text(a), sb = shape_text(b);
  const ModelConfig &ca = a.config(), &cb = b.config();
  // The text lists every field compared except these two, which change what a neuron is.
  if (sa != sb || ca.gated_mlp != cb.gated_mlp || ca.d_shared_expert != cb.d_shared_expert) {
    throw UnsupportedError("cannot diff models of different shapes: A (" + a.path().string() + ") is " + sa +
                           (ca.gated_mlp ? " gated" : "") + "; B (" + b.path().string() + ") is " + sb +
                           (cb.gated_mlp ? " gated" : ""));
  }
  const Tokenizer &ta = a.tokenizer(), &tb = b.tokenizer();
  if (ta.n_vocab() != tb.n_vocab()) {
    throw UnsupportedError("cannot diff models with different vocabularies: A (" + a.path().string() + ", " + sa + ") has " +
                           std::to_string(ta.n_vocab()) + " tokens, B (" + b.path().string() + ", " + sb + ") has " +
                           std::to_string(tb.n_vocab()));
  }
  for (int32_t id = 0; id < ta.n_vocab(); ++id) {
    if (ta.piece(id) != tb.piece(id)) {
      throw UnsupportedError("cannot diff models with different vocabularies: token " + std::to_string(id) + " is '" +
                             report::clean(ta.piece(id)) + "' in A (" + a.path().string() + ", " + sa + ") and '" +
                             report::clean(tb.piece(id)) + "' in B (" + b.path().string() + ", " + sb + ")");
    }
  }
}

namespace {

// The label of element `i` of an explain array, as the reports name it.
std::string element_label(const std::string& level, const std::vector<int64_t>& shape, int64_t i) {
  if (level == "layer_scores") return label_layer(i / 2, i % 2 == 1);
  if (level == "head_scores") return label_head(i / shape[1], i % shape[1]);
  if (level == "ffn_neuron_scores") return label_ffn_neuron(i / shape[1], i % shape[1]);
  const report::Unpacked u = report::unpack_attn(shape, i);
  return label_attn_neuron(u.l, u.h, u.n, u.p);
}

std::vector<int64_t> unflatten(const std::vector<int64_t>& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = i % shape[k];
    i /= shape[k];
  }
  return idx;
}


RankedChanges rank_changes(const LevelDiff& lv, int top) {
  RankedChanges out;
  const std::vector<int64_t> ra = score_ranks(lv.a.values), rb = score_ranks(lv.b.values);
  std::vector<ComponentChange> all;
  for (int64_t i = 0; i < lv.delta.size(); ++i) {
    const auto k = static_cast<size_t>(i);
    if (lv.delta.values[k] == 0 && ra[k] == rb[k]) continue;  // unchanged: in neither list
    all.push_back({element_label(lv.name, lv.a.shape, i), unflatten(lv.a.shape, i), lv.a.values[k], lv.b.values[k],
                   lv.delta.values[k], ra[k], rb[k]});
  }
  // Ties keep the array order (stable sorts), so the lists do not depend on anything but the scores.
  std::vector<ComponentChange> by_delta;
  for (const ComponentChange& c : all) {
    if (c.delta != 0) by_delta.push_back(c);
  }
  std::stable_sort(by_delta.begin(), by_delta.end(),
                   [](const ComponentChange& x, const ComponentChange& y) { return std::abs(x.delta) > std::abs(y.delta); });
  std::vector<ComponentChange> by_rank;
  for (const ComponentChange& c : all) {
    if (c.rank_a != c.rank_b) by_rank.push_back(c);
  }
  std::stable_sort(by_rank.begin(), by_rank.end(), [](const ComponentChange& x, const ComponentChange& y) {
    return std::llabs(x.rank_b - x.rank_a) > std::llabs(y.rank_b - y.rank_a);
  });
  if (static_cast<int>(by_delta.size()) > top) by_delta.resize(static_cast<size_t>(top));
  if (static_cast<int>(by_rank.size()) > top) by_rank.resize(static_cast<size_t>(top));
  out.by_delta = std::move(by_delta);
  out.by_rank = std::move(by_rank);
  return out;
}

// Model A's side of the split: its vocabulary projection frozen at its own final vector, the
// distributions of the contexts the neurons are scored in, and the value vectors of both models.
class SplitContext {
 public:
  SplitContext(const Model& a, const ExplainedPrompt& ea)
      : a_(a), trace_(a, *ea.run, false), P_(ea.options.position), w_(ea.options.target),
        threads_(ea.options.n_threads > 0 ? ea.options.n_threads : default_threads()),
        proj_(a, {trace_.resid_post(a.config().n_layers - 1, P_), static_cast<size_t>(a.config().d_model)},
              ea.options.include_final_bias, threads_) {}

  // Imp_A(c * w) in the context `x` for a value vector w [d_model].
  double importance(const float* x, const float* w, double c) const {
    const int64_t V = a_.config().d_vocab;
    std::vector<float> logits(static_cast<size_t>(V)), g(static_cast<size_t>(V));  // [d_vocab]
    proj_.project(x, 1, a_.config().d_model, logits.data());
    const analysis::Distribution dist =
        analysis::make_distribution(logits, proj_.bias(), static_cast<double>(a_.config().final_softcap));
    proj_.project(w, 1, a_.config().d_model, g.data());
    return analysis::log_prob_increase(dist, g.data(), c, w_);
  }

  void split(NeuronSplit& s, const float* x, const float* wa, const float* wb) const {
    const int64_t d = a_.config().d_model;
    double n2 = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double e = static_cast<double>(wb[i]) - static_cast<double>(wa[i]);
      n2 += e * e;
    }
    s.weight_norm = std::sqrt(n2);
    // Both terms through the same path, so identical value vectors give exactly 0.
    s.weights = n2 == 0 ? 0.0 : importance(x, wb, s.coef_a) - importance(x, wa, s.coef_a);
    s.activation = s.change.delta - s.weights;
  }

  // W_out's columns [d_mlp, d_model] of layer l under A and B, converted once per layer.
  const std::vector<float>& ffn_values(const Model& m, int64_t l) {
    auto& cache = &m == &a_ ? ffn_a_ : ffn_b_;
    auto it = cache.find(l);
    if (it == cache.end()) it = cache.emplace(l, analysis::ffn_value_vectors(m, l)).first;
    return it->second;
  }
  const std::vector<float>& attn_values(const Model& m, int64_t l) {
    auto& cache = &m == &a_ ? attn_a_ : attn_b_;
    auto it = cache.find(l);
    if (it == cache.end()) it = cache.emplace(l, analysis::attn_value_vectors(m, l)).first;
    return it->second;
  }

  const analysis::TraceView& trace() const { return trace_; }
  int64_t P() const { return P_; }

 private:
  const Model& a_;
  analysis::TraceView trace_;
  int64_t P_;
  int32_t w_;
  int threads_;
  analysis::VocabProjector proj_;
  std::map<int64_t, std::vector<float>> ffn_a_, ffn_b_, attn_a_, attn_b_;
};

const LevelDiff* find_level(const ModelDiff& d, const std::string& name) {
  for (const LevelDiff& lv : d.levels) {
    if (lv.name == name) return &lv;
  }
  return nullptr;
}

void compute_splits(const Model& a, const Model& b, ModelDiff& d, int split_top) {
  if (a.config().n_experts > 0) return;  // an expert neuron's value vector is not a W_out column (docs/diff.md)
  SplitContext ctx(a, d.a);
  const int64_t dm = a.config().d_model;
  const Explanation &xa = d.a.explanation, &xb = d.b.explanation;
  const LevelDiff* ffn = find_level(d, "ffn_neuron_scores");
  RankedChanges top_ffn = rank_changes(*ffn, split_top);
  for (const ComponentChange& c : top_ffn.by_delta) {
    NeuronSplit s;
    s.change = c;
    s.ffn = true;
    const int64_t l = c.index[0], k = c.index[1];
    s.coef_a = xa.ffn_coef.at({l, k});
    s.coef_b = xb.ffn_coef.at({l, k});
    ctx.split(s, ctx.trace().resid_mid(l, ctx.P()), ctx.ffn_values(a, l).data() + k * dm,
              ctx.ffn_values(b, l).data() + k * dm);
    d.splits.push_back(s);
  }
  const LevelDiff* attn = find_level(d, "attn_neuron_scores");
  const int64_t dh = a.config().d_head;
  RankedChanges top_attn = rank_changes(*attn, split_top);
  for (const ComponentChange& c : top_attn.by_delta) {
    NeuronSplit s;
    s.change = c;
    s.ffn = false;
    const int64_t l = c.index[0], h = c.index[1], n = c.index[2], p = c.index[3];
    s.coef_a = xa.attn_coef.at({l, h, n, p});
    s.coef_b = xb.attn_coef.at({l, h, n, p});
    const int64_t col = h * dh + n;
    ctx.split(s, ctx.trace().resid_pre(l, ctx.P()), ctx.attn_values(a, l).data() + col * dm,
              ctx.attn_values(b, l).data() + col * dm);
    d.splits.push_back(s);
  }
}

int32_t top_token(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());  // ties: the first
}

}  // namespace

std::vector<int64_t> score_ranks(const std::vector<double>& v) {
  std::vector<double> sorted = v;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  std::vector<int64_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    r[i] = 1 + (std::lower_bound(sorted.begin(), sorted.end(), v[i], std::greater<double>()) - sorted.begin());
  }
  return r;
}

ModelDiff diff(const Model& a, const Model& b, const ExplainRequest& request, const DiffOptions& options) {
  require_same_shape(a, b);
  ModelDiff d;
  d.path_a = a.path().string();
  d.path_b = b.path().string();
  d.a = explain(a, request);
  // The default target (-1: the top prediction) as the token it resolved to, for B and the reports.
  d.a.options.target = d.a.explanation.target;
  d.a.options.foil = d.a.explanation.foil;
  // B reads exactly what A read: the same ids, position, target and foil (by id, so no name is
  // resolved again at B's logits).
  ExplainRequest rb = request;
  rb.tokens = d.a.tokens;
  rb.prompt.clear();
  rb.position = d.a.options.position;
  rb.target = TokenName{d.a.options.target, {}};
  rb.target_tokens.clear();
  rb.foil.reset();
  rb.foil_tokens.clear();
  if (d.a.options.foil >= 0) rb.foil = TokenName{d.a.options.foil, {}};
  d.b = explain(b, rb);
  const size_t n = d.a.tokens.size();
  d.prediction_a = top_token(logits_at(a, *d.a.run, d.a.options.position, n));
  d.prediction_b = top_token(logits_at(b, *d.b.run, d.b.options.position, n));

  auto arrays_a = report::explanation_arrays(d.a.explanation);
  auto arrays_b = report::explanation_arrays(d.b.explanation);
  if (arrays_a.size() != arrays_b.size()) throw InternalError("diff: the two explanations have different arrays");
  for (size_t i = 0; i < arrays_a.size(); ++i) {
    auto& [name, sa] = arrays_a[i];
    auto& [name_b, sb] = arrays_b[i];
    if (name != name_b || sa.shape != sb.shape) throw InternalError("diff: array " + name + " differs in shape");
    LevelDiff lv{name, sa, sb, ScoreArray(sa.shape)};
    for (size_t k = 0; k < sa.values.size(); ++k) {
      lv.delta.values[k] = sb.values[k] - sa.values[k];
      d.max_abs_delta = std::max(d.max_abs_delta, std::abs(lv.delta.values[k]));
    }
    d.levels.push_back(std::move(lv));
  }
  const int top = std::max(options.top, 0);
  if (const LevelDiff* lv = find_level(d, "layer_scores")) d.layers = rank_changes(*lv, top);
  if (const LevelDiff* lv = find_level(d, "head_scores")) d.heads = rank_changes(*lv, top);
  if (const LevelDiff* lv = find_level(d, "ffn_neuron_scores")) d.ffn_neurons = rank_changes(*lv, top);
  if (const LevelDiff* lv = find_level(d, "attn_neuron_scores")) d.attn_neurons = rank_changes(*lv, top);
  compute_splits(a, b, d, std::max(options.split_top, 0));
  return d;
}

}  // namespace reslens
