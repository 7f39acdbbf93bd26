#include "ops/activation.h"

#include <cmath>

#include "core/half.h"

namespace reslens::ops {

namespace {

inline float gelu_scalar(float x) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  constexpr float kCoef = 0.044715f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * (x + kCoef * x * x * x)));
}

}  // namespace

void gelu_new(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_scalar(x[i]);
}

void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    x[i] = static_cast<float>(0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)));
  }
}

void gelu_ggml_table(float* x, int64_t n) {
  // ggml-cpu's ggml_vec_gelu_f32: saturate outside [-10, 10], else look up the fp16 input in a table
  // of fp16 results of its own arrangement of the formula.
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  constexpr float kCoef = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] <= -10.0f) {
      x[i] = 0.0f;
    } else if (x[i] < 10.0f) {
      const float h = fp16_to_fp32(fp32_to_fp16(x[i]));
      const float g = 0.5f * h * (1.0f + std::tanh(kSqrt2OverPi * h * (1.0f + kCoef * h * h)));
      x[i] = fp16_to_fp32(fp32_to_fp16(g));
    }
  }
}

void silu_mul(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace reslens::ops
