// Reading weight matrices whatever their encoding. A Model keeps each matrix as its file stores it
// (float32, F16, BF16, llama.cpp's block quantizations: MatrixView::packed), so every reader of weights
// goes through these functions, which decode only the rows they need into float32 -- with the values a
// whole conversion at load would give (each block decodes on its own), so every result is the same bit
// for bit whichever way the model was loaded (tests/unit/model/encoded_weights_test.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/float_buffer.h"
#include "reslens/weights.h"

namespace reslens {

/// Rows [r0, r0 + n) of m as float32 in out ([n, m.cols], row stride m.cols).
void read_rows(const MatrixView& m, int64_t r0, int64_t n, float* out);

/// Row r of m as float32: a pointer into m when it is float32, else decoded into `scratch` (resized to
/// m.cols). The pointer is valid until scratch changes.
const float* row_floats(const MatrixView& m, int64_t r, std::vector<float>& scratch);

/// m[r0 : r0 + nr, c0 : c0 + nc] as float32 in out ([nr, nc], row stride nc): for an encoded matrix
/// only the blocks of each row that hold those columns are decoded (a head's columns of W_O).
void read_submatrix(const MatrixView& m, int64_t r0, int64_t nr, int64_t c0, int64_t nc, float* out);

/// C [M, W.cols] (double, contiguous) = A [M, W.rows] x W: ops::weighted_row_sums over W's rows for
/// any encoding. Encoded rows are decoded in the chunks of rows that function sums in float, so the
/// result is the same bits as on float32 weights.
void weighted_row_sums_weights(int64_t M, const float* A, int64_t lda, const MatrixView& W, double* C, int threads);

/// Element (r, c) of m as float32 (decodes the one block holding it).
float element(const MatrixView& m, int64_t r, int64_t c);

/// Column c of m ([m.rows]) as float32 into out: read_columns of that one column.
void read_column(const MatrixView& m, int64_t c, float* out);

/// Columns cols[i] of m as float32 rows of out ([cols.size(), m.rows]: out[i * m.rows + r] = m(r, cols[i])).
/// An encoded matrix decodes, per row, only the blocks that hold one of the columns, once each, so
/// a few dozen columns of a 7B layer's W_out cost a fraction of decoding it whole (and no copy of it).
void read_columns(const MatrixView& m, std::span<const int64_t> cols, float* out, int threads);

/// C [M, W.rows] = A [M, W.cols] * W^T (accumulate: C += ...), the forward pass's product for any
/// encoding: ops::matmul_nt on float32 weights, ops::matmul_nt_encoded (tiles decoded on the fly)
/// otherwise, which gives the same bits.
void matmul_weights(int64_t M, const float* A, int64_t lda, const MatrixView& W, float* C, int64_t ldc,
                    int threads, bool accumulate = false);

/// A float32 view of a matrix for code that reads it many times in place (one layer's W_O or W_out
/// while explain scores its neurons): the matrix itself when float32, else a decoded copy that lives as
/// long as this object (rows x cols x 4 bytes: docs/benchmarks.md counts it in explain's memory).
class FloatWeights {
 public:
  FloatWeights() = default;
  explicit FloatWeights(const MatrixView& m, int threads = 0);
  /// The same, decoding into `previous`'s storage when it holds a decoded matrix of this size: a loop
  /// over layers (`W = FloatWeights(layer's W_out, threads, std::move(W))`) then writes each layer
  /// into the same pages instead of mapping, faulting and clearing fresh ones (180 MB a 7B layer).
  FloatWeights(const MatrixView& m, int threads, FloatWeights&& previous);
  const MatrixView& view() const { return view_; }
  const MatrixView* operator->() const { return &view_; }

 private:
  FloatBuffer owned_{0};  // [rows, cols] when decoded
  MatrixView view_;
};

/// Bytes the matrix occupies as held (encoded bytes, or float32).
int64_t held_bytes(const MatrixView& m);

}  // namespace reslens
