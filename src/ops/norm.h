// Normalisations over one row of d_model values. Statistics are accumulated in double in a fixed
// order, so results do not depend on threads, and are as accurate as float storage allows.
#pragma once

#include <cstdint>

namespace reslens::ops {

/// out = (x - mean(x)) / scale * w + b, scale = sqrt(var_biased(x) + eps). Returns scale.
/// `b` may be nullptr. out may alias x.
float layer_norm(float* out, const float* x, const float* w, const float* b, int64_t n, float eps);

/// out = x / scale * w, scale = sqrt(mean(x^2) + eps). Returns scale. out may alias x.
float rms_norm(float* out, const float* x, const float* w, int64_t n, float eps);

}  // namespace reslens::ops
