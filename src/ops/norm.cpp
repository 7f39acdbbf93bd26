#include "ops/norm.h"

#include <cmath>

namespace reslens::ops {

float layer_norm(float* out, const float* x, const float* w, const float* b, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
  const double mean = sum / static_cast<double>(n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - mean;
    sq += d * d;
  }
  const double scale = std::sqrt(sq / static_cast<double>(n) + static_cast<double>(eps));
  const double inv = 1.0 / scale;
  for (int64_t i = 0; i < n; ++i) {
    const double y = (static_cast<double>(x[i]) - mean) * inv * static_cast<double>(w[i]) +
                     (b != nullptr ? static_cast<double>(b[i]) : 0.0);
    out[i] = static_cast<float>(y);
  }
  return static_cast<float>(scale);
}

float rms_norm(float* out, const float* x, const float* w, int64_t n, float eps) {
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sq += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const double scale = std::sqrt(sq / static_cast<double>(n) + static_cast<double>(eps));
  const double inv = 1.0 / scale;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = static_cast<float>(static_cast<double>(x[i]) * inv * static_cast<double>(w[i]));
  }
  return static_cast<float>(scale);
}

}  // namespace reslens::ops
