// Rotary position embedding as a model describes it: which dims of a head pair up (RopeLayout) and
// how the angles stretch for long contexts (RopeScaling). Both are fields of ModelConfig
// (reslens/config.h); they live here so that the RoPE op (src/ops/rope.h) depends on these two types
// only, not on the model's configuration.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace reslens {

/// Where each rotary pair sits inside a head's query/key vector.
enum class RopeLayout {
  kHalf,         ///< rotate_half / llama.cpp "NEOX": dims (i, i + rotary_dim/2) form a pair (Hugging Face,
                 ///< and GGUF families llama.cpp rotates that way: qwen2).
  kInterleaved,  ///< llama.cpp "NORM" (GGUF llama, whose converter permutes Q/K rows) and llama2.c:
                 ///< dims (2i, 2i+1) form a pair.
};

/// How rotary angles stretch for long contexts. Pair i of a head turns by
///   angle(pos, i) = (pos / linear_factor) * base^(-2i / rotary_dim) / freq_factors[i],
/// and its cos and sin are multiplied by attn_factor. That is llama.cpp's ggml_rope_ext with
/// freq_scale = 1 / linear_factor, rope_factors and the attention factor, and covers Hugging Face's
/// rope_scaling types "linear" (positions divided), "llama3" (each pair's frequency divided by its
/// own factor), "yarn" (per-pair divisors blending 1 and `factor` by ggml's correction ramp, times
/// YaRN's magnitude scale) and "longrope" (the long or the short factors as divisors, times the
/// attention factor); docs/formats.md "RoPE scaling". "dynamic" (the angle depends on the sequence
/// length) is refused at load.
struct RopeScaling {
  std::string type = "none";  ///< "none", "linear", "llama3" (HF), "rope_freqs" (GGUF's rope_freqs.weight),
                              ///< "yarn" or "longrope"
  double linear_factor = 1.0;       ///< positions are divided by it
  std::vector<double> freq_factors;  ///< [rotary_dim / 2] per-pair divisors; empty = all 1
  double attn_factor = 1.0;          ///< every cos and sin is multiplied by it (YaRN's mscale, LongRoPE's factor)
  double factor = 1.0;               ///< yarn, longrope: the context extension factor the file names (inspect)
  int64_t original_context = 0;      ///< yarn, longrope: the context the model was trained with (inspect)
  std::string factor_set;            ///< longrope: "long" or "short", the factors in freq_factors
  bool empty() const { return linear_factor == 1.0 && freq_factors.empty() && attn_factor == 1.0; }
};

}  // namespace reslens
