#include "analysis/projection_cache.h"

#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include "analysis/bounds.h"
#include "analysis/cache_files.h"
#include "core/memory.h"
#include "core/parallel.h"
#include "model/weight_rows.h"
#include "ops/gemm.h"
#include "reslens/error.h"
#include "reslens/explain.h"

namespace reslens::analysis {

namespace {
constexpr char kMagic[8] = {'R', 'L', 'P', 'R', 'J', 'v', '5', '\n'};
constexpr int64_t kHeaderBytes = 64;
constexpr int64_t kAlign = 64;

// The header: magic, then fingerprint, V, d_model, n_layers, d_mlp, n_heads * d_head, 0.
struct Header {
  char magic[8];
  uint64_t fields[7];
};
static_assert(sizeof(Header) == kHeaderBytes);

}  // namespace

// Where the codes start: after the header and the [L, rows, 3] float meta, aligned.
int64_t codes_offset(int64_t L, int64_t rows) {
  const int64_t end = kHeaderBytes + L * rows * 3 * static_cast<int64_t>(sizeof(float));
  return (end + kAlign - 1) / kAlign * kAlign;
}

std::filesystem::path ProjectionCache::path_for(const Model& model) {
  const std::filesystem::path dir = cache_dir();
  if (dir.empty()) return {};
  return dir / ("projections-" + std::to_string(model_fingerprint(model)) + ".bin");
}

std::shared_ptr<const ProjectionCache> ProjectionCache::open(const Model& model) {
  const std::filesystem::path p = path_for(model);
  std::error_code ec;
  if (p.empty() || !std::filesystem::is_regular_file(p, ec)) return nullptr;
  const ModelConfig& c = model.config();
  const int64_t L = c.n_layers, N = c.d_mlp, A = c.n_heads * c.d_head, V = c.d_vocab;
  std::shared_ptr<ProjectionCache> pc(new ProjectionCache());
  try {
    pc->map_ = std::make_unique<MappedFile>(p);
  } catch (const IoError&) {
    return nullptr;  // unreadable: explain works without it
  }
  pc->V_ = V, pc->N_ = N, pc->A_ = A, pc->dh_ = c.d_head;
  pc->codes_offset_ = codes_offset(L, N + A);
  if (static_cast<int64_t>(pc->map_->size()) != pc->codes_offset_ + L * layer_code_bytes(N, A, V)) return nullptr;
  Header h{};
  std::memcpy(&h, pc->map_->data(), sizeof h);
  const uint64_t want[7] = {model_fingerprint(model), static_cast<uint64_t>(V), static_cast<uint64_t>(c.d_model),
                            static_cast<uint64_t>(L), static_cast<uint64_t>(N), static_cast<uint64_t>(A), 0};
  if (std::memcmp(h.magic, kMagic, 8) != 0 || std::memcmp(h.fields, want, sizeof want) != 0) return nullptr;
  pc->meta_.resize(static_cast<size_t>(L * (N + A) * 3));
  std::memcpy(pc->meta_.data(), pc->map_->data() + kHeaderBytes, pc->meta_.size() * sizeof(float));
  pc->map_->release({pc->map_->data(), static_cast<size_t>(pc->codes_offset_)});
  // Every row's numbers must be finite and non-negative; anything else is a damaged file.
  for (size_t i = 0; i < pc->meta_.size(); ++i) {
    if (!(std::isfinite(pc->meta_[i]) && pc->meta_[i] >= 0)) return nullptr;
  }
  return pc;
}

void ProjectionCache::ffn(int64_t layer, int64_t neuron, CachedRow& out) const {
  const float* m = meta_.data() + 3 * (layer * (N_ + A_) + neuron);
  out.step = static_cast<double>(m[0]), out.eps = static_cast<double>(m[1]), out.gmax = static_cast<double>(m[2]);
  out.codes = reinterpret_cast<const int8_t*>(map_->data() + codes_offset_ + layer * layer_code_bytes(N_, A_, V_) + neuron * V_);
  // One large read of the row when it is not in the page cache, instead of a fault per 64 KB.
  map_->will_need({reinterpret_cast<const uint8_t*>(out.codes), static_cast<size_t>(V_)});
}

void ProjectionCache::release_ffn(int64_t layer) const {
  map_->release({map_->data() + codes_offset_ + layer * layer_code_bytes(N_, A_, V_), static_cast<size_t>(N_ * V_)});
}

void ProjectionCache::attn_head(int64_t layer, int64_t head, CachedHead& out) const {
  out.step.resize(static_cast<size_t>(dh_));
  out.eps.resize(static_cast<size_t>(dh_));
  out.gmax.resize(static_cast<size_t>(dh_));
  for (int64_t n = 0; n < dh_; ++n) {
    const float* m = meta_.data() + 3 * (layer * (N_ + A_) + N_ + head * dh_ + n);
    out.step[static_cast<size_t>(n)] = static_cast<double>(m[0]);
    out.eps[static_cast<size_t>(n)] = static_cast<double>(m[1]);
    out.gmax[static_cast<size_t>(n)] = static_cast<double>(m[2]);
  }
  const int64_t off = codes_offset_ + layer * layer_code_bytes(N_, A_, V_) + ffn_code_bytes(N_, V_) + head * dh_ * 2 * V_;
  out.codes = reinterpret_cast<const int16_t*>(map_->data() + off);
}

void ProjectionCache::read_rows(const CachedHead& head, int64_t first, int64_t count) const {
  map_->populate({reinterpret_cast<const uint8_t*>(head.codes + first * V_), static_cast<size_t>(2 * count * V_)});
}

void ProjectionCache::release_head(const CachedHead& head) const {
  map_->release({reinterpret_cast<const uint8_t*>(head.codes), static_cast<size_t>(2 * dh_ * V_)});
}


void require_disk_room(const std::filesystem::path& path, int64_t need, uintmax_t available) {
  if (static_cast<uintmax_t>(need) <= available) return;
  throw IoError(path.string() + ": the projection cache takes " + size_text(need) + " but " +
                path.parent_path().string() + " has " + size_text(static_cast<int64_t>(available)) +
                " free (free some space, or set RESLENS_CACHE_DIR to a larger disk)");
}

namespace {

// Temporaries of builds that were killed (path.tmp<pid> whose process is gone): a killed build
// leaves only such a file, never the cache's own name, so nothing half-written is ever read; this
// reclaims their space.
void remove_stale_temporaries(const std::filesystem::path& path) {
  std::error_code ec;
  const std::string prefix = path.filename().string() + ".tmp";
  for (const auto& e : std::filesystem::directory_iterator(path.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (std::filesystem::exists("/proc/" + pid, ec)) continue;  // a build still running
    std::filesystem::remove(e.path(), ec);
  }
}

}  // namespace

std::filesystem::path build_projection_cache(const Model& model, int n_threads, const PrecomputeProgressFn& progress) {
  const std::filesystem::path path = ProjectionCache::path_for(model);
  if (path.empty()) {
    throw InvalidArgument("no cache directory: set RESLENS_CACHE_DIR (or XDG_CACHE_HOME or HOME)");
  }
  const ModelConfig& c = model.config();
  // Every chunk below multiplies by all of W_U: an encoded one is decoded once for the whole build.
  const FloatWeights unembed(model.weights().W_U, n_threads);
  const MatrixView& U = unembed.view();  // [d_vocab, d_model]
  const int64_t L = c.n_layers, N = c.d_mlp, A = c.n_heads * c.d_head, V = c.d_vocab, d = c.d_model;
  const int64_t rows = N + A;

  // A float32 dot product of length d has error <= gamma_d sum_i |y_i u_i| <= gamma_d |y| max_j |u_j|
  // (and y0's own rounding adds one more unit): the GEMM part of each row's eps.
  double umax = 0;
  for (int64_t j = 0; j < V; ++j) {
    const float* u = U.row(j);
    double n2 = 0;
    for (int64_t k = 0; k < d; ++k) n2 += static_cast<double>(u[k]) * static_cast<double>(u[k]);
    umax = std::max(umax, std::sqrt(n2));
  }
  const double unit = std::ldexp(1.0, -24);
  const double gamma_d = static_cast<double>(d + 2) * unit / (1.0 - static_cast<double>(d + 2) * unit);

  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw IoError("cannot create the cache directory " + path.parent_path().string() + ": " + ec.message());
  remove_stale_temporaries(path);
  // A 7B model's cache is ~20 GB: refuse before writing a byte when the disk lacks room, with both
  // sizes, rather than fill the disk and fail part way. (An old cache being replaced still counts
  // as taken: the new one is written beside it and renamed over it at the end.)
  const std::filesystem::space_info room = std::filesystem::space(path.parent_path(), ec);
  if (!ec) require_disk_room(path, codes_offset(L, rows) + L * layer_code_bytes(N, A, V), room.available);
  const std::string tmp = path.string() + ".tmp" + std::to_string(::getpid());
  // A failed write names the cache file and the system's reason (errno of the write that failed,
  // read at once) and stops the build there; the temporary is removed below.
  const auto write_failed = [&](int err) {
    return IoError(path.string() + ": cannot write the projection cache (" +
                   (err != 0 ? std::error_code(err, std::generic_category()).message() : std::string("disk full?")) + ")");
  };
  errno = 0;
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw write_failed(errno);

  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  const uint64_t fields[7] = {model_fingerprint(model), static_cast<uint64_t>(V), static_cast<uint64_t>(d),
                              static_cast<uint64_t>(L), static_cast<uint64_t>(N), static_cast<uint64_t>(A), 0};
  std::memcpy(h.fields, fields, sizeof fields);
  std::vector<float> meta(static_cast<size_t>(L * rows * 3), 0.0f);
  const int64_t off = codes_offset(L, rows);
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  std::vector<char> zeros(static_cast<size_t>(off - kHeaderBytes), 0);
  out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));  // meta, filled in at the end

  // A build stopped part way (an exception from `progress`, a full disk) leaves no temporary behind.
  struct RemoveUnlessDone {
    const std::string& file;
    bool done = false;
    ~RemoveUnlessDone() {
      std::error_code e;
      if (!done) std::filesystem::remove(file, e);
    }
  } cleanup{tmp};
  const int64_t kChunk = std::max<int64_t>(1, 128 / c.d_head) * c.d_head;  // whole heads per chunk
  std::vector<float> G(static_cast<size_t>(kChunk * V));  // [chunk, V]
  std::vector<int16_t> codes(static_cast<size_t>(kChunk * V));
  std::vector<int8_t> codes8(static_cast<size_t>(kChunk * V));
  const int64_t total = L * rows;
  int64_t done = 0;
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& lw = model.weights().layers[static_cast<size_t>(l)];
    for (int part = 0; part < 2; ++part) {
      const bool wide = part == 1;  // attention rows: int16
      const double levels = wide ? 32767.0 : 127.0;
      const int64_t n_dir = part == 0 ? N : A;
      const std::vector<float> y0 = prepared_columns(model, part == 0 ? lw.W_out : lw.W_O, 0, n_dir);  // [n_dir, d]
      for (int64_t r0 = 0; r0 < n_dir; r0 += kChunk) {
        const int64_t n = std::min(kChunk, n_dir - r0);
        ops::matmul_nt(n, V, d, y0.data() + r0 * d, d, U.data, U.ld, G.data(), V, n_threads);
        for (int64_t i = 0; i < n; ++i) {
          const float* g = G.data() + i * V;
          double gmax = 0, ynorm = 0;
          for (int64_t j = 0; j < V; ++j) gmax = std::max(gmax, std::abs(static_cast<double>(g[j])));
          for (int64_t k = 0; k < d; ++k) {
            const double y = static_cast<double>(y0[static_cast<size_t>((r0 + i) * d + k)]);
            ynorm += y * y;
          }
          const double gemm_err = gamma_d * std::sqrt(ynorm) * umax;
          float* m = meta.data() + ((l * rows) + (part == 0 ? 0 : N) + r0 + i) * 3;
          m[0] = static_cast<float>(gmax > 0 ? gmax / levels : 1.0);
          const double step = static_cast<double>(m[0]);  // the step as stored is the one the codes use
          int16_t* cd = codes.data() + i * V;
          double quant_err = 0;
          for (int64_t j = 0; j < V; ++j) {
            const double k = std::clamp(std::nearbyint(static_cast<double>(g[j]) / step), -levels, levels);
            cd[j] = static_cast<int16_t>(k);
            quant_err = std::max(quant_err, std::abs(static_cast<double>(g[j]) - k * step));
          }
          // Stored as float: rounded up so they stay bounds.
          m[1] = std::nextafter(static_cast<float>((quant_err + gemm_err) * (1 + 1e-6)), INFINITY);
          m[2] = std::nextafter(static_cast<float>((gmax + gemm_err) * (1 + 1e-6)), INFINITY);
        }
        if (wide) {
          out.write(reinterpret_cast<const char*>(codes.data()), static_cast<std::streamsize>(n * V * 2));
        } else {
          for (int64_t j = 0; j < n * V; ++j) codes8[static_cast<size_t>(j)] = static_cast<int8_t>(codes[static_cast<size_t>(j)]);
          out.write(reinterpret_cast<const char*>(codes8.data()), static_cast<std::streamsize>(n * V));
        }
        if (!out) throw write_failed(errno);
        done += n;
        if (progress) progress(done, total);
      }
      // Pad the part to 64 bytes (every int16 row then starts aligned).
      const int64_t bytes = part == 0 ? N * V : 2 * A * V;
      const std::vector<char> pad(static_cast<size_t>(align64(bytes) - bytes), 0);
      out.write(pad.data(), static_cast<std::streamsize>(pad.size()));
    }
  }
  out.seekp(kHeaderBytes);
  out.write(reinterpret_cast<const char*>(meta.data()), static_cast<std::streamsize>(meta.size() * sizeof(float)));
  errno = 0;
  out.close();
  if (!out) throw write_failed(errno);
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw write_failed(ec.value());
  cleanup.done = true;
  return path;
}

}  // namespace reslens::analysis

namespace reslens {

ProjectionCacheInfo projection_cache_info(const Model& model) {
  const ModelConfig& c = model.config();
  ProjectionCacheInfo info;
  info.path = analysis::ProjectionCache::path_for(model);
  info.bytes = analysis::codes_offset(c.n_layers, c.d_mlp + c.n_heads * c.d_head) +
               c.n_layers * analysis::layer_code_bytes(c.d_mlp, c.n_heads * c.d_head, c.d_vocab);
  info.present = analysis::ProjectionCache::open(model) != nullptr;
  return info;
}

ProjectionCacheInfo precompute_projections(const Model& model, int n_threads,
                                           const std::function<void(int64_t, int64_t)>& progress) {
  analysis::build_projection_cache(model, n_threads > 0 ? n_threads : default_threads(), progress);
  return projection_cache_info(model);
}

}  // namespace reslens

namespace reslens::analysis {

namespace {

// 16 float lanes over blocks of 512 tokens, then a double total across blocks. Every lane is a chain of
// separate multiplies and adds (no FMA), so the AVX-512 and portable paths give the same bits.
constexpr int64_t kLanes = 16, kBlock = 512;

template <typename Code>
void code_moments_portable(const Code* codes, const float* q, int64_t n_blocks, double& a1, double& a2) {
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    float s1[kLanes] = {}, s2[kLanes] = {};
    const Code* c = codes + blk * kBlock;
    const float* w = q + blk * kBlock;
    for (int64_t b = 0; b < kBlock; b += kLanes) {
      for (int64_t t = 0; t < kLanes; ++t) {
        const auto k = static_cast<float>(c[b + t]);
        const float wk = w[b + t] * k;
        s1[t] += w[b + t] * std::abs(k);
        s2[t] += wk * k;
      }
    }
    for (int64_t t = 0; t < kLanes; ++t) a1 += static_cast<double>(s1[t]), a2 += static_cast<double>(s2[t]);
  }
}

#if defined(__x86_64__)
// (GCC 12 builds the unmasked conversions on an undefined vector, which -Wmaybe-uninitialized
// reports; the maskz forms with an all-ones mask are the same instructions.)
constexpr __mmask16 kAll = 0xFFFF;

__attribute__((target("avx512f,avx512bw"))) inline __m512i widen(const int8_t* c) {
  return _mm512_maskz_cvtepi8_epi32(kAll, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
}
__attribute__((target("avx512f,avx512bw"))) inline __m512i widen(const int16_t* c) {
  return _mm512_maskz_cvtepi16_epi32(kAll, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c)));
}

template <typename Code>
__attribute__((target("avx512f,avx512bw"))) void code_moments_avx512(const Code* codes, const float* q, int64_t n_blocks,
                                                                      double& a1, double& a2) {
  for (int64_t blk = 0; blk < n_blocks; ++blk) {
    __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    const Code* c = codes + blk * kBlock;
    const float* w = q + blk * kBlock;
    for (int64_t b = 0; b < kBlock; b += kLanes) {
      const __m512i ki = widen(c + b);
      const __m512 k = _mm512_maskz_cvtepi32_ps(kAll, ki);
      const __m512 ka = _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_abs_epi32(kAll, ki));
      const __m512 wv = _mm512_loadu_ps(w + b);
      s1 = _mm512_add_ps(s1, _mm512_mul_ps(wv, ka));
      s2 = _mm512_add_ps(s2, _mm512_mul_ps(_mm512_mul_ps(wv, k), k));
    }
    alignas(64) float l1[kLanes], l2[kLanes];
    _mm512_store_ps(l1, s1);
    _mm512_store_ps(l2, s2);
    for (int64_t t = 0; t < kLanes; ++t) a1 += static_cast<double>(l1[t]), a2 += static_cast<double>(l2[t]);
  }
}
#endif

template <typename Code>
void moments(const Code* codes, const float* q, int64_t V, double& a1, double& a2) {
  a1 = 0;
  a2 = 0;
  const int64_t n_blocks = V / kBlock;
#if defined(__x86_64__)
  if (ops::detail::gemm_active_isa() == ops::detail::GemmIsa::avx512) {
    code_moments_avx512(codes, q, n_blocks, a1, a2);
  } else {
    code_moments_portable(codes, q, n_blocks, a1, a2);
  }
#else
  code_moments_portable(codes, q, n_blocks, a1, a2);
#endif
  for (int64_t j = n_blocks * kBlock; j < V; ++j) {
    const auto k = static_cast<double>(codes[j]);
    a1 += static_cast<double>(q[j]) * std::abs(k);
    a2 += static_cast<double>(q[j]) * k * k;
  }
}

}  // namespace

void code_moments(const int8_t* codes, const float* q, int64_t V, double& a1, double& a2) { moments(codes, q, V, a1, a2); }

#if defined(__x86_64__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void row_moments(const float* r, const float* q, int64_t V, double& a1, double& a2, double& top) {
  a1 = 0, a2 = 0, top = 0;
  int64_t j = 0;
  for (; j + kBlock <= V; j += kBlock) {
    float s1[kLanes] = {}, s2[kLanes] = {}, mx[kLanes] = {};
    for (int64_t b = 0; b < kBlock; b += kLanes) {
      for (int64_t t = 0; t < kLanes; ++t) {
        const float x = r[j + b + t], w = q[j + b + t];
        const float ax = std::abs(x);
        s1[t] += w * ax;
        s2[t] += (w * x) * x;
        mx[t] = std::max(mx[t], ax);
      }
    }
    for (int64_t t = 0; t < kLanes; ++t) {
      a1 += static_cast<double>(s1[t]), a2 += static_cast<double>(s2[t]);
      top = std::max(top, static_cast<double>(mx[t]));
    }
  }
  for (; j < V; ++j) {
    const auto x = static_cast<double>(r[j]), w = static_cast<double>(q[j]);
    a1 += w * std::abs(x);
    a2 += w * x * x;
    top = std::max(top, std::abs(x));
  }
}
void code_moments(const int16_t* codes, const float* q, int64_t V, double& a1, double& a2) { moments(codes, q, V, a1, a2); }

}  // namespace reslens::analysis
