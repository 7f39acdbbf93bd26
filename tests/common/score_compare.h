// Comparing two explanations' score arrays in tests: the largest difference of one array, and every
// scored level of two explanations within a tolerance (the bounded, cached, sketched and full
// methods must agree within bound_tol).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "reslens/reslens.h"

namespace reslens::test {

/// max |a - b| over two arrays of one shape (a test failure when the shapes differ).
inline double max_diff(const ScoreArray& a, const ScoreArray& b) {
  EXPECT_EQ(a.shape, b.shape);
  double w = 0;
  for (size_t i = 0; i < a.values.size() && i < b.values.size(); ++i) w = std::max(w, std::abs(a.values[i] - b.values[i]));
  return w;
}

/// Every scored level of a and b within tol: FFN and attention neurons, heads, head x position, the
/// contrast's FFN neurons and the query FFN neurons.
inline void expect_close(const Explanation& a, const Explanation& b, double tol) {
  EXPECT_LT(max_diff(a.ffn_neuron, b.ffn_neuron), tol);
  EXPECT_LT(max_diff(a.attn_neuron, b.attn_neuron), tol);
  EXPECT_LT(max_diff(a.head, b.head), tol);
  EXPECT_LT(max_diff(a.head_position, b.head_position), tol);
  EXPECT_LT(max_diff(a.contrast_ffn_neuron, b.contrast_ffn_neuron), tol);
  EXPECT_LT(max_diff(a.query_ffn_neuron, b.query_ffn_neuron), tol);
}

}  // namespace reslens::test
