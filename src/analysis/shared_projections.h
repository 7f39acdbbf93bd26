// Vocabulary projections that several explains of one model can share (the steps of a target of
// several tokens, a generated answer). Internal.
//
// The exact pass of the bounded method projects a vector onto the whole vocabulary. For an FFN
// neuron (W_out's column k) and for an attention neuron's direction (W_O's column h*d_head+n) that
// vector is a weight, the same at every step: only its coefficient s and the final norm's frozen
// scale sigma change, and bs(s v) = (s / sigma) W_U (gamma_f * c(v)). So the exact pass projects the
// unscaled direction g0 = W_U (gamma_f * c(v)) [d_vocab] and scores with s / sigma, and the rows it
// projected are kept here for the steps after it. A row found here is the row the step would have
// projected itself (the GEMM's value of an element depends only on its two rows, ops/gemm.h), so
// sharing changes no bit of any score: it only saves the d_model x d_vocab multiply-adds per vector.
//
// The int8 projection sketch (analysis/projection_sketch.h) rounds the same unscaled direction at
// every step and multiplies it by W_U's codes: integers that do not depend on the step. A GPT-2 124M
// answer of 32 tokens sketches ~144k FFN neurons, ~11k distinct directions, so the steps also keep
// each direction's integer products (and its error forms) here and the later steps read them.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "reslens/model.h"

namespace reslens::analysis {

/// What the sketch computes of a vector independently of the state it is scored in: the exact
/// integer products c_j . y~ with W_U's codes, and its error forms f^T Gamma f and z^T Gamma_E z
/// (NaN where they were not computed).
struct VectorSketch {
  // [n_pad] (the codes' padded vocabulary): `owned`, or a slice of the store's arena. Left
  // uninitialised at reservation: the sketch's threads write (and so fault in) their own tiles, where
  // zeroing 200 KB per direction on one thread cost a serial pass over ~2 GB in a 32-token GPT-2
  // answer.
  int32_t* dots = nullptr;
  std::unique_ptr<int32_t[]> owned;
  double qf = std::numeric_limits<double>::quiet_NaN(), qz = std::numeric_limits<double>::quiet_NaN();
};

class SharedProjections {
 public:
  /// Keeps rows up to `budget_bytes` in all (further rows are projected again by every step).
  SharedProjections(const ModelConfig& config, int64_t budget_bytes);

  /// g0 of FFN neuron k of layer l, or of attention neuron direction n of head h (index h*d_head+n),
  /// when an earlier explain kept it; nullptr otherwise. [d_vocab]
  const float* ffn(int64_t l, int64_t k) const { return find(ffn_slot(l, k)); }
  const float* attn(int64_t l, int64_t hn) const { return find(attn_slot(l, hn)); }

  /// Keeps a copy of a row just projected, if the budget allows.
  void keep_ffn(int64_t l, int64_t k, const float* g0) { keep(ffn_slot(l, k), g0); }
  void keep_attn(int64_t l, int64_t hn, const float* g0) { keep(attn_slot(l, hn), g0); }

  /// The sketch of FFN neuron k's direction of layer l when an earlier explain published it; nullptr
  /// otherwise.
  const VectorSketch* ffn_sketch(int64_t l, int64_t k) const;
  /// A new entry for that sketch with `n_pad` products to fill, or nullptr when it is known or the
  /// budget is spent. It stays invisible to ffn_sketch() until publish_ffn_sketch() (an entry left
  /// unfilled, by an exception, is never read).
  VectorSketch* reserve_ffn_sketch(int64_t l, int64_t k, int64_t n_pad);
  void publish_ffn_sketch(int64_t l, int64_t k);
  /// Sketches that `other` published are found by ffn_sketch() here too, where this holds none of
  /// its own (read only; `other` must outlive this). A multi-token target's round 0 reads the
  /// steps' products this way instead of making them again (analysis/target_tightening.h).
  void read_sketches_from(const SharedProjections* other) { also_ = other; }
  /// Sketches reserved from here on take their products from `arena` ([capacity] int32, owned by
  /// the caller, who keeps it alive while this store is read) instead of an allocation each, while
  /// it has room. A store made per chunk of vectors reuses the pages of the previous chunk's this
  /// way, where 200 KB allocations were mapped and faulted in afresh every time.
  void use_arena(int32_t* arena, int64_t capacity) { arena_ = arena, arena_left_ = capacity; }

  int64_t rows_kept() const;
  int64_t bytes_kept() const;

 private:
  size_t ffn_slot(int64_t l, int64_t k) const { return static_cast<size_t>(l * per_layer_ + k); }
  size_t attn_slot(int64_t l, int64_t hn) const { return static_cast<size_t>(l * per_layer_ + d_mlp_ + hn); }
  const float* find(size_t slot) const;
  void keep(size_t slot, const float* g0);

  int64_t d_vocab_ = 0, d_mlp_ = 0, per_layer_ = 0, budget_bytes_ = 0;
  mutable std::mutex mu_;
  int64_t kept_ = 0, bytes_ = 0;
  std::vector<std::unique_ptr<float[]>> rows_;  // [n_layers * (d_mlp + n_heads * d_head)] of [d_vocab]
  struct SketchSlot {
    std::unique_ptr<VectorSketch> entry;
    bool published = false;
  };
  std::vector<SketchSlot> sketches_;  // [n_layers * d_mlp]
  const SharedProjections* also_ = nullptr;
  int32_t* arena_ = nullptr;
  int64_t arena_left_ = 0;
};

}  // namespace reslens::analysis
