#include "ops/rope.h"

#include <cmath>

namespace reslens::ops {

RopeTable make_rope_table(int64_t pos0, int64_t n_pos, int64_t rot_dim, float base,
                          const RopeScaling& scaling) {
  RopeTable t;
  t.pos0 = pos0;
  t.n_pos = n_pos;
  t.half = rot_dim / 2;
  t.cos.resize(static_cast<size_t>(n_pos * t.half));
  t.sin.resize(static_cast<size_t>(n_pos * t.half));
  // Per-pair frequency [half]: base^(-2i/rot_dim) / freq_factors[i].
  std::vector<double> freq(static_cast<size_t>(t.half));
  for (int64_t i = 0; i < t.half; ++i) {
    freq[static_cast<size_t>(i)] =
        std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(rot_dim));
    if (!scaling.freq_factors.empty()) freq[static_cast<size_t>(i)] /= scaling.freq_factors[static_cast<size_t>(i)];
  }
  for (int64_t p = 0; p < n_pos; ++p) {
    const double pos = static_cast<double>(pos0 + p) / scaling.linear_factor;
    for (int64_t i = 0; i < t.half; ++i) {
      const double angle = pos * freq[static_cast<size_t>(i)];
      // attn_factor is 1 unless YaRN or LongRoPE scales the magnitude (x * 1.0 is exact).
      t.cos[static_cast<size_t>(p * t.half + i)] = static_cast<float>(std::cos(angle) * scaling.attn_factor);
      t.sin[static_cast<size_t>(p * t.half + i)] = static_cast<float>(std::sin(angle) * scaling.attn_factor);
    }
  }
  return t;
}

void apply_rope(float* x, int64_t n_pos, int64_t n_heads, int64_t d_head, int64_t ld,
                const RopeTable& table, RopeLayout layout) {
  const int64_t half = table.half;
  for (int64_t p = 0; p < n_pos; ++p) {
    const float* c = table.cos.data() + p * half;
    const float* s = table.sin.data() + p * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + p * ld + h * d_head;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t ia = layout == RopeLayout::kInterleaved ? 2 * i : i;
        const int64_t ib = layout == RopeLayout::kInterleaved ? 2 * i + 1 : i + half;
        const float a = v[ia];
        const float b = v[ib];
        v[ia] = a * c[i] - b * s[i];
        v[ib] = a * s[i] + b * c[i];
      }
    }
  }
}

void interleaved_to_half(float* out, const float* in, int64_t d_head, int64_t rot_dim) {
  const int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    out[i] = in[2 * i];
    out[half + i] = in[2 * i + 1];
  }
  for (int64_t i = rot_dim; i < d_head; ++i) out[i] = in[i];
}

void half_to_interleaved(float* out, const float* in, int64_t d_head, int64_t rot_dim) {
  const int64_t half = rot_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    out[2 * i] = in[i];
    out[2 * i + 1] = in[half + i];
  }
  for (int64_t i = rot_dim; i < d_head; ++i) out[i] = in[i];
}

}  // namespace reslens::ops
