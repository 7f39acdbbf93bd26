// graph(): the prediction's circuit (in the report module: its nodes carry the reports' labels) from explain()'s value scores and spec §4.3's inner products
// (reslens/graph.h, docs/graph.md). Inner products are in double without norm scale, mean term or
// biases, as the query analyses compute them (query_scores.cpp): the ratio cancels the common 1/sigma.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <sstream>
#include <tuple>

#include "analysis/explain_internal.h"
#include "analysis/ranking.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "reslens/error.h"
#include "reslens/graph.h"
#include "reslens/report.h"

namespace reslens {

namespace {

using Kind = GraphNode::Kind;

// key[i] = row r of m times gamma[i] (gamma empty: no pre-norm, the row itself). [d_model]
std::vector<double> key_row(const MatrixView& m, int64_t r, const VectorView& gamma, int64_t d) {
  std::vector<float> decoded;
  const float* row = row_floats(m, r, decoded);
  std::vector<double> k(static_cast<size_t>(d));
  for (int64_t i = 0; i < d; ++i) {
    k[static_cast<size_t>(i)] = static_cast<double>(row[i]) * (gamma.empty() ? 1.0 : static_cast<double>(gamma[i]));
  }
  return k;
}

double dot(const float* a, const std::vector<double>& k) {
  double s = 0;
  for (size_t i = 0; i < k.size(); ++i) s += static_cast<double>(a[i]) * k[i];
  return s;
}

// A neuron that other nodes query: its key K, the denominator D and where it reads.
struct Reader {
  int node = 0;
  int64_t layer = 0, position = 0;
  std::vector<double> K;  // [d_model]
  double D = 0;
  double multiplier = 0;  // its Imp (value neurons) or its effect (query neurons)
};

// FFN neuron (l, k)'s key (spec §4.3 Q1's default: c_fc / up_proj row times gamma_2) and D = the sum
// of the components of r_p^l dotted with it (a parallel-residual MLP does not read A^l).
Reader ffn_reader(const Model& model, const analysis::TraceView& t, int64_t l, int64_t k, int64_t p) {
  const ModelConfig& c = model.config();
  const LayerWeights& Lw = model.weights().layers[static_cast<size_t>(l)];
  Reader r;
  r.layer = l;
  r.position = p;
  r.K = key_row(Lw.W_in, k, Lw.ln2_w, c.d_model);
  r.D = dot(t.embed(p), r.K);
  for (int64_t j = 0; j < l; ++j) r.D += dot(t.attn_out(j, p), r.K) + dot(t.mlp_out(j, p), r.K);
  if (!c.parallel_residual) r.D += dot(t.attn_out(l, p), r.K);
  return r;
}

// Attention neuron (l, h, n) at source p: the value row of its KV head times gamma_1, D = h_p^{l-1} . K.
Reader attn_reader(const Model& model, const analysis::TraceView& t, int64_t l, int64_t h, int64_t n, int64_t p) {
  const ModelConfig& c = model.config();
  const LayerWeights& Lw = model.weights().layers[static_cast<size_t>(l)];
  Reader r;
  r.layer = l;
  r.position = p;
  const int64_t kvh = h / (c.n_heads / c.n_key_value_heads);
  r.K = key_row(Lw.W_V, kvh * c.d_head + n, Lw.ln1_w, c.d_model);
  r.D = dot(t.resid_pre(l, p), r.K);
  return r;
}

class Builder {
 public:
  explicit Builder(CircuitGraph& g) : g_(g) {}

  int node(GraphNode n) {
    auto it = index_.find(n.id);
    if (it != index_.end()) return it->second;
    g_.nodes.push_back(std::move(n));
    const int i = static_cast<int>(g_.nodes.size()) - 1;
    index_[g_.nodes.back().id] = i;
    return i;
  }
  void edge(int s, int t, double w) { g_.edges.push_back({s, t, w}); }
  int find(const std::string& id) const {
    auto it = index_.find(id);
    return it == index_.end() ? -1 : it->second;
  }

 private:
  CircuitGraph& g_;
  std::map<std::string, int> index_;
};

std::string id3(int64_t a, int64_t b, int64_t c) {
  return std::to_string(a) + "_" + std::to_string(b) + "_" + std::to_string(c);
}

void require_share(double v, const char* flag) {
  if (!(v >= 0.0 && v <= 1.0)) {
    std::ostringstream s;
    s << flag << " must be a share of the total in [0, 1], got " << v;
    throw InvalidArgument(s.str());
  }
}

// The fewest items (largest first) whose values reach `share` of their total; ties keep the order.
// share 1 keeps every nonzero item, share 0 none.
std::vector<size_t> keep_share(const std::vector<double>& mags, double share) {
  std::vector<size_t> order(mags.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mags[a] > mags[b]; });
  const double total = std::accumulate(mags.begin(), mags.end(), 0.0);
  std::vector<size_t> kept;
  double sum = 0;
  for (size_t i : order) {
    if (share < 1.0 ? sum >= share * total : mags[i] == 0) break;
    kept.push_back(i);
    sum += mags[i];
  }
  return kept;
}

void prune(CircuitGraph& g, int logit) {
  const GraphOptions& o = g.options;
  g.nodes_before = static_cast<int64_t>(g.nodes.size());
  g.edges_before = static_cast<int64_t>(g.edges.size());
  for (const GraphEdge& e : g.edges) g.nodes[static_cast<size_t>(e.source)].influence += std::abs(e.weight);
  std::vector<int> candidates;
  std::vector<double> influence;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (static_cast<int>(i) == logit) continue;
    candidates.push_back(static_cast<int>(i));
    influence.push_back(g.nodes[i].influence);
  }
  std::vector<char> keep(g.nodes.size(), 0);
  keep[static_cast<size_t>(logit)] = 1;
  for (size_t k : keep_share(influence, o.node_threshold)) keep[static_cast<size_t>(candidates[k])] = 1;
  std::vector<GraphEdge> inner;
  std::vector<double> mags;
  for (const GraphEdge& e : g.edges) {
    if (keep[static_cast<size_t>(e.source)] && keep[static_cast<size_t>(e.target)]) {
      inner.push_back(e);
      mags.push_back(std::abs(e.weight));
    }
  }
  std::vector<size_t> kept_edges = keep_share(mags, o.edge_threshold);
  std::sort(kept_edges.begin(), kept_edges.end());  // the edges in the order they were built
  std::vector<char> used(g.nodes.size(), 0);
  std::vector<GraphEdge> edges;
  for (size_t k : kept_edges) {
    edges.push_back(inner[k]);
    used[static_cast<size_t>(inner[k].source)] = used[static_cast<size_t>(inner[k].target)] = 1;
  }
  if (edges.empty()) {
    std::ostringstream s;
    s << "the graph is empty after pruning: --node-threshold " << o.node_threshold << " and --edge-threshold "
      << o.edge_threshold << " keep no edge of the " << g.edges_before << " between " << g.nodes_before
      << " nodes; raise the thresholds";
    throw InvalidArgument(s.str());
  }
  // Renumber: the logit first, then the kept nodes in the order they were built.
  std::vector<int> to(g.nodes.size(), -1);
  std::vector<GraphNode> nodes;
  to[static_cast<size_t>(logit)] = 0;
  nodes.push_back(g.nodes[static_cast<size_t>(logit)]);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (static_cast<int>(i) == logit || !used[i]) continue;
    to[i] = static_cast<int>(nodes.size());
    nodes.push_back(g.nodes[i]);
  }
  for (GraphEdge& e : edges) {
    e.source = to[static_cast<size_t>(e.source)];
    e.target = to[static_cast<size_t>(e.target)];
  }
  g.nodes = std::move(nodes);
  g.edges = std::move(edges);
}

}  // namespace

CircuitGraph graph(const Model& model, const ExplainRequest& request, const GraphOptions& options) {
  require_share(options.node_threshold, "--node-threshold");
  require_share(options.edge_threshold, "--edge-threshold");
  const ModelConfig& c = model.config();
  if (c.n_experts > 0) {
    throw UnsupportedError("graph: mixture-of-experts models are not supported (an expert neuron's key is not one W_in row)");
  }
  CircuitGraph g;
  g.options = options;
  g.explained = explain(model, request);
  g.explained.options.target = g.explained.explanation.target;  // -1 (the top prediction) as the token
  const Explanation& ex = g.explained.explanation;
  const analysis::TraceView t(model, *g.explained.run, false);
  const int64_t L = c.n_layers, N = c.d_mlp, H = c.n_heads, dh = c.d_head, d = c.d_model;
  const int64_t P = g.explained.options.position, Pn = ex.n_positions;
  const int32_t w = g.explained.options.target;
  const int threads = g.explained.options.n_threads > 0 ? g.explained.options.n_threads : default_threads();
  Builder b(g);

  GraphNode logit{Kind::kLogit, "L_" + std::to_string(w) + "_" + std::to_string(P), L, w, P,
                  model.tokenizer().token_text(w), 0, 0, ex.real_log_prob};
  const int logit_i = b.node(logit);
  std::vector<int> tokens;
  for (int64_t p = 0; p < Pn; ++p) {
    const int32_t id = g.explained.tokens[static_cast<size_t>(p)];
    tokens.push_back(b.node({Kind::kToken, "E_" + std::to_string(id) + "_" + std::to_string(p), -1, id, p,
                             model.tokenizer().token_text(id), 0, 0, 0}));
  }

  // Value neurons: FFN at P, attention at their source positions (through their heads).
  std::vector<Reader> values;
  for (int64_t idx : analysis::top_indices(ex.ffn_neuron.values, options.top_values)) {
    const int64_t l = idx / N, k = idx % N;
    const double imp = ex.ffn_neuron.values[static_cast<size_t>(idx)];
    const int v = b.node({Kind::kFfnValue, id3(l, k, P), l, k, P, label_ffn_neuron(l, k), 0,
                          ex.ffn_coef.values[static_cast<size_t>(idx)], imp});
    b.edge(v, logit_i, imp);
    Reader r = ffn_reader(model, t, l, k, P);
    r.node = v;
    r.multiplier = imp;
    values.push_back(std::move(r));
  }
  auto head_node = [&](int64_t l, int64_t h) {
    const std::string id = id3(l, N + H * dh + h, P);
    if (const int i = b.find(id); i >= 0) return i;
    const double imp = ex.head.at({l, h});
    const int i = b.node({Kind::kHead, id, l, N + H * dh + h, P, label_head(l, h), 0, 0, imp});
    b.edge(i, logit_i, imp);
    return i;
  };
  for (int64_t idx : analysis::top_indices(ex.head.values, options.top_heads)) head_node(idx / H, idx % H);
  for (int64_t idx : analysis::top_indices(ex.attn_neuron.values, options.top_values)) {
    const int64_t p = idx % Pn, n = (idx / Pn) % dh, h = (idx / (Pn * dh)) % H, l = idx / (Pn * dh * H);
    const double imp = ex.attn_neuron.values[static_cast<size_t>(idx)];
    const int v = b.node({Kind::kAttnValue, id3(l, N + h * dh + n, p), l, N + h * dh + n, p,
                          label_attn_neuron(l, h, n, p), 0, ex.attn_coef.values[static_cast<size_t>(idx)], imp});
    b.edge(v, head_node(l, h), imp);
    Reader r = attn_reader(model, t, l, h, n, p);
    r.node = v;
    r.multiplier = imp;
    values.push_back(std::move(r));
  }

  // Query FFN neurons below each value neuron, at its position: (m fc2_k . K / D) * Imp_v.
  struct Query {
    std::vector<std::pair<size_t, double>> to;  // (value, weight)
    double total = 0;                           // sum of |weights|
  };
  std::map<std::tuple<int64_t, int64_t, int64_t>, Query> queries;  // (layer, neuron, position)
  for (int64_t lq = 0; lq + 1 < L; ++lq) {
    std::vector<size_t> above;
    for (size_t v = 0; v < values.size(); ++v) {
      if (values[v].layer > lq) above.push_back(v);
    }
    if (above.empty()) continue;
    const std::vector<float> fc2 = analysis::ffn_value_vectors(model, lq);  // [d_mlp, d_model]
    // Every (value, neuron) weight is its own double sum over d_model, so splitting the neurons over
    // threads changes no bit; the map is filled afterwards in a fixed order.
    std::vector<double> wq(above.size() * static_cast<size_t>(N));  // [above, d_mlp]
    parallel_for(threads, N, [&](int64_t k0, int64_t k1) {
      for (size_t i = 0; i < above.size(); ++i) {
        const Reader& r = values[above[i]];
        const float* m = t.post(lq, r.position);
        for (int64_t k = k0; k < k1; ++k) {
          wq[i * static_cast<size_t>(N) + static_cast<size_t>(k)] =
              static_cast<double>(m[k]) * dot(fc2.data() + k * d, r.K) / r.D * r.multiplier;
        }
      }
    });
    for (size_t i = 0; i < above.size(); ++i) {
      for (int64_t k = 0; k < N; ++k) {
        const double x = wq[i * static_cast<size_t>(N) + static_cast<size_t>(k)];
        Query& q = queries[{lq, k, values[above[i]].position}];
        q.to.emplace_back(above[i], x);
        q.total += std::abs(x);
      }
    }
  }
  std::vector<std::pair<double, std::tuple<int64_t, int64_t, int64_t>>> ranked;
  for (const auto& [key, q] : queries) ranked.emplace_back(q.total, key);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
  if (static_cast<int64_t>(ranked.size()) > options.top_queries) ranked.resize(static_cast<size_t>(std::max(options.top_queries, 0)));
  std::vector<Reader> readers = values;
  for (const auto& [total, key] : ranked) {
    const auto [l, k, p] = key;
    const Query& q = queries[key];
    // A query neuron that is also a value neuron (FFN at P) is one node with both kinds of edges.
    const int qi = b.node({Kind::kFfnQuery, id3(l, k, p), l, k, p, label_ffn_neuron(l, k) + (p == P ? "" : "@" + std::to_string(p)),
                           0, static_cast<double>(t.post(l, p)[k]), 0});
    double effect = 0;
    for (const auto& [v, wq] : q.to) {
      b.edge(qi, values[v].node, wq);
      effect += wq;
    }
    if (g.nodes[static_cast<size_t>(qi)].kind != Kind::kFfnQuery) continue;  // already a value: its token edge is there
    Reader r = ffn_reader(model, t, l, k, p);
    r.node = qi;
    r.multiplier = effect;
    readers.push_back(std::move(r));
  }
  // The embedding's share of each neuron's coefficient, times what the neuron carries.
  for (const Reader& r : readers) {
    b.edge(tokens[static_cast<size_t>(r.position)], r.node, dot(t.embed(r.position), r.K) / r.D * r.multiplier);
  }
  prune(g, logit_i);
  return g;
}

}  // namespace reslens
