// Rotary position embedding as a model describes it: which dims of a head pair up (RopeLayout) and
// how the angles stretch for long contexts (RopeScaling). Both are fields of ModelConfig
// (reslens/config.h); they live here so that the RoPE op (src/ops/rope.h) depends on these two types
// only, not on the model's configuration.
#pragma once

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
/// which is llama.cpp's ggml_rope_ext with freq_scale = 1 / linear_factor and rope_factors, and
/// covers Hugging Face's rope_scaling types "linear" (positions divided) and "llama3" (each pair's
/// frequency divided by its own factor). Types that change more than the angle (yarn, longrope,
/// dynamic) are refused at load.
struct RopeScaling {
  std::string type = "none";  ///< "none", "linear", "llama3" (HF) or "rope_freqs" (GGUF's rope_freqs.weight)
  double linear_factor = 1.0;       ///< positions are divided by it
  std::vector<double> freq_factors;  ///< [rotary_dim / 2] per-pair divisors; empty = all 1
  bool empty() const { return linear_factor == 1.0 && freq_factors.empty(); }
};

}  // namespace reslens
