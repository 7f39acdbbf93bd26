// YaRN and LongRoPE, the RoPE scalings that change more than the positions: each is turned at load
// into RopeScaling's per-pair frequency divisors and cos/sin factor (reslens/rope.h), so the RoPE
// op stays one formula. The GGUF and Hugging Face loaders read the keys; the math is here once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reslens/rope.h"

namespace reslens {

/// YaRN's parameters as a file gives them (GGUF rope.scaling.*, HF rope_scaling).
struct YarnParams {
  double factor = 1.0;           ///< context extension (GGUF rope.scaling.factor, HF factor)
  double original_context = 0;   ///< the trained context the correction range is measured in
  double beta_fast = 32.0;       ///< rotations that bound the extrapolated (fast) pairs
  double beta_slow = 1.0;        ///< rotations that bound the interpolated (slow) pairs
  double attn_factor = 1.0;      ///< the cos/sin factor, already including YaRN's magnitude scale
};

/// YaRN's magnitude scale as llama.cpp and transformers' get_mscale give it: 1 + 0.1 ln(factor)
/// above 1, else 1.
double yarn_mscale(double factor);

/// Sets `s` to YaRN for rotary size rot_dim and base: pair i's frequency is blended between the
/// interpolated base^(-2i/rot)/factor and the extrapolated base^(-2i/rot) by ggml's ramp (rope_yarn:
/// ramp(i) = 1 - clamp((i - low) / max(0.001, high - low), 0, 1) with low = max(0, floor(d(beta_fast))),
/// high = min(rot - 1, ceil(d(beta_slow))), d(b) = rot ln(original_context / (2 pi b)) / (2 ln base));
/// the blend is written as the divisor 1 / ((1 - ramp) / factor + ramp). Throws FormatError naming
/// `source` and `field` for a factor, context or beta that is not a positive finite number, and
/// UnsupportedError where the correction range is empty (high < low: transformers and llama.cpp then
/// ramp differently, so neither is taken).
void set_yarn(RopeScaling& s, const YarnParams& p, double base, int64_t rot_dim, const std::string& source,
              const std::string& field);

/// LongRoPE's attention factor where the file gives none (transformers' _compute_longrope_parameters,
/// llama.cpp's converter): sqrt(1 + ln(factor) / ln(original_context)) above factor 1, else 1.
double longrope_attention_factor(double factor, double original_context);

/// Sets `s` to LongRoPE: the long factors when the model's context window n_ctx exceeds
/// original_context, else the short ones (llama.cpp's choice at its default context size; fixed per
/// model so that no position's angle depends on the sequence length), each a per-pair divisor, and
/// every cos/sin times attn_factor. Throws FormatError naming `source` and the field for factor lists
/// not of rot_dim / 2 finite positive numbers.
void set_longrope(RopeScaling& s, const std::vector<double>& long_factors, const std::vector<double>& short_factors,
                  int64_t n_ctx, int64_t original_context, double attn_factor, int64_t rot_dim,
                  const std::string& source, const std::string& long_field, const std::string& short_field);

}  // namespace reslens
