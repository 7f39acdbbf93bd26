// Softmax over a row, numerically stable (max subtracted), with the sum accumulated in double.
#pragma once

#include <cstdint>

namespace reslens::ops {

/// x[0..n) <- softmax(x[0..n)). n >= 1.
void softmax(float* x, int64_t n);

/// log-sum-exp of x[0..n) in double.
double log_sum_exp(const float* x, int64_t n);

}  // namespace reslens::ops
