// Precomputed vocabulary projections of every neuron direction of a model, quantized to int8 and
// cached on disk, so that a neuron whose cheap tail bound (analysis/bounds.h) is too loose can still
// be scored without projecting it onto the whole vocabulary (docs/explain.md, "The projection
// cache").
//
// For each FFN neuron k of layer l (direction y0 = gamma_f * c(fc2_k)) and each attention neuron
// (h, n) (direction y0 = gamma_f * c(W_O[:, h*d_head+n])), the row g0 = W_U y0 [d_vocab] is stored as
// integer codes c_j with a step: |g0_j - c_j * step| <= eps for every token j, where eps covers the
// rounding to codes and the float32 GEMM that computed g0 (a bound, not an estimate). gmax bounds
// max_j |g0_j|. At explain time g = g0 / sigma (the frozen final scale). FFN rows are int8 (one
// neuron's second moment needs only ~1%); attention rows are int16, because head and head-position
// vectors add d_head rows and with them d_head rows' errors; a head's d_head rows are contiguous.
//
// Size: n_layers * (d_mlp + 2 * n_heads * d_head) * d_vocab bytes (GPT-2 124M: 2.8 GB); building it
// projects every direction once, the cost of the straightforward method at one position.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>

#include <vector>

#include "core/mapped_file.h"
#include "reslens/model.h"

namespace reslens::analysis {

/// One FFN neuron's cached projection: codes [d_vocab] (in the cache file's memory map), step, a
/// bound eps on |g0_j - codes_j * step| and a bound gmax on max_j |g0_j| (in y0 units: divide by sigma).
struct CachedRow {
  const int8_t* codes = nullptr;
  double step = 0;
  double eps = 0;
  double gmax = 0;
};

/// One head's cached projections: codes [d_head, d_vocab] (in the cache file's memory map) and per
/// direction n the step, eps and gmax of CachedRow.
struct CachedHead {
  const int16_t* codes = nullptr;
  std::vector<double> step, eps, gmax;  ///< [d_head]
};

class ProjectionCache {
 public:
  /// The model's cache file under cache_dir(), whether or not it exists; empty without a cache dir.
  static std::filesystem::path path_for(const Model& model);
  /// Maps the model's cache file; nullptr when there is none, or it belongs to other weights, or it
  /// is truncated or malformed (a cache is only an optimisation: it is then rebuilt, never trusted).
  static std::shared_ptr<const ProjectionCache> open(const Model& model);

  ProjectionCache(const ProjectionCache&) = delete;
  ProjectionCache& operator=(const ProjectionCache&) = delete;

  /// Rows are read in place from the file's memory map (an explanation reads a few thousand
  /// scattered FFN rows and a few dozen whole heads, 2 * d_head * d_vocab contiguous bytes each);
  /// release_ffn / release_head drop the pages from the process once used, so the cache never
  /// adds up in its resident memory (the page cache keeps it for the next explanation).
  void ffn(int64_t layer, int64_t neuron, CachedRow& out) const;
  void release_ffn(int64_t layer) const;
  /// A head's rows and numbers; nothing is read yet: read_rows says which rows will be, so the
  /// kernel maps them in one call instead of faulting a page at a time.
  void attn_head(int64_t layer, int64_t head, CachedHead& out) const;
  void read_rows(const CachedHead& head, int64_t first, int64_t count) const;
  void release_head(const CachedHead& head) const;

 private:
  ProjectionCache() = default;

  std::unique_ptr<MappedFile> map_;
  int64_t V_ = 0, N_ = 0, A_ = 0, dh_ = 0, codes_offset_ = 0;
  std::vector<float> meta_;  // [n_layers, N + A, 3]: step, eps, gmax
};

/// Byte offset of the codes in a cache file of L layers and `rows` directions per layer.
int64_t codes_offset(int64_t L, int64_t rows);
/// One layer's codes: N int8 rows, then A int16 rows, of V codes each, each part padded to 64 bytes
/// (so every int16 row is aligned).
inline int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }
inline int64_t ffn_code_bytes(int64_t N, int64_t V) { return align64(N * V); }
inline int64_t layer_code_bytes(int64_t N, int64_t A, int64_t V) { return ffn_code_bytes(N, V) + align64(2 * A * V); }

/// Progress of a build: rows projected so far and in all.
using PrecomputeProgressFn = std::function<void(int64_t done, int64_t total)>;

/// Projects every direction and writes the model's cache file (atomically: a temporary file renamed
/// into place). Returns its path. Throws IoError naming the path when it cannot be written, and
/// InvalidArgument when there is no cache directory.
/// IoError naming `path`, both sizes and the way out when `need` bytes do not fit in `available`
/// (the build checks the cache directory's free space before writing anything).
void require_disk_room(const std::filesystem::path& path, int64_t need, uintmax_t available);

std::filesystem::path build_projection_cache(const Model& model, int n_threads, const PrecomputeProgressFn& progress = {});

/// a1 = sum_j q_j |codes_j| and a2 = sum_j q_j codes_j^2 over a [V] weight vector q (zero on the
/// tokens to leave out). Blocked float lanes with a double total: the relative error is below 1e-6.
void code_moments(const int8_t* codes, const float* q, int64_t V, double& a1, double& a2);
void code_moments(const int16_t* codes, const float* q, int64_t V, double& a1, double& a2);
/// The same for a float row, with top = max_j |r_j| over every token.
void row_moments(const float* r, const float* q, int64_t V, double& a1, double& a2, double& top);

}  // namespace reslens::analysis
