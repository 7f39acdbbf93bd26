// The int8 sketch of W_U and the certified log-expectations it gives (analysis/projection_sketch.h).
#include "analysis/projection_sketch.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "analysis/cache_files.h"
#include "analysis/progress.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/gemm.h"
#include "ops/vector_ops.h"
#include "ops/spectral_bound.h"
#include "reslens/tensor.h"

namespace reslens::analysis {

namespace {

constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24, float's unit roundoff
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kTile = ops::Int8Rows::kTileRows;

// Rows of W_U per block of the Gram products: two [d, 4096] float transposes at a time (25 MB for
// GPT-2, 134 MB for a 7B model) instead of two [d, V] ones.
constexpr int64_t kBlock = 4096;

// out (+)= B^T B for a block's transpose bt [d, nb] (accumulating after the first block).
void add_gram(const std::vector<float>& bt, int64_t d, int64_t nb, bool first, int threads, std::vector<float>& out) {
  if (first) {
    ops::matmul_nt(d, d, nb, bt.data(), nb, bt.data(), nb, out.data(), d, threads);
  } else {
    ops::matmul_nt_accumulate(d, d, nb, bt.data(), nb, bt.data(), nb, out.data(), d, threads);
  }
}

// One pass over W_U, a block of rows at a time: each row's scale and codes, its norm and its
// rounding error's E_j = u_j - a_j c_j, and (grams) both Gram matrices.
void build_rows(const MatrixView& U, ProjectionSketch& sk, std::vector<int8_t>& codes, bool grams, int threads,
                const ExplainProgressFn* progress) {
  const int64_t d = sk.d, V = sk.V;
  if (grams) {
    sk.gram.assign(static_cast<size_t>(d * d), 0.0f);
    sk.gram_err.assign(static_cast<size_t>(d * d), 0.0f);
  }
  std::vector<double> norm2(static_cast<size_t>(V), 0.0), err2(static_cast<size_t>(V), 0.0);
  std::vector<float> rows_t, errs_t;  // [d, nb] the block's rows and errors, transposed
  for (int64_t j0 = 0; j0 < V; j0 += kBlock) {
    const int64_t nb = std::min(kBlock, V - j0);
    if (grams) {
      rows_t.assign(static_cast<size_t>(d * nb), 0.0f);
      errs_t.assign(static_cast<size_t>(d * nb), 0.0f);
    }
    parallel_for(threads, nb, [&](int64_t b0, int64_t b1) {
      std::vector<float> row;  // [d] a decoded row of an encoded W_U
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t j = j0 + b;
        const float* u = row_floats(U, j, row);
        float mx = 0;
        for (int64_t i = 0; i < d; ++i) mx = std::max(mx, std::abs(u[i]));
        const float a = mx / 127.0f;
        sk.scale[static_cast<size_t>(j)] = a;
        int8_t* c_row = codes.data() + j * d;
        ops::int8_codes(u, d, static_cast<double>(a), c_row);
        double n2 = 0, e2 = 0;
        for (int64_t i = 0; i < d; ++i) {
          const int c = c_row[i];
          // a * c is exact in double (24 + 8 bits), and so is u - a c.
          const double x = static_cast<double>(u[i]), e = x - static_cast<double>(a) * c;
          if (grams) {
            rows_t[static_cast<size_t>(i * nb + b)] = u[i];
            errs_t[static_cast<size_t>(i * nb + b)] = static_cast<float>(e);
          }
          n2 += x * x;
          e2 += e * e;
        }
        norm2[static_cast<size_t>(j)] = n2;
        err2[static_cast<size_t>(j)] = e2;
      }
    });
    if (grams) {
      add_gram(rows_t, d, nb, j0 == 0, threads, sk.gram);
      add_gram(errs_t, d, nb, j0 == 0, threads, sk.gram_err);
      report_progress(progress, "sketch", j0 / kBlock + 1, (V + kBlock - 1) / kBlock);
    }
  }
  double umax = 0, emax = 0;
  for (int64_t j = 0; j < V; ++j) {
    umax = std::max(umax, std::sqrt(norm2[static_cast<size_t>(j)]));
    emax = std::max(emax, std::sqrt(err2[static_cast<size_t>(j)]));
    sk.trace += norm2[static_cast<size_t>(j)];
    sk.trace_err += err2[static_cast<size_t>(j)];
  }
  // Norms were summed in double from float values (the errors stored as float, relative 2^-24):
  // a relative margin keeps them upper bounds.
  sk.umax = umax * (1 + 1e-9);
  sk.emax = emax * (1 + 1e-6);
  sk.trace_err *= 1 + 1e-6;
  if (!grams) return;
  for (float x : sk.gram) sk.max_abs = std::max(sk.max_abs, static_cast<double>(std::abs(x)));
  for (float x : sk.gram_err) sk.max_abs_err = std::max(sk.max_abs_err, static_cast<double>(std::abs(x)));
  // Each Gram entry: per block a chain of nb/16 fused multiply-adds, a 4-level tree and one add to
  // the running matrix, so at most V/16 + 5 (blocks) roundings of partial sums of its |terms|.
  sk.gram_chain = static_cast<double>(V) / 16 + 5 * static_cast<double>((V + kBlock - 1) / kBlock) + 8;
}

// Upper bound of the exact x^T Gamma x from the float product: the computed form plus the rounding
// of Gamma's GEMMs (an entry's error is at most chain u sum_j |u_ji u_jk| with chain =
// ProjectionSketch::gram_chain, and sum_ik |x_i x_k| sum_j |u_ji u_jk| <= |x|^2 trace) and of the
// product x Gamma (d/16 + 4 roundings of terms bounded by |x_k| max|Gamma|).
double quad_upper(double computed, double norm2, double norm1, double trace, double max_abs, double chain, int64_t d) {
  const double cV = chain * kUnit, cd = (static_cast<double>(d) / 16 + 8) * kUnit;
  return std::max(0.0, (computed + cV * norm2 * trace + cd * norm1 * norm1 * max_abs) * (1 + 1e-9));
}

// Vector y [d]'s codes at scale b, as W_U's rows get theirs (ops::int8_codes: y / b clamped to
// [-127, 127], rounded half away from zero), in this thread's buffer: valid until its next call.
const int8_t* vector_codes(const float* y, int64_t d, double b) {
  thread_local std::vector<int8_t> codes;  // [d]
  codes.resize(static_cast<size_t>(d));
  ops::int8_codes(y, d, b, codes.data());
  return codes.data();
}

// The scale b a vector y [d] is rounded at: its largest |y_i| over 127 (so its codes span [-127, 127]).
double vector_scale(const float* y, int64_t d) {
  float mx = 0;
  for (int64_t i = 0; i < d; ++i) mx = std::max(mx, std::abs(y[i]));
  return static_cast<double>(mx) / 127.0;
}

// A vector y0 rounded as the sketch rounds vectors, y0 = b y~ + f, z = b y~: its codes y~ + 128
// into x (when given), f and z as float into F and Z (when given: what the forms read), and the
// norms of those stored floats (the difference from the exact f and z is covered by a margin in
// certify_job).
struct Rounded {
  double b = 0, f2 = 0, z2 = 0, f1 = 0, z1 = 0;
};
Rounded round_vector(const float* y, int64_t d, uint8_t* x, float* F, float* Z) {
  Rounded r;
  r.b = vector_scale(y, d);
  const int8_t* codes = vector_codes(y, d, r.b);
  for (int64_t i = 0; i < d; ++i) {
    const int c = codes[i];
    if (x != nullptr) x[i] = static_cast<uint8_t>(c + 128);
    const double z = r.b * c, f = static_cast<double>(y[i]) - z;
    const float ff = static_cast<float>(f), zf = static_cast<float>(z);
    if (F != nullptr) F[i] = ff, Z[i] = zf;
    r.f2 += static_cast<double>(ff) * static_cast<double>(ff);
    r.z2 += static_cast<double>(zf) * static_cast<double>(zf);
    r.f1 += std::abs(static_cast<double>(ff));
    r.z1 += std::abs(static_cast<double>(zf));
  }
  return r;
}

// The forms f^T Gamma f and z^T Gamma_E z (2 d^2 multiply-adds a vector) of `count` vectors, in
// blocks of 512 (a 7B batch of 4096 would hold 2 x 67 MB, zeroed and faulted in on every call):
// round(i, F, Z) writes vector i's f and z as float rows [d] (round_vector's), put(i, qf, qz) takes
// its forms. A vector's forms depend only on its own f and z (a GEMM element reads only its two
// rows; each sum runs in order), never on the block it shares.
template <class Round, class Put>
void forms_in_blocks(const ProjectionSketch& sk, int64_t count, int n_threads, const Round& round, const Put& put) {
  constexpr int64_t kRows = 512;
  const int64_t d = sk.d;
  if (count == 0) return;
  const auto block_floats = static_cast<size_t>(std::min(count, kRows) * d);
  std::unique_ptr<float[]> F(new float[block_floats]), Z(new float[block_floats]);  // [rows, d], every entry written
  std::unique_ptr<float[]> prod(new float[block_floats]);                            // [rows, d] x Gamma
  std::vector<double> q(static_cast<size_t>(2 * std::min(count, kRows)));            // [rows, 2]
  for (int64_t r0 = 0; r0 < count; r0 += kRows) {
    const int64_t rows = std::min(kRows, count - r0);
    parallel_for(n_threads, rows, [&](int64_t v0, int64_t v1) {
      for (int64_t r = v0; r < v1; ++r) round(r0 + r, F.get() + r * d, Z.get() + r * d);
    });
    for (int pass = 0; pass < 2; ++pass) {
      const float* X = pass == 0 ? F.get() : Z.get();
      const std::vector<float>& G = pass == 0 ? sk.gram : sk.gram_err;
      ops::matmul_nt(rows, d, d, X, d, G.data(), d, prod.get(), d, n_threads);
      for (int64_t r = 0; r < rows; ++r) {
        double s = 0;
        for (int64_t i = 0; i < d; ++i) {
          s += static_cast<double>(X[static_cast<size_t>(r * d + i)]) * static_cast<double>(prod[static_cast<size_t>(r * d + i)]);
        }
        q[static_cast<size_t>(2 * r + pass)] = s;
      }
    }
    for (int64_t r = 0; r < rows; ++r) put(r0 + r, q[static_cast<size_t>(2 * r)], q[static_cast<size_t>(2 * r + 1)]);
  }
}

// One job's certified value (NaN where its interval is wider than 2 tol) from its vector's
// rounding r, forms qf, qz (NaN where not computed), largest |code product| peak = max_j a_j |x_j|
// and tail sum a2_codes = sum_T q_j a_j^2 x_j^2 (float sums within 1e-5: cached_log_expectation's
// kRel). |W_U f| and |E z| come from their forms where computed, else from lambda_max (a certified
// bound on Gamma's largest eigenvalue as stored: f^T Gamma f <= (lambda + the GEMMs' rounding)
// |f|^2); the float rounding of f and z themselves (relative 2^-24 per element) moves each norm by
// at most sqrt(trace) 2^-24 |x|.
double certify_job(const ProjectionSketch& sk, const SketchJob& job, const Rounded& r, double qf, double qz, double peak,
                   double a2_codes, double tol, double* half_width) {
  const TailSplit& t = *job.t;
  if (!(t.mass > 0) || !(r.b > 0)) return kNaN;
  const double cV = sk.gram_chain * kUnit;
  const double a2 = a2_codes * r.b * r.b;  // sum_T q_j g~_j^2
  double wf = (sk.gram_lambda + cV * sk.trace) * r.f2 * (1 + 1e-9);
  double wz = (sk.gram_err_lambda + cV * sk.trace_err) * r.z2 * (1 + 1e-9);
  if (!std::isnan(qf)) {
    wf = std::min(wf, quad_upper(qf, r.f2, r.f1, sk.trace, sk.max_abs, sk.gram_chain, sk.d));
    wz = std::min(wz, quad_upper(qz, r.z2, r.z1, sk.trace_err, sk.max_abs_err, sk.gram_chain, sk.d));
  }
  const double nf = std::sqrt(wf) + std::sqrt(sk.trace * r.f2) * kUnit;
  const double nz = std::sqrt(wz) + std::sqrt(sk.trace_err * r.z2) * kUnit;
  const double eps2 = std::sqrt(t.q_max) * (nf + nz) * (1 + 1e-9);  // sqrt(sum_T q_j e_j^2)
  const double einf = (sk.umax * std::sqrt(r.f2) + sk.emax * std::sqrt(r.z2)) * (1 + 1e-6);
  const double gmax = r.b * peak * (1 + 1e-6) + einf;
  // cached_log_expectation's interval [a2 - 2 eps a1, a2 + 2 eps a1 + eps^2 Q_T] with
  // a1 = sqrt(a2 Q_T), eps = eps2 / sqrt(Q_T) is the Cauchy-Schwarz one of the header.
  const double sq = std::sqrt(t.mass);
  return cached_log_expectation(t, job.head_delta, job.tail_linear, job.s, std::sqrt(a2) * sq, a2, eps2 / sq, gmax, tol,
                                half_width);
}

// The tail weights of the codes in state t, w_j = q_j a_j^2 (0 on the head and past V), into wt
// [n_pad].
void code_weights_into(const ProjectionSketch& sk, const TailSplit& t, float* wt) {
  for (int64_t j = 0; j < sk.V; ++j) {
    const float a = sk.scale[static_cast<size_t>(j)];
    wt[j] = t.tail_q[static_cast<size_t>(j)] * (a * a);
  }
  std::fill(wt + sk.V, wt + sk.codes.n_pad, 0.0f);
}
std::vector<float> code_weights(const ProjectionSketch& sk, const TailSplit& t) {
  std::vector<float> wt(static_cast<size_t>(sk.codes.n_pad));
  code_weights_into(sk, t, wt.data());
  return wt;
}

}  // namespace

bool projection_sketch_available() { return ops::detail::int8_dot_is_fast(); }

namespace {

// The codes, scales and norms from W_U (a cheap pass), and the Gram matrices unless `sk` has them.
void fill(const MatrixView& W_U, ProjectionSketch& sk, bool grams, int n_threads,
          const ExplainProgressFn* progress = nullptr) {
  sk.d = W_U.cols;
  sk.V = W_U.rows;
  sk.scale.assign(static_cast<size_t>(sk.V), 0.0f);
  std::vector<int8_t> codes(static_cast<size_t>(sk.V * sk.d));
  if (grams) report_progress(progress, "sketch", 0, (sk.V + kBlock - 1) / kBlock);
  build_rows(W_U, sk, codes, grams, n_threads, progress);
  sk.codes = ops::pack_int8_rows(codes.data(), sk.V, sk.d, sk.d);
  sk.scale.resize(static_cast<size_t>(sk.codes.n_pad), 0.0f);  // padded tiles weigh 0
  sk.screen_forms = 32 * sk.d >= sk.V;
  if (grams) {
    sk.gram_lambda = ops::certified_max_eigenvalue(sk.gram.data(), sk.d, n_threads);
    sk.gram_err_lambda = ops::certified_max_eigenvalue(sk.gram_err.data(), sk.d, n_threads);
  }
}

// The Gram matrices (the costly part: two d x d x V GEMMs) are cached on disk next to the bounds:
// magic, fingerprint, d, V, max_abs, max_abs_err, gram_chain, gram_lambda, gram_err_lambda, Gamma,
// Gamma_E. A file that does not match or holds a NaN or negative value is ignored (the eigenvalue
// bounds may be +inf: none certified).
constexpr char kSketchMagic[8] = {'R', 'L', 'S', 'K', 'T', 'v', '2', '\n'};

bool load_grams(const std::filesystem::path& p, uint64_t fp, int64_t d, int64_t V, ProjectionSketch& sk) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  char magic[8];
  uint64_t got = 0;
  int64_t dims[2] = {0, 0};
  double h[5] = {0, 0, 0, 0, 0};
  if (!in.read(magic, 8) || std::memcmp(magic, kSketchMagic, 8) != 0) return false;
  if (!in.read(reinterpret_cast<char*>(&got), 8) || got != fp) return false;
  if (!in.read(reinterpret_cast<char*>(dims), sizeof dims) || dims[0] != d || dims[1] != V) return false;
  if (!in.read(reinterpret_cast<char*>(h), sizeof h)) return false;
  std::vector<float> g(static_cast<size_t>(d * d)), e(static_cast<size_t>(d * d));
  const auto bytes = static_cast<std::streamsize>(g.size() * sizeof(float));
  if (!in.read(reinterpret_cast<char*>(g.data()), bytes) || !in.read(reinterpret_cast<char*>(e.data()), bytes)) return false;
  for (int i = 0; i < 5; ++i) {
    if (std::isnan(h[i]) || h[i] < 0 || (i < 3 && !std::isfinite(h[i]))) return false;
  }
  for (size_t i = 0; i < g.size(); ++i) {
    if (!std::isfinite(g[i]) || !std::isfinite(e[i])) return false;
  }
  sk.max_abs = h[0], sk.max_abs_err = h[1], sk.gram_chain = h[2];
  sk.gram_lambda = h[3], sk.gram_err_lambda = h[4];
  sk.gram = std::move(g);
  sk.gram_err = std::move(e);
  return true;
}

void store_grams(const std::filesystem::path& p, uint64_t fp, const ProjectionSketch& sk) {
  write_cache_file(p, [&](std::ostream& out) {
    const int64_t dims[2] = {sk.d, sk.V};
    const double h[5] = {sk.max_abs, sk.max_abs_err, sk.gram_chain, sk.gram_lambda, sk.gram_err_lambda};
    out.write(kSketchMagic, 8);
    out.write(reinterpret_cast<const char*>(&fp), 8);
    out.write(reinterpret_cast<const char*>(dims), sizeof dims);
    out.write(reinterpret_cast<const char*>(h), sizeof h);
    const auto bytes = static_cast<std::streamsize>(sk.gram.size() * sizeof(float));
    out.write(reinterpret_cast<const char*>(sk.gram.data()), bytes);
    out.write(reinterpret_cast<const char*>(sk.gram_err.data()), bytes);
  });
}

}  // namespace

std::shared_ptr<ProjectionSketch> build_projection_sketch(const MatrixView& W_U, int n_threads) {
  auto sk = std::make_shared<ProjectionSketch>();
  fill(W_U, *sk, true, n_threads);
  return sk;
}

std::shared_ptr<const ProjectionSketch> projection_sketch(const Model& model, int n_threads,
                                                          const ExplainProgressFn* progress) {
  static std::mutex mu;
  static std::map<uint64_t, std::weak_ptr<ProjectionSketch>> live;
  static std::shared_ptr<ProjectionSketch> last;  // keeps the most recent model's sketch warm
  const uint64_t fp = model_fingerprint(model);
  const std::lock_guard<std::mutex> lock(mu);
  if (auto hit = live[fp].lock()) return hit;
  const MatrixView& W_U = model.weights().W_U;
  const std::filesystem::path dir = cache_dir();
  const std::filesystem::path file = dir.empty() ? std::filesystem::path() : dir / ("sketch-" + std::to_string(fp) + ".bin");
  auto sk = std::make_shared<ProjectionSketch>();
  const bool cached = !file.empty() && load_grams(file, fp, W_U.cols, W_U.rows, *sk);
  fill(W_U, *sk, !cached, n_threads, progress);
  if (!cached && !file.empty()) store_grams(file, fp, *sk);
  live[fp] = sk;
  last = sk;
  return sk;
}

std::vector<double> sketched_quartic_norms(const ProjectionSketch& sk, const float* y0, int64_t n, int n_threads) {
  const int64_t d = sk.d, V = sk.V, kp = sk.codes.k_pad, nt = sk.codes.n_tiles();
  std::vector<double> out(static_cast<size_t>(n), std::numeric_limits<double>::infinity());
  if (n == 0 || !std::isfinite(sk.gram_lambda) || !std::isfinite(sk.gram_err_lambda)) return out;
  constexpr int64_t kChunk = 384;  // rows per sweep over the vocabulary (their codes stay in L2)
  std::vector<uint8_t> xs(static_cast<size_t>(kChunk * kp));
  std::vector<double> b(static_cast<size_t>(kChunk)), f2(static_cast<size_t>(kChunk)), z2(static_cast<size_t>(kChunk));
  std::vector<double> y2(static_cast<size_t>(kChunk));
  std::vector<double> part(static_cast<size_t>(kChunk * nt));  // [rows, tiles] sum over the tile of (a_j x_j)^4
  const double cV = sk.gram_chain * kUnit;
  for (int64_t r0 = 0; r0 < n; r0 += kChunk) {
    const int64_t m = std::min(kChunk, n - r0);
    // Each row rounded as sketched_log_expectations rounds a vector (round_vector's scale and codes):
    // y0 = b y~ + f, z = b y~, with f and z summed exactly in double here (round_vector sums them as
    // the float rows the forms read).
    parallel_for(n_threads, m, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* y = y0 + (r0 + i) * d;
        const double bv = vector_scale(y, d);
        double sf2 = 0, sz2 = 0, sy2 = 0;
        uint8_t* x = xs.data() + i * kp;
        std::fill(x, x + kp, uint8_t{128});
        const int8_t* codes = vector_codes(y, d, bv);
        for (int64_t k = 0; k < d; ++k) {
          const int c = codes[k];
          x[k] = static_cast<uint8_t>(c + 128);
          const double z = bv * c, f = static_cast<double>(y[k]) - z;
          sf2 += f * f;
          sz2 += z * z;
          sy2 += static_cast<double>(y[k]) * static_cast<double>(y[k]);
        }
        const auto ii = static_cast<size_t>(i);
        b[ii] = bv, f2[ii] = sf2, z2[ii] = sz2, y2[ii] = sy2;
      }
    });
    // The exact integer products c_j . y~ tile by tile; per (row, tile) the sum of (a_j x_j)^4 in
    // double (a_j x_j is exact in double: 24 + 24 bits), in token order.
    parallel_for(n_threads, nt, [&](int64_t t0, int64_t t1) {
      std::vector<int32_t> dots(static_cast<size_t>(m * kTile));  // [m, 64]
      for (int64_t tile = t0; tile < t1; ++tile) {
        ops::int8_dot_tile(sk.codes, tile, xs.data(), m, dots.data());
        const float* a = sk.scale.data() + tile * kTile;  // 0 past V
        for (int64_t i = 0; i < m; ++i) {
          const int32_t* x = dots.data() + i * kTile;
          double s4 = 0;
          for (int64_t t = 0; t < kTile; ++t) {
            const double g = static_cast<double>(a[t]) * static_cast<double>(x[t]);
            const double g2 = g * g;
            s4 += g2 * g2;
          }
          part[static_cast<size_t>(i * nt + tile)] = s4;
        }
      }
    });
    for (int64_t i = 0; i < m; ++i) {
      const auto ii = static_cast<size_t>(i);
      double s4 = 0;
      for (int64_t tile = 0; tile < nt; ++tile) s4 += part[static_cast<size_t>(i * nt + tile)];
      // The sum of at most V + 64 positive terms, each from two roundings: relative (V + 70) 2^-53.
      const double sketched = b[ii] * std::sqrt(std::sqrt(s4 * (1 + 1e-9)));
      // |W_U f|_2 and |E z|_2 as sketched_log_expectations bounds them from lambda_max (f and z are
      // exact in double here, so no float margin), and the rows' largest norms for the inf-norms.
      const double nf = std::sqrt((sk.gram_lambda + cV * sk.trace) * f2[ii] * (1 + 1e-9));
      const double nz = std::sqrt((sk.gram_err_lambda + cV * sk.trace_err) * z2[ii] * (1 + 1e-9));
      const double ef = std::sqrt(nf * sk.umax * std::sqrt(f2[ii]));
      const double ez = std::sqrt(nz * sk.emax * std::sqrt(z2[ii]));
      // A float projection of y0 (d products summed in float) is within (d + 2) 2^-24 |u_j| |y0| of
      // the exact product per token: V^(1/4) times that in the 4-norm.
      const double rounding = std::sqrt(std::sqrt(static_cast<double>(V))) * static_cast<double>(d + 2) * kUnit * sk.umax *
                              std::sqrt(y2[ii]);
      const double norm4 = (sketched + ef + ez + rounding) * (1 + 1e-9);
      out[static_cast<size_t>(r0 + i)] = norm4 * norm4 * (1 + 1e-9);
    }
  }
  return out;
}

std::vector<double> sketched_forms(const ProjectionSketch& sk, const float* y0, int64_t n, int n_threads) {
  std::vector<double> out(static_cast<size_t>(2 * n));
  forms_in_blocks(sk, n, n_threads, [&](int64_t i, float* F, float* Z) {
    round_vector(y0 + i * sk.d, sk.d, nullptr, F, Z);
  }, [&](int64_t i, double f, double z) {
    out[static_cast<size_t>(2 * i)] = f;
    out[static_cast<size_t>(2 * i + 1)] = z;
  });
  return out;
}

std::vector<double> sketched_log_expectations(const ProjectionSketch& sk, const std::vector<SketchJob>& jobs,
                                              double tol, int n_threads, std::vector<double>* half_widths,
                                              SharedProjections* shared, int64_t* shared_read) {
  const auto n = static_cast<int64_t>(jobs.size());
  const int64_t d = sk.d, kp = sk.codes.k_pad, nt = sk.codes.n_tiles();
  std::vector<double> out(static_cast<size_t>(n), std::numeric_limits<double>::quiet_NaN());
  if (half_widths != nullptr) half_widths->assign(static_cast<size_t>(n), std::numeric_limits<double>::quiet_NaN());
  if (n == 0) return out;
  // Jobs that share a vector and a state (an attention neuron's direction at each of its positions)
  // share its sketch: steps 1-4 run once per distinct (y0, t), step 5 once per job.
  std::vector<size_t> rep;  // per distinct pair: its first job
  std::vector<int64_t> pair_of(static_cast<size_t>(n));
  {
    std::map<std::pair<const float*, const TailSplit*>, int64_t> seen;
    for (int64_t v = 0; v < n; ++v) {
      const SketchJob& job = jobs[static_cast<size_t>(v)];
      const auto it = seen.emplace(std::make_pair(job.y0, job.t), static_cast<int64_t>(rep.size())).first;
      if (it->second == static_cast<int64_t>(rep.size())) rep.push_back(static_cast<size_t>(v));
      pair_of[static_cast<size_t>(v)] = it->second;
    }
  }
  const auto nu = static_cast<int64_t>(rep.size());
  // Per distinct vector: its products and forms published by an earlier call (known), or the entry
  // this call fills and publishes at its end (fresh); both nullptr for a vector of its own.
  std::vector<const VectorSketch*> known(static_cast<size_t>(nu), nullptr);
  std::vector<VectorSketch*> fresh(static_cast<size_t>(nu), nullptr);
  if (shared != nullptr) {
    for (int64_t u = 0; u < nu; ++u) {
      const SketchJob& job = jobs[rep[static_cast<size_t>(u)]];
      if (job.ffn_layer < 0) continue;
      known[static_cast<size_t>(u)] = shared->ffn_sketch(job.ffn_layer, job.ffn_neuron);
      if (known[static_cast<size_t>(u)] == nullptr) {
        fresh[static_cast<size_t>(u)] = shared->reserve_ffn_sketch(job.ffn_layer, job.ffn_neuron, sk.codes.n_pad);
      }
    }
  }
  if (shared_read != nullptr) {
    *shared_read = 0;
    for (int64_t v = 0; v < n; ++v) *shared_read += known[static_cast<size_t>(pair_of[static_cast<size_t>(v)])] != nullptr ? 1 : 0;
  }
  // 1. Each vector rounded as the rows are: y0 = b y~ + f, z = b y~; xs holds y~ + 128, and the
  // norms of f and z. round_vector also writes f and z as float rows (what the forms below read) when
  // given rows to write.
  std::vector<uint8_t> xs(static_cast<size_t>(nu * kp), 128);
  std::vector<Rounded> rounded(static_cast<size_t>(nu));
  const auto round_vector_v = [&](int64_t v, float* F, float* Z) {
    rounded[static_cast<size_t>(v)] = round_vector(jobs[rep[static_cast<size_t>(v)]].y0, d, xs.data() + v * kp, F, Z);
  };
  // 2. The error's quadratic forms f^T Gamma f and z^T Gamma_E z of the listed vectors (forms_in_blocks).
  std::vector<double> qf(static_cast<size_t>(nu), kNaN), qz(static_cast<size_t>(nu), kNaN);
  const auto compute_forms = [&](const std::vector<int64_t>& list) {
    forms_in_blocks(sk, static_cast<int64_t>(list.size()), n_threads, [&](int64_t i, float* F, float* Z) {
      round_vector_v(list[static_cast<size_t>(i)], F, Z);
    }, [&](int64_t i, double f, double z) {
      qf[static_cast<size_t>(list[static_cast<size_t>(i)])] = f;
      qz[static_cast<size_t>(list[static_cast<size_t>(i)])] = z;
    });
  };
  // Forms an earlier call published, or the model's bounds hold, are read instead (the same bits:
  // a vector's forms depend only on its own f and z). Returns whether vector v had them.
  const auto read_forms = [&](int64_t v) {
    const VectorSketch* k = known[static_cast<size_t>(v)];
    const double* given = jobs[rep[static_cast<size_t>(v)]].forms;
    if (k != nullptr && !std::isnan(k->qf)) {
      qf[static_cast<size_t>(v)] = k->qf, qz[static_cast<size_t>(v)] = k->qz;
    } else if (given != nullptr && !std::isnan(given[0]) && !std::isnan(given[1])) {
      qf[static_cast<size_t>(v)] = given[0], qz[static_cast<size_t>(v)] = given[1];
    } else {
      return false;
    }
    return true;
  };
  if (sk.screen_forms) {
    // The forms wait for step 5: most vectors are certified by lambda_max |x|^2 alone.
    parallel_for(n_threads, nu, [&](int64_t v0, int64_t v1) {
      for (int64_t v = v0; v < v1; ++v) round_vector_v(v, nullptr, nullptr);
    });
  } else {
    // Every vector's forms now.
    std::vector<int64_t> all;
    for (int64_t v = 0; v < nu; ++v) {
      if (!read_forms(v)) all.push_back(v);
    }
    parallel_for(n_threads, nu, [&](int64_t v0, int64_t v1) {
      for (int64_t v = v0; v < v1; ++v) {
        if (!std::isnan(qf[static_cast<size_t>(v)])) round_vector_v(v, nullptr, nullptr);
      }
    });
    compute_forms(all);
  }
  // 3. Per state, the tail weights of the codes w_j = q_j a_j^2 (0 on the head and past V).
  std::map<const TailSplit*, std::vector<float>> weights;
  std::vector<const float*> w(static_cast<size_t>(nu));
  for (int64_t v = 0; v < nu; ++v) {
    const TailSplit* t = jobs[rep[static_cast<size_t>(v)]].t;
    auto it = weights.find(t);
    if (it == weights.end()) it = weights.emplace(t, code_weights(sk, *t)).first;
    w[static_cast<size_t>(v)] = it->second.data();
  }
  // 4. Every tile of the vocabulary against every vector: exact integer products c_j . y~ (or those
  // an earlier call published), then per (vector, tile) sum_t w_j x_j^2 in 16 float lanes (t % 16, t
  // ascending) added in a fixed tree, and max_t a_j |x_j|. Tiles are split across threads, each
  // writes only its own cells.
  std::vector<float> part(static_cast<size_t>(nu * nt)), top(static_cast<size_t>(nu * nt));
  const auto evaluate = [&](int64_t u, int64_t tile, const int32_t* x) {  // x: [64] the tile's products
    const float* a = sk.scale.data() + tile * kTile;
    const float* wt = w[static_cast<size_t>(u)] + tile * kTile;
    ops::sketch_tile_sums(x, a, wt, kTile, part[static_cast<size_t>(u * nt + tile)], top[static_cast<size_t>(u * nt + tile)]);
  };
  std::vector<int64_t> to_multiply, to_read;
  for (int64_t u = 0; u < nu; ++u) (known[static_cast<size_t>(u)] != nullptr ? to_read : to_multiply).push_back(u);
  constexpr int64_t kChunk = 384;  // vectors per sweep over the vocabulary (their codes stay in L2)
  std::vector<uint8_t> chunk_xs(static_cast<size_t>(std::min<int64_t>(kChunk, static_cast<int64_t>(to_multiply.size())) * kp));
  for (size_t c0 = 0; c0 < to_multiply.size(); c0 += kChunk) {
    const int64_t m = std::min<int64_t>(kChunk, static_cast<int64_t>(to_multiply.size() - c0));
    for (int64_t i = 0; i < m; ++i) {
      const uint8_t* src = xs.data() + to_multiply[c0 + static_cast<size_t>(i)] * kp;
      std::copy(src, src + kp, chunk_xs.begin() + i * kp);
    }
    parallel_for(n_threads, nt, [&](int64_t t0, int64_t t1) {
      std::vector<int32_t> dots(static_cast<size_t>(m * kTile));  // [m, 64]
      for (int64_t tile = t0; tile < t1; ++tile) {
        ops::int8_dot_tile(sk.codes, tile, chunk_xs.data(), m, dots.data());
        for (int64_t i = 0; i < m; ++i) {
          const int64_t u = to_multiply[c0 + static_cast<size_t>(i)];
          const int32_t* x = dots.data() + i * kTile;
          if (VectorSketch* f = fresh[static_cast<size_t>(u)]; f != nullptr) std::copy(x, x + kTile, f->dots + tile * kTile);
          evaluate(u, tile, x);
        }
      }
    });
  }
  parallel_for(n_threads, nt, [&](int64_t t0, int64_t t1) {
    for (const int64_t u : to_read) {
      const int32_t* x = known[static_cast<size_t>(u)]->dots;
      for (int64_t tile = t0; tile < t1; ++tile) evaluate(u, tile, x + tile * kTile);
    }
  });
  // 5. Each job's certified value (certify_job).
  const auto certify = [&](int64_t v) {
    const auto u = pair_of[static_cast<size_t>(v)];
    const auto vi = static_cast<size_t>(u);
    double a2 = 0, peak = 0;
    for (int64_t tile = 0; tile < nt; ++tile) {
      a2 += static_cast<double>(part[static_cast<size_t>(u * nt + tile)]);
      peak = std::max(peak, static_cast<double>(top[static_cast<size_t>(u * nt + tile)]));
    }
    out[static_cast<size_t>(v)] = certify_job(sk, jobs[static_cast<size_t>(v)], rounded[vi], qf[vi], qz[vi], peak, a2, tol,
                                              half_widths != nullptr ? half_widths->data() + v : nullptr);
  };
  parallel_for(n_threads, n, [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; ++v) certify(v);
  });
  if (sk.screen_forms) {
    // The vectors that lambda_max left uncertified get their forms, and every job of theirs is
    // certified again with them (a vector certified by lambda_max would be by its forms too: they
    // are never larger).
    std::vector<char> needs(static_cast<size_t>(nu), 0);
    for (int64_t v = 0; v < n; ++v) {
      const auto u = pair_of[static_cast<size_t>(v)];
      if (std::isnan(out[static_cast<size_t>(v)]) && jobs[static_cast<size_t>(v)].t->mass > 0 && rounded[static_cast<size_t>(u)].b > 0) {
        needs[static_cast<size_t>(u)] = 1;
      }
    }
    std::vector<int64_t> list;
    for (int64_t u = 0; u < nu; ++u) {
      if (needs[static_cast<size_t>(u)] && !read_forms(u)) list.push_back(u);
    }
    compute_forms(list);
    std::vector<int64_t> again;
    for (int64_t v = 0; v < n; ++v) {
      if (needs[static_cast<size_t>(pair_of[static_cast<size_t>(v)])]) again.push_back(v);
    }
    parallel_for(n_threads, static_cast<int64_t>(again.size()), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) certify(again[static_cast<size_t>(i)]);
    });
  }
  // Published last, whole: the products of every tile, and the forms where this call computed them.
  for (int64_t u = 0; u < nu; ++u) {
    VectorSketch* f = fresh[static_cast<size_t>(u)];
    if (f == nullptr) continue;
    f->qf = qf[static_cast<size_t>(u)], f->qz = qz[static_cast<size_t>(u)];
    const SketchJob& job = jobs[rep[static_cast<size_t>(u)]];
    shared->publish_ffn_sketch(job.ffn_layer, job.ffn_neuron);
  }
  return out;
}

std::vector<double> sketched_log_expectations_shared(const ProjectionSketch& sk, const std::vector<SketchJob>& jobs,
                                                     double tol, int n_threads, std::vector<double>& half_widths,
                                                     const SharedProjections& shared) {
  const auto n = static_cast<int64_t>(jobs.size());
  const int64_t d = sk.d, n_pad = sk.codes.n_pad;
  std::vector<double> out(static_cast<size_t>(n), kNaN);
  half_widths.assign(static_cast<size_t>(n), kNaN);
  // The distinct vectors (their published sketches) and states.
  std::vector<const VectorSketch*> vecs;
  std::vector<const float*> y0s;
  std::vector<const TailSplit*> states;
  std::vector<int64_t> vec_of(static_cast<size_t>(n), -1), state_of(static_cast<size_t>(n), -1);
  {
    std::map<std::pair<int64_t, int64_t>, int64_t> seen_vec;
    std::map<const TailSplit*, int64_t> seen_state;
    for (int64_t i = 0; i < n; ++i) {
      const SketchJob& job = jobs[static_cast<size_t>(i)];
      const VectorSketch* known = job.ffn_layer >= 0 ? shared.ffn_sketch(job.ffn_layer, job.ffn_neuron) : nullptr;
      if (known == nullptr) continue;
      const auto v = seen_vec.emplace(std::make_pair(job.ffn_layer, job.ffn_neuron), static_cast<int64_t>(vecs.size())).first;
      if (v->second == static_cast<int64_t>(vecs.size())) vecs.push_back(known), y0s.push_back(job.y0);
      const auto t = seen_state.emplace(job.t, static_cast<int64_t>(states.size())).first;
      if (t->second == static_cast<int64_t>(states.size())) states.push_back(job.t);
      vec_of[static_cast<size_t>(i)] = v->second;
      state_of[static_cast<size_t>(i)] = t->second;
    }
  }
  const auto nv = static_cast<int64_t>(vecs.size()), ns = static_cast<int64_t>(states.size());
  if (nv == 0) return out;
  // Per vector: its rounding (the same as when its products were made); its largest |a_j x_j|
  // comes with the squares below.
  std::vector<Rounded> rounded(static_cast<size_t>(nv));
  std::vector<float> peak(static_cast<size_t>(nv), 0.0f);
  parallel_for(n_threads, nv, [&](int64_t v0, int64_t v1) {
    for (int64_t v = v0; v < v1; ++v) rounded[static_cast<size_t>(v)] = round_vector(y0s[static_cast<size_t>(v)], d, nullptr, nullptr, nullptr);
  });
  // Per state: the codes' tail weights [ns, n_pad].
  std::vector<float, DefaultInitAllocator<float>> W(static_cast<size_t>(ns * n_pad));  // every entry written
  parallel_for(n_threads, ns, [&](int64_t s0, int64_t s1) {
    for (int64_t t = s0; t < s1; ++t) code_weights_into(sk, *states[static_cast<size_t>(t)], W.data() + t * n_pad);
  });
  // sum_T q_j a_j^2 x_j^2 of every (state, vector) pair: per block of 256 tokens one float product
  // [ns, 256] x [256, m] (a chain of 16 fused multiply-adds per lane and a 4-level tree: ~20
  // roundings of 2^-24 of the terms' sum, and x_j^2 and the weights rounded to float as the lanes
  // round them), the blocks added in double: within cached_log_expectation's 1e-5. Each thread
  // takes a range of vectors; a pair's value depends only on its state and vector.
  constexpr int64_t kTokens = 256;
  std::vector<double> a2(static_cast<size_t>(ns * nv), 0.0);  // [ns, nv]
  parallel_for(n_threads, nv, [&](int64_t v0, int64_t v1) {
    const int64_t m = v1 - v0;
    std::vector<float> X2(static_cast<size_t>(m * kTokens));  // [m, 256] squared products
    std::vector<float> C(static_cast<size_t>(ns * m));       // [ns, m]
    for (int64_t j0 = 0; j0 < n_pad; j0 += kTokens) {
      const int64_t len = std::min(kTokens, n_pad - j0);
      const float* a = sk.scale.data() + j0;
      for (int64_t v = 0; v < m; ++v) {
        const int32_t* x = vecs[static_cast<size_t>(v0 + v)]->dots + j0;
        // (len is a multiple of 64: n_pad is.)
        float& mx = peak[static_cast<size_t>(v0 + v)];
        mx = ops::squares_and_peak(x, a, len, X2.data() + v * len, mx);
      }
      ops::matmul_nt(ns, m, len, W.data() + j0, n_pad, X2.data(), len, C.data(), m, 1);
      for (int64_t t = 0; t < ns; ++t) {
        for (int64_t v = 0; v < m; ++v) a2[static_cast<size_t>(t * nv + v0 + v)] += static_cast<double>(C[static_cast<size_t>(t * m + v)]);
      }
    }
  });
  parallel_for(n_threads, n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t v = vec_of[static_cast<size_t>(i)], t = state_of[static_cast<size_t>(i)];
      if (v < 0) continue;
      const VectorSketch& k = *vecs[static_cast<size_t>(v)];
      out[static_cast<size_t>(i)] = certify_job(sk, jobs[static_cast<size_t>(i)], rounded[static_cast<size_t>(v)], k.qf, k.qz,
                                                static_cast<double>(peak[static_cast<size_t>(v)]), a2[static_cast<size_t>(t * nv + v)], tol,
                                                half_widths.data() + i);
    }
  });
  return out;
}

}  // namespace reslens::analysis
