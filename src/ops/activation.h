// Elementwise activations of the MLP.
#pragma once

#include <cstdint>

namespace reslens::ops {

/// GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place.
void gelu_new(float* x, int64_t n);

/// The exact GELU, 0.5 x (1 + erf(x / sqrt(2))), in place (computed in double, rounded once).
void gelu_erf(float* x, int64_t n);

/// llama.cpp's GELU: the input rounded to fp16, tanh-GELU in float, the result rounded to fp16
/// (GGML_GELU_FP16). Only to reproduce llama.cpp goldens bit-closely; never the default.
void gelu_ggml_table(float* x, int64_t n);

/// Gated SiLU: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
void silu_mul(float* out, const float* gate, const float* up, int64_t n);

}  // namespace reslens::ops
