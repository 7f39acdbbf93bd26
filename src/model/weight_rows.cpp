#include "model/weight_rows.h"

#include <algorithm>
#include <span>

#include "core/check.h"
#include "core/parallel.h"
#include "model/storage.h"
#include "ops/gemm.h"
#include "ops/vector_ops.h"
#include "reslens/error.h"

namespace reslens {

namespace detail {
void packed_matrix_read_as_float() {
  throw InternalError("a matrix kept in its file's encoding was read as float32 (use model/weight_rows.h)");
}
}  // namespace detail

void read_rows(const MatrixView& m, int64_t r0, int64_t n, float* out) {
  RESLENS_CHECK(r0 >= 0 && n >= 0 && r0 + n <= m.rows, "read_rows: rows out of range");
  if (m.is_float()) {
    for (int64_t r = 0; r < n; ++r) std::copy(m.row(r0 + r), m.row(r0 + r) + m.cols, out + r * m.cols);
    return;
  }
  dequantize_fn(m.encoding)(out, std::span<const uint8_t>(m.packed + r0 * m.ld_bytes, static_cast<size_t>(n * m.ld_bytes)),
                            n * m.cols);
}

const float* row_floats(const MatrixView& m, int64_t r, std::vector<float>& scratch) {
  if (m.is_float()) return m.row(r);
  scratch.resize(static_cast<size_t>(m.cols));
  read_rows(m, r, 1, scratch.data());
  return scratch.data();
}

void read_submatrix(const MatrixView& m, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float* out) {
  RESLENS_CHECK(r0 >= 0 && nr >= 0 && r0 + nr <= m.rows && c0 >= 0 && nc >= 0 && c0 + nc <= m.cols,
                "read_submatrix: out of range");
  if (m.is_float()) {
    for (int64_t r = 0; r < nr; ++r) std::copy(m.row(r0 + r) + c0, m.row(r0 + r) + c0 + nc, out + r * nc);
    return;
  }
  if (nc == 0) return;
  const EncodingBlock b = encoding_block(m.encoding);
  const int64_t first = c0 / b.elements, last = (c0 + nc - 1) / b.elements;  // blocks holding the columns
  const int64_t span_elems = (last - first + 1) * b.elements;
  std::vector<float> values(static_cast<size_t>(span_elems));  // [blocks x block elements] of one row
  const DequantizeFn decode = dequantize_fn(m.encoding);
  for (int64_t r = 0; r < nr; ++r) {
    decode(values.data(),
           std::span<const uint8_t>(m.packed + (r0 + r) * m.ld_bytes + first * b.bytes, static_cast<size_t>((last - first + 1) * b.bytes)),
           span_elems);
    std::copy(values.begin() + (c0 - first * b.elements), values.begin() + (c0 - first * b.elements + nc), out + r * nc);
  }
}

void weighted_row_sums_weights(int64_t M, const float* A, int64_t lda, const MatrixView& W, double* C, int threads) {
  if (W.is_float()) {
    ops::weighted_row_sums(M, W.rows, W.cols, A, lda, W.data, W.ld, C, threads);
    return;
  }
  std::fill(C, C + M * W.cols, 0.0);
  const int64_t chunk = ops::kWeightedRowSumsChunk;
  std::vector<float> rows(static_cast<size_t>(chunk * W.cols));  // [chunk, cols] decoded
  for (int64_t k0 = 0; k0 < W.rows; k0 += chunk) {
    const int64_t n = std::min(chunk, W.rows - k0);
    const int64_t per_task = 16;
    parallel_for(threads, (n + per_task - 1) / per_task, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t r = t * per_task;
        read_rows(W, k0 + r, std::min(per_task, n - r), rows.data() + r * W.cols);
      }
    });
    // One chunk per call: its partial sums are the float chunk sums of the float32 path, added to C
    // in double in the same order.
    ops::weighted_row_sums_add(M, n, W.cols, A + k0, lda, rows.data(), W.cols, C, threads);
  }
}

float element(const MatrixView& m, int64_t r, int64_t c) {
  if (m.is_float()) return m.at(r, c);
  const EncodingBlock b = encoding_block(m.encoding);
  const int64_t block = c / b.elements;
  float values[256];  // [block elements]: 256 is the largest block
  RESLENS_CHECK(b.elements <= 256, "block size");
  dequantize_fn(m.encoding)(values, std::span<const uint8_t>(m.packed + r * m.ld_bytes + block * b.bytes, static_cast<size_t>(b.bytes)),
                            b.elements);
  return values[c - block * b.elements];
}

void read_column(const MatrixView& m, int64_t c, float* out) { read_columns(m, std::span<const int64_t>(&c, 1), out, 1); }

void read_columns(const MatrixView& m, std::span<const int64_t> cols, float* out, int threads) {
  const auto n = static_cast<int64_t>(cols.size());
  for (const int64_t c : cols) RESLENS_CHECK(c >= 0 && c < m.cols, "read_columns: column out of range");
  if (n == 0) return;
  if (m.is_float()) {
    parallel_for(threads, m.rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t i = 0; i < n; ++i) out[i * m.rows + r] = m.at(r, cols[static_cast<size_t>(i)]);
      }
    });
    return;
  }
  // The distinct blocks holding the columns, and each column's block among them.
  const EncodingBlock b = encoding_block(m.encoding);
  std::vector<int64_t> blocks;
  for (const int64_t c : cols) blocks.push_back(c / b.elements);
  std::sort(blocks.begin(), blocks.end());
  blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
  std::vector<int64_t> at(static_cast<size_t>(n));  // [n] column i's value among the decoded blocks
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = cols[static_cast<size_t>(i)];
    const auto slot = std::lower_bound(blocks.begin(), blocks.end(), c / b.elements) - blocks.begin();
    at[static_cast<size_t>(i)] = slot * b.elements + c % b.elements;
  }
  const DequantizeFn decode = dequantize_fn(m.encoding);
  const auto nb = static_cast<int64_t>(blocks.size());
  parallel_for(threads, m.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> values(static_cast<size_t>(nb * b.elements));  // [nb, block elements] of one row
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = m.packed + r * m.ld_bytes;
      for (int64_t j = 0; j < nb; ++j) {
        decode(values.data() + j * b.elements,
               std::span<const uint8_t>(row + blocks[static_cast<size_t>(j)] * b.bytes, static_cast<size_t>(b.bytes)), b.elements);
      }
      for (int64_t i = 0; i < n; ++i) out[i * m.rows + r] = values[static_cast<size_t>(at[static_cast<size_t>(i)])];
    }
  });
}

void matmul_weights(int64_t M, const float* A, int64_t lda, const MatrixView& W, float* C, int64_t ldc, int threads,
                    bool accumulate) {
  if (W.is_float()) {
    if (accumulate) ops::matmul_nt_accumulate(M, W.rows, W.cols, A, lda, W.data, W.ld, C, ldc, threads);
    else ops::matmul_nt(M, W.rows, W.cols, A, lda, W.data, W.ld, C, ldc, threads);
    return;
  }
  const EncodingBlock block = encoding_block(W.encoding);
  const ops::EncodedRows rows{W.packed, W.ld_bytes, dequantize_fn(W.encoding), block.elements, block.bytes};
  ops::matmul_nt_encoded(M, W.rows, W.cols, A, lda, rows, C, ldc, threads, accumulate);
}

FloatWeights::FloatWeights(const MatrixView& m, int threads) : FloatWeights(m, threads, FloatWeights()) {}

FloatWeights::FloatWeights(const MatrixView& m, int threads, FloatWeights&& previous) {
  if (m.is_float()) {
    view_ = m;
    return;
  }
  // Every element is written below, so the previous matrix's values never show. Storage of another
  // size is freed before a new one is mapped, so the two are never held at once.
  if (previous.owned_.size() == m.rows * m.cols) owned_ = std::move(previous.owned_);
  previous = FloatWeights();
  if (owned_.size() != m.rows * m.cols) owned_ = FloatBuffer(m.rows * m.cols);
  // Blocks of rows on every core: each row decodes on its own, so the split changes nothing.
  const int64_t per_task = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(m.cols, 1));
  parallel_for(threads, (m.rows + per_task - 1) / per_task, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t r0 = t * per_task, n = std::min(per_task, m.rows - r0);
      read_rows(m, r0, n, owned_.data() + r0 * m.cols);
    }
  });
  view_ = MatrixView{owned_.data(), m.rows, m.cols, m.cols};
}

int64_t held_bytes(const MatrixView& m) {
  return m.is_float() ? m.rows * m.cols * static_cast<int64_t>(sizeof(float)) : m.rows * m.ld_bytes;
}

}  // namespace reslens
