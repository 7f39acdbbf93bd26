// Rotary position embedding. A pair (a, b) of a head's dims rotates by angle
// (pos / linear_factor) * base^(-2i/rot_dim) / freq_factors[i] for the pair's index i, and its cos
// and sin are multiplied by attn_factor (RopeScaling in reslens/rope.h; without scaling,
// pos * base^(-2i/rot_dim) and 1). Which dims pair up depends on the layout the weights were stored in:
// kInterleaved (llama.cpp, llama2.c): (2i, 2i+1); kHalf (Hugging Face): (i, i + rot_dim/2).
#pragma once

#include <cstdint>
#include <vector>

#include "reslens/rope.h"

namespace reslens::ops {

/// cos/sin tables for positions [pos0, pos0 + n_pos): [n_pos, rot_dim/2] each, angles in double.
/// `scaling.freq_factors`, when not empty, has rot_dim/2 entries.
struct RopeTable {
  int64_t pos0 = 0;
  int64_t n_pos = 0;
  int64_t half = 0;
  std::vector<float> cos;
  std::vector<float> sin;
};
RopeTable make_rope_table(int64_t pos0, int64_t n_pos, int64_t rot_dim, float base,
                          const RopeScaling& scaling = {});

/// Rotates x: [n_pos, n_heads, d_head] (row stride `ld` floats between positions) in place.
void apply_rope(float* x, int64_t n_pos, int64_t n_heads, int64_t d_head, int64_t ld,
                const RopeTable& table, RopeLayout layout);

/// Reorders one head's first rot_dim dims from interleaved-pair order to rotate_half order:
/// out[i] = in[2i], out[rot_dim/2 + i] = in[2i + 1]. Dims past rot_dim are copied.
void interleaved_to_half(float* out, const float* in, int64_t d_head, int64_t rot_dim);
/// The inverse of interleaved_to_half: out[2i] = in[i], out[2i + 1] = in[rot_dim/2 + i].
void half_to_interleaved(float* out, const float* in, int64_t d_head, int64_t rot_dim);

}  // namespace reslens::ops
