// Weight-only bound quantities (computed once per model, cached) and the bounded log-expectation.
#include "analysis/bounds.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>

#include "analysis/cache_files.h"
#include "analysis/progress.h"
#include "analysis/projection_sketch.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/gemm.h"
#include "ops/vector_ops.h"

namespace reslens::analysis {

namespace {

// Float GEMMs feed these bounds; a small relative slack keeps them upper bounds despite rounding.
constexpr double kSlack = kBoundSlack;
// v2: the quartic norms (ffn_quartic, attn_quartic) follow the Gram matrices; v3: then the FFN
// directions' sketch forms (ffn_forms). An older file is ignored and rebuilt.
constexpr char kCacheMagic[8] = {'R', 'L', 'B', 'N', 'D', 'v', '3', '\n'};

void write_vecs(std::ostream& out, const std::vector<std::vector<double>>& vs) {
  const uint64_t n = vs.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  for (const auto& v : vs) {
    const uint64_t k = v.size();
    out.write(reinterpret_cast<const char*>(&k), 8);
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(k * 8));
  }
}

bool read_vecs(std::ifstream& in, std::vector<std::vector<double>>& vs) {
  uint64_t n = 0;
  if (!in.read(reinterpret_cast<char*>(&n), 8) || n > (1u << 20)) return false;
  vs.resize(n);
  for (auto& v : vs) {
    uint64_t k = 0;
    if (!in.read(reinterpret_cast<char*>(&k), 8) || k > (uint64_t{1} << 32)) return false;
    v.resize(k);
    if (!in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(k * 8))) return false;
  }
  return true;
}

bool load_cached(const std::filesystem::path& p, uint64_t fp, ModelBounds& mb) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  char magic[8];
  uint64_t got = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kCacheMagic, 8) != 0) return false;
  if (!in.read(reinterpret_cast<char*>(&got), 8) || got != fp) return false;
  if (!in.read(reinterpret_cast<char*>(&mb.umax), 8)) return false;
  return read_vecs(in, mb.ffn_gamma_norm) && read_vecs(in, mb.ffn_norm) && read_vecs(in, mb.attn_gamma_norm) &&
         read_vecs(in, mb.attn_norm) && read_vecs(in, mb.head_gram_gamma) && read_vecs(in, mb.head_gram) &&
         read_vecs(in, mb.ffn_quartic) && read_vecs(in, mb.attn_quartic) && read_vecs(in, mb.ffn_forms);
}

void store_cached(const std::filesystem::path& p, uint64_t fp, const ModelBounds& mb) {
  write_cache_file(p, [&](std::ostream& out) {
    out.write(kCacheMagic, 8);
    out.write(reinterpret_cast<const char*>(&fp), 8);
    out.write(reinterpret_cast<const char*>(&mb.umax), 8);
    write_vecs(out, mb.ffn_gamma_norm);
    write_vecs(out, mb.ffn_norm);
    write_vecs(out, mb.attn_gamma_norm);
    write_vecs(out, mb.attn_norm);
    write_vecs(out, mb.head_gram_gamma);
    write_vecs(out, mb.head_gram);
    write_vecs(out, mb.ffn_quartic);
    write_vecs(out, mb.attn_quartic);
    write_vecs(out, mb.ffn_forms);
  });
}

// Gamma-norms and norms of every row of y0 [n, d], and (when group > 0) the Gram matrices of each
// consecutive block of `group` rows.
void direction_stats(const std::vector<float>& y0, int64_t n, int64_t d, const std::vector<float>& gamma, int64_t group,
                     int threads, std::vector<double>& gnorm, std::vector<double>& norm, std::vector<double>* gram_g,
                     std::vector<double>* gram) {
  std::vector<float> z(static_cast<size_t>(n * d));  // y0 Gamma
  ops::matmul_nt(n, d, d, y0.data(), d, gamma.data(), d, z.data(), d, threads);
  gnorm.assign(static_cast<size_t>(n), 0.0);
  norm.assign(static_cast<size_t>(n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double a = 0, b = 0;
    for (int64_t k = 0; k < d; ++k) {
      const double y = static_cast<double>(y0[static_cast<size_t>(i * d + k)]);
      a += static_cast<double>(z[static_cast<size_t>(i * d + k)]) * y;
      b += y * y;
    }
    gnorm[static_cast<size_t>(i)] = std::max(0.0, a) * kSlack;
    norm[static_cast<size_t>(i)] = std::sqrt(b) * kSlack;
  }
  if (group <= 0) return;
  const int64_t blocks = n / group;
  gram_g->assign(static_cast<size_t>(blocks * group * group), 0.0);
  gram->assign(static_cast<size_t>(blocks * group * group), 0.0);
  parallel_for(threads, blocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      for (int64_t i = 0; i < group; ++i) {
        for (int64_t j = 0; j < group; ++j) {
          double sg = 0, se = 0;
          const float* yi = y0.data() + (b * group + i) * d;
          const float* yj = y0.data() + (b * group + j) * d;
          const float* zi = z.data() + (b * group + i) * d;
          for (int64_t k = 0; k < d; ++k) {
            sg += static_cast<double>(zi[k]) * static_cast<double>(yj[k]);
            se += static_cast<double>(yi[k]) * static_cast<double>(yj[k]);
          }
          (*gram_g)[static_cast<size_t>((b * group + i) * group + j)] = sg;
          (*gram)[static_cast<size_t>((b * group + i) * group + j)] = se;
        }
      }
    }
  });
}

// |g0|_4^2 = sqrt(sum_j g0_j^4) of every row's projection g0 = W_U y0 (y0 [n, d]) over the whole
// vocabulary. Where the int8 sketch runs fast, from its exact integer products with certified error
// terms (sketched_quartic_norms: ~17% looser, 4-8x cheaper; GPT-2 124M's bounds build takes 4 s
// with them against 12 s with float rows, and a 7B one would spend minutes more); else the rows
// projected a chunk at a time (at most ~64 MB of them), each
// row's sum in double in vocabulary order. Neither depends on the thread count.
std::vector<double> quartic_norms(const Model& m, const std::vector<float>& y0, int64_t n, int64_t d, int threads,
                                  const ExplainProgressFn* progress) {
  if (projection_sketch_available()) {
    const std::shared_ptr<const ProjectionSketch> sk = projection_sketch(m, threads, progress);
    std::vector<double> out = sketched_quartic_norms(*sk, y0.data(), n, threads);
    if (n == 0 || std::isfinite(out.front())) return out;  // (infinite: no certified lambda_max)
  }
  const int64_t V = m.config().d_vocab;
  const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 24) / std::max<int64_t>(V, 1), 8, 256);
  std::vector<float> G(static_cast<size_t>(chunk * V));  // [chunk, V]
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t nr = std::min(chunk, n - r0);
    matmul_weights(nr, y0.data() + r0 * d, d, m.weights().W_U, G.data(), V, threads);
    parallel_for(threads, nr, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) {
        const float* g = G.data() + i * V;
        double s4 = 0;
        for (int64_t j = 0; j < V; ++j) {
          const double x = static_cast<double>(g[j]) * static_cast<double>(g[j]);
          s4 += x * x;
        }
        out[static_cast<size_t>(r0 + i)] = std::sqrt(s4) * kSlack;
      }
    });
  }
  return out;
}

std::shared_ptr<ModelBounds> compute(const Model& m, int threads, const ExplainProgressFn* progress) {
  const ModelConfig& c = m.config();
  const MatrixView& U = m.weights().W_U;
  auto mb = std::make_shared<ModelBounds>();
  mb->d = c.d_model;
  mb->V = c.d_vocab;
  const int64_t d = c.d_model, V = c.d_vocab;
  const uint64_t fp = model_fingerprint(m);
  const std::filesystem::path dir = cache_dir();
  const std::filesystem::path file = dir.empty() ? std::filesystem::path() : dir / ("bounds-" + std::to_string(fp) + ".bin");
  if (!file.empty() && load_cached(file, fp, *mb)) return mb;
  report_progress(progress, "bounds", 0, c.n_layers);
  // Not cached: W_U's largest row norm and Gamma = W_U^T W_U (through a transposed copy, dropped after).
  std::vector<float> unembed_t(static_cast<size_t>(d * V));  // [d, V]
  std::vector<float> row;  // [d] a decoded row of an encoded W_U
  for (int64_t j = 0; j < V; ++j) {
    const float* u = row_floats(U, j, row);
    double n2 = 0;
    for (int64_t k = 0; k < d; ++k) {
      unembed_t[static_cast<size_t>(k * V + j)] = u[k];
      n2 += static_cast<double>(u[k]) * static_cast<double>(u[k]);
    }
    mb->umax = std::max(mb->umax, std::sqrt(n2));
  }
  mb->umax *= kSlack;
  std::vector<float> gamma(static_cast<size_t>(d * d));  // W_U^T W_U
  ops::matmul_nt(d, d, V, unembed_t.data(), V, unembed_t.data(), V, gamma.data(), d, threads);
  unembed_t = {};
  // The sketch's forms of every FFN direction where explain would compute each sketched vector's
  // (not screened), and only where that costs little next to the rest of this build: 4 d^2
  // multiply-adds a direction, at most 2e12 in all (GPT-2 124M 8.7e10, Qwen2.5-0.5B's 896 x 151936
  // 3.8e11); Qwen2.5-7B's 3584 x 152064 would spend 2.7e13, minutes, on forms of which an explain
  // reads a few thousand.
  std::shared_ptr<const ProjectionSketch> forms_sketch;
  const double forms_cost = 4.0 * static_cast<double>(c.n_layers) * static_cast<double>(c.d_mlp) * static_cast<double>(d) *
                            static_cast<double>(d);
  if (projection_sketch_available() && forms_cost <= 2e12) {
    forms_sketch = projection_sketch(m, threads, progress);
    if (forms_sketch->screen_forms) forms_sketch.reset();
  }
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& lw = m.weights().layers[static_cast<size_t>(l)];
    std::vector<double> g, n, gg, ge;
    const std::vector<float> y_ffn = prepared_columns(m, lw.W_out, 0, c.d_mlp);  // [d_mlp, d]
    direction_stats(y_ffn, c.d_mlp, d, gamma, 0, threads, g, n, nullptr, nullptr);
    mb->ffn_gamma_norm.push_back(std::move(g));
    mb->ffn_norm.push_back(std::move(n));
    mb->ffn_quartic.push_back(quartic_norms(m, y_ffn, c.d_mlp, d, threads, progress));
    mb->ffn_forms.push_back(forms_sketch != nullptr ? sketched_forms(*forms_sketch, y_ffn.data(), c.d_mlp, threads) : std::vector<double>{});
    const int64_t na = c.n_heads * c.d_head;
    const std::vector<float> y_attn = prepared_columns(m, lw.W_O, 0, na);  // [H*d_head, d]
    mb->attn_quartic.push_back(quartic_norms(m, y_attn, na, d, threads, progress));
    direction_stats(y_attn, na, d, gamma, c.d_head, threads, g, n, &gg, &ge);
    mb->attn_gamma_norm.push_back(std::move(g));
    mb->attn_norm.push_back(std::move(n));
    mb->head_gram_gamma.push_back(std::move(gg));
    mb->head_gram.push_back(std::move(ge));
    report_progress(progress, "bounds", l + 1, c.n_layers);
  }
  if (!file.empty()) store_cached(file, fp, *mb);
  return mb;
}

}  // namespace

std::shared_ptr<const ModelBounds> model_bounds(const Model& model, int n_threads, const ExplainProgressFn* progress) {
  static std::mutex mu;
  static std::map<uint64_t, std::weak_ptr<ModelBounds>> live;
  static std::shared_ptr<ModelBounds> last;  // keeps the most recent model's bounds warm
  const uint64_t fp = model_fingerprint(model);
  const std::lock_guard<std::mutex> lock(mu);
  if (auto hit = live[fp].lock()) return hit;
  auto mb = compute(model, n_threads, progress);
  live[fp] = mb;
  last = mb;
  return mb;
}

void prepared_columns_into(const Model& model, const MatrixView& m, int64_t first, int64_t count, float* out, int n_threads) {
  const ModelConfig& c = model.config();
  const VectorView& gamma = model.weights().ln_final_w;
  const bool centered = c.normalization_type == NormType::kLayerNorm;
  const int64_t d = c.d_model;
  // A transpose: 16 rows of m at a time, so each column's 16 outputs fill one cache line of `out`.
  // Each thread takes a range of the columns (a column's values depend on that column only).
  constexpr int64_t kRows = 16;
  parallel_for(n_threads, (count + 63) / 64, [&](int64_t b0, int64_t b1) {
    const int64_t c0 = b0 * 64, n = std::min(count, b1 * 64) - c0;
    std::vector<double> mean(static_cast<size_t>(n), 0.0);
    std::vector<float> strip(static_cast<size_t>(kRows * n));  // [16, n] of m's columns
    if (centered) {
      for (int64_t i0 = 0; i0 < d; i0 += kRows) {
        const int64_t ni = std::min(kRows, d - i0);
        read_submatrix(m, i0, ni, first + c0, n, strip.data());
        for (int64_t ii = 0; ii < ni; ++ii) {
          const float* r = strip.data() + ii * n;
          for (int64_t k = 0; k < n; ++k) mean[static_cast<size_t>(k)] += static_cast<double>(r[k]);
        }
      }
      for (double& x : mean) x /= static_cast<double>(d);
    }
    for (int64_t i0 = 0; i0 < d; i0 += kRows) {
      const int64_t ni = std::min(kRows, d - i0);
      const float* rows[kRows];
      double g[kRows];
      read_submatrix(m, i0, ni, first + c0, n, strip.data());
      for (int64_t ii = 0; ii < ni; ++ii) {
        rows[ii] = strip.data() + ii * n;
        g[ii] = static_cast<double>(gamma[i0 + ii]);
      }
      for (int64_t k = 0; k < n; ++k) {
        const double mk = mean[static_cast<size_t>(k)];
        float* o = out + (c0 + k) * d + i0;
        for (int64_t ii = 0; ii < ni; ++ii) o[ii] = static_cast<float>((static_cast<double>(rows[ii][k]) - mk) * g[ii]);
      }
    }
  });
}

std::vector<float> prepared_columns(const Model& model, const MatrixView& m, int64_t first, int64_t count, int n_threads) {
  std::vector<float> out(static_cast<size_t>(count * model.config().d_model));
  prepared_columns_into(model, m, first, count, out.data(), n_threads);
  return out;
}

namespace {
// Q_T, q_T,max, |q_T|_2, the mean weight c and |q_T - c|_2 of the tail (the tokens not in_head),
// each sum over j ascending; the 2-norms rounded up.
void tail_stats(const Distribution& dist, const std::vector<char>& in_head, TailSplit& t) {
  const auto V = static_cast<int64_t>(dist.q.size());
  double q2 = 0;
  int64_t tail_size = 0;
  t.mass = 0;
  t.q_max = 0;
  for (int64_t j = 0; j < V; ++j) {
    if (in_head[static_cast<size_t>(j)]) continue;
    const double q = dist.q[static_cast<size_t>(j)];
    t.mass += q;
    t.q_max = std::max(t.q_max, q);
    q2 += q * q;
    ++tail_size;
  }
  // A sum of at most V positive terms is within V 2^-53 of exact; 1e-9 covers it (and the root's rounding).
  t.q_l2 = std::sqrt(q2) * (1 + 1e-9);
  // The centred bound's spread about the tail's mean weight, in a second pass (any c makes the
  // bound hold; the mean makes |q_T - c|_2 smallest).
  t.q_mean = 0;
  t.q_dev = std::numeric_limits<double>::infinity();
  if (tail_size == 0) return;
  t.q_mean = t.mass / static_cast<double>(tail_size);
  double dev2 = 0;
  for (int64_t j = 0; j < V; ++j) {
    if (in_head[static_cast<size_t>(j)]) continue;
    const double e = dist.q[static_cast<size_t>(j)] - t.q_mean;
    dev2 += e * e;
  }
  t.q_dev = std::sqrt(dev2) * (1 + 1e-9);
}
}  // namespace

int TailSplit::index_of(int32_t id) const {
  const auto it = std::find(ids.begin(), ids.end(), id);
  return it == ids.end() ? -1 : static_cast<int>(it - ids.begin());
}

namespace {

// A split whose head t.ids is chosen: its head probabilities, its tail weights as float (tail_q, 0 on
// the head: [V]), its tail numbers and its head rows; everything but mu.
void fill_split(const Model& model, const Distribution& dist, TailSplit& t, float* tail_q) {
  const auto V = static_cast<int64_t>(dist.q.size());
  const int64_t d = model.config().d_model;
  std::vector<char> in_head(static_cast<size_t>(V), 0);
  for (int32_t id : t.ids) {
    in_head[static_cast<size_t>(id)] = 1;
    t.q.push_back(dist.q[static_cast<size_t>(id)]);
  }
  for (int64_t j = 0; j < V; ++j) {
    if (!in_head[static_cast<size_t>(j)]) tail_q[j] = static_cast<float>(dist.q[static_cast<size_t>(j)]);
  }
  tail_stats(dist, in_head, t);
  t.head_rows.resize(t.ids.size() * static_cast<size_t>(d));
  for (size_t h = 0; h < t.ids.size(); ++h) read_rows(model.weights().W_U, t.ids[h], 1, t.head_rows.data() + h * static_cast<size_t>(d));
}

}  // namespace

uint64_t distribution_hash(const Distribution& dist) {
  // FNV-1a over the 64-bit patterns, each first mixed (splitmix64's finaliser) so that every bit
  // reaches every other.
  uint64_t h = 0xcbf29ce484222325ull ^ static_cast<uint64_t>(dist.q.size());
  for (const double x : dist.q) {
    uint64_t b = 0;
    std::memcpy(&b, &x, sizeof b);
    b ^= b >> 30;
    b *= 0xbf58476d1ce4e5b9ull;
    b ^= b >> 27;
    b *= 0x94d049bb133111ebull;
    b ^= b >> 31;
    h = (h ^ b) * 0x100000001b3ull;
  }
  return h;
}

KeptSplit keep_split(const TailSplit& t, const Distribution& dist) { return KeptSplit{t.ids, t.mu, distribution_hash(dist)}; }

bool split_from_kept(const Model& model, const KeptSplit& kept, const Distribution& dist, TailSplit& out) {
  const auto V = static_cast<int64_t>(dist.q.size());
  if (static_cast<int64_t>(kept.mu.size()) != model.config().d_model || V != model.config().d_vocab ||
      distribution_hash(dist) != kept.q_hash) {
    return false;
  }
  for (const int32_t id : kept.ids) {
    if (id < 0 || id >= V) return false;
  }
  TailSplit t;
  t.ids = kept.ids;
  t.tail_q.assign(static_cast<size_t>(V), 0.0f);
  fill_split(model, dist, t, t.tail_q.data());
  t.mu = kept.mu;
  out = std::move(t);
  return true;
}

std::vector<TailSplit> split_tails(const Model& model, const ModelBounds& mb, const std::vector<const Distribution*>& dists,
                                   int head_size, const std::vector<int32_t>& always, int n_threads) {
  const int64_t V = mb.V, d = mb.d;
  const auto n = static_cast<int64_t>(dists.size());
  std::vector<TailSplit> out(static_cast<size_t>(n));
  std::vector<float> tail_q(static_cast<size_t>(n * V), 0.0f);  // [n, V] q on the tail, 0 on the head
  parallel_for(n_threads, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const Distribution& dist = *dists[static_cast<size_t>(i)];
      TailSplit& t = out[static_cast<size_t>(i)];
      std::vector<int32_t> order(static_cast<size_t>(V));
      std::iota(order.begin(), order.end(), 0);
      const int64_t k = std::min<int64_t>(head_size, V);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
        return dist.q[static_cast<size_t>(a)] > dist.q[static_cast<size_t>(b)] || (dist.q[static_cast<size_t>(a)] == dist.q[static_cast<size_t>(b)] && a < b);
      });
      t.ids.assign(order.begin(), order.begin() + k);
      for (int32_t id : always) {
        if (id >= 0 && t.index_of(id) < 0) t.ids.push_back(id);
      }
      fill_split(model, dist, t, tail_q.data() + i * V);
    }
  });
  // Every tail mean in one pass over W_U as stored: mu [n, d] = tail_q [n, V] x W_U, in double.
  std::vector<double> mu(static_cast<size_t>(n * d));
  weighted_row_sums_weights(n, tail_q.data(), V, model.weights().W_U, mu.data(), n_threads);
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)].mu.assign(mu.begin() + i * d, mu.begin() + (i + 1) * d);
    out[static_cast<size_t>(i)].tail_q.assign(tail_q.begin() + i * V, tail_q.begin() + (i + 1) * V);
  }
  return out;
}


TailSplit extend_tail(const Model& model, const TailSplit& t, const Distribution& dist, int64_t head_size, int n_threads,
                      std::vector<float> rows) {
  const auto V = static_cast<int64_t>(dist.q.size());
  const int64_t d = model.config().d_model;
  TailSplit e;
  e.ids = t.ids;
  e.q = t.q;
  std::vector<char> in_head(static_cast<size_t>(V), 0);
  for (int32_t id : t.ids) in_head[static_cast<size_t>(id)] = 1;
  const int64_t k = std::min(head_size, V);
  if (k > static_cast<int64_t>(e.ids.size())) {
    std::vector<int32_t> order;  // the tail's tokens
    order.reserve(static_cast<size_t>(V));
    for (int64_t j = 0; j < V; ++j) {
      if (!in_head[static_cast<size_t>(j)]) order.push_back(static_cast<int32_t>(j));
    }
    const auto more = static_cast<std::ptrdiff_t>(k - static_cast<int64_t>(e.ids.size()));
    const auto before = [&](int32_t a, int32_t b) {
      return dist.q[static_cast<size_t>(a)] > dist.q[static_cast<size_t>(b)] || (dist.q[static_cast<size_t>(a)] == dist.q[static_cast<size_t>(b)] && a < b);
    };
    // A strict total order, so selecting then sorting gives partial_sort's prefix; for ~2,000 of
    // ~50,000 tokens it takes a third of partial_sort's heap passes.
    std::nth_element(order.begin(), order.begin() + more, order.end(), before);
    std::sort(order.begin(), order.begin() + more, before);
    for (std::ptrdiff_t i = 0; i < more; ++i) {
      const int32_t id = order[static_cast<size_t>(i)];
      e.ids.push_back(id);
      e.q.push_back(dist.q[static_cast<size_t>(id)]);
      in_head[static_cast<size_t>(id)] = 1;
    }
  }
  tail_stats(dist, in_head, e);
  e.tail_q = t.tail_q;
  e.head_rows = std::move(rows);
  e.head_rows.resize(e.ids.size() * static_cast<size_t>(d));
  std::copy(t.head_rows.begin(), t.head_rows.end(), e.head_rows.begin());
  // The added rows, decoded in parallel (an encoded W_U's 2048 rows are ~8M values), then taken
  // from the tail mean in head order.
  const auto first = static_cast<int64_t>(t.ids.size()), added = static_cast<int64_t>(e.ids.size()) - first;
  parallel_for(n_threads, added, [&](int64_t a, int64_t b) {
    for (int64_t h = first + a; h < first + b; ++h) {
      read_rows(model.weights().W_U, e.ids[static_cast<size_t>(h)], 1, e.head_rows.data() + h * d);
    }
  });
  // mu[i] -= w row[i] for the added rows in head order, w the weight t.mu summed the row with, as
  // the vector axpy with -w (y + (-w) x is y - w x, bit for bit).
  e.mu = t.mu;
  for (int64_t h = first; h < first + added; ++h) {
    const auto id = static_cast<size_t>(e.ids[static_cast<size_t>(h)]);
    ops::axpy(-static_cast<double>(e.tail_q[id]), e.head_rows.data() + h * d, e.mu.data(), d);
    e.tail_q[id] = 0.0f;
  }
  return e;
}

namespace {
// psi(z) = (e^z - 1 - z) / z^2, increasing, psi(0) = 1/2.
double psi(double z) { return std::abs(z) < 1e-4 ? 0.5 + z / 6.0 : (std::expm1(z) - z) / (z * z); }
}  // namespace

namespace {
// sum_H q_j exp(delta_j) over the head tokens, and sum_H delta_j^2 into `square`; NaN when an
// exponent would overflow (the caller's bound then fails and the exact path takes the vector).
double head_sum(const TailSplit& t, const double* head_delta, double& square) {
  double head = 0;
  square = 0;
  for (size_t h = 0; h < t.ids.size(); ++h) {
    if (head_delta[h] > 600) return std::numeric_limits<double>::quiet_NaN();
    head += t.q[h] * std::exp(head_delta[h]);
    square += head_delta[h] * head_delta[h];
  }
  return head;
}
}  // namespace

double cached_log_expectation(const TailSplit& t, const double* head_delta, double tail_linear, double s, double a1,
                              double a2, double eps, double gmax, double tol, double* half_width) {
  double square = 0;
  const double base = head_sum(t, head_delta, square) + t.mass + tail_linear;  // NaN propagates
  // The float tail weights and float lane sums behind a1, a2 are within 1e-5 relative (2e-6 at most).
  constexpr double kRel = 1e-5;
  const double m2_lo = std::max(0.0, a2 * (1 - kRel) - 2 * eps * a1 * (1 + kRel));
  const double m2_hi = a2 * (1 + kRel) + 2 * eps * a1 * (1 + kRel) + eps * eps * t.mass;
  const double b = std::abs(s) * gmax;
  const double lower = base + s * s * psi(-b) * m2_lo;
  const double upper = base + s * s * psi(b) * m2_hi;
  if (!(lower > 0) || !std::isfinite(upper)) return std::numeric_limits<double>::quiet_NaN();
  const double width = std::log(upper / lower);
  if (!(width <= 2 * tol)) return std::numeric_limits<double>::quiet_NaN();
  if (half_width != nullptr) *half_width = 0.5 * width;
  return std::log(lower) + 0.5 * width;
}

double bounded_log_expectation(const TailSplit& t, const double* head_delta, const TailTerms& tail, double tol,
                               double* half_width) {
  double square = 0;
  const double head = head_sum(t, head_delta, square);
  return bounded_from_head(t, head, 0.0, square, tail, tol, half_width);
}

double bounded_from_head(const TailSplit& t, double head, double head_err, double head_square, const TailTerms& tail,
                         double tol, double* half_width) {
  const double base = head - head_err + t.mass + tail.linear;
  if (!(base > 0)) return std::numeric_limits<double>::quiet_NaN();
  // The tail's second moment m2 = sum_T q_j delta_j^2 lies in [lo, hi]: hi the smallest of
  // q_max sum g^2, |q_T|_2 |g|_4^2 (Hoelder) and the centred c sum_T g^2 + |q_T - c|_2 |g|_4^2, lo the
  // centred one's other side (an unknown quartic or 2-norm is infinite, and a NaN never wins the
  // comparisons). The head's squares are the deltas the head part used; 1e-6 of them covers their
  // float products' rounding, far inside the quadratic terms' kBoundSlack.
  double hi = tail.quadratic * t.q_max;
  const double holder = tail.quartic * t.q_l2;
  if (holder < hi) hi = holder;
  double lo = 0;
  const double dev = tail.quartic * t.q_dev;  // >= |sum_T (q_j - c) delta_j^2|
  if (dev < std::numeric_limits<double>::infinity()) {
    const double centred_hi = t.q_mean * (tail.quadratic - head_square * (1 - 1e-6)) + dev;
    if (centred_hi < hi) hi = centred_hi;
    lo = std::max(0.0, t.q_mean * (tail.quadratic_lo - head_square * (1 + 1e-6)) - dev);
  }
  // R = sum_T q_j delta_j^2 psi(delta_j) with psi increasing and |delta_j| <= range.
  const double r_lo = lo > 0 && tail.range < std::numeric_limits<double>::infinity() ? psi(-tail.range) * lo : 0.0;
  const double lower = base + r_lo;
  const double r = psi(tail.range) * hi - r_lo + 2 * head_err;  // upper - lower
  const double y = r / lower;
  // log1p(y) by its series when y is tiny (the usual case: error below y^4 / 4 < 3e-17).
  const double width = y < 1e-4 ? y * (1 - y * (0.5 - y / 3)) : std::log1p(y);
  if (!(width <= 2 * tol)) return std::numeric_limits<double>::quiet_NaN();
  if (half_width != nullptr) *half_width = 0.5 * width;
  return std::log(lower) + 0.5 * width;
}

HeadPowerSums head_power_sums(const TailSplit& t, const double* g) {
  HeadPowerSums m;
  for (size_t h = 0; h < t.ids.size(); ++h) {
    double x = t.q[h];
    for (int k = 0; k < HeadPowerSums::kTerms; ++k) {
      m.p[k] += x;
      x *= g[h];
    }
    m.gabs = std::max(m.gabs, std::abs(g[h]));
    m.qh += t.q[h];
  }
  // Store P_k / k!, so the series needs no division per term.
  double fact = 1;
  for (int k = 1; k < HeadPowerSums::kTerms; ++k) m.p[k] /= (fact *= k);
  return m;
}

double head_part(const HeadPowerSums& m, double s, double& err) {
  constexpr int K = HeadPowerSums::kTerms - 1;
  const double x = std::abs(s) * m.gabs;
  if (!(x <= 1.0)) return std::numeric_limits<double>::quiet_NaN();
  // Horner on sum_k (P_k / k!) s^k, highest term first.
  double v = m.p[K];
  for (int k = K; k > 0; --k) v = m.p[k - 1] + s * v;
  // Remainder Q_H x^(K+1) e^x / (K+1)! with e^x <= 1 + (e - 1) x on [0, 1]; and the rounding in the
  // sum (terms below e^x Q_H in size, ~K+2 operations each, the stored P_k / k! one more): a few ulps.
  static_assert(K + 1 == 12, "the remainder below is written for 12 terms");
  const double ex = 1 + 1.7182818284590453 * x;
  const double x2 = x * x, x4 = x2 * x2, x12 = x4 * x4 * x4;
  const double rem = m.qh * ex * x12 / 479001600.0;  // 12!
  err = rem * (1 + 1e-12) + m.qh * ex * 96 * std::numeric_limits<double>::epsilon();
  return v;
}

}  // namespace reslens::analysis
