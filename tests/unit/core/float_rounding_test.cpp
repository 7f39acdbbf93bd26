// The build keeps every float rounding the source asks for. g++ 12's SLP vectorizer, when it pairs two
// double -> float -> double round trips, squares and sums the unrounded doubles (the pattern of the
// sketch's round_vector: f and z rounded to float, their squares summed in double); the project
// turns that pass off for GCC (cmake/ReslensWarnings.cmake). This test has the pattern's shape in a
// function the compiler cannot see the inputs of, against sums whose roundings are forced through
// volatile floats: it fails on a build that drops them.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

struct Sums {
  double f2 = 0, z2 = 0, f1 = 0, z1 = 0;
};

// y = b c + f with c an integer code: f and z = b c rounded to float, their squares and magnitudes
// summed in double (F and Z receive the floats when given).
__attribute__((noinline)) Sums rounded_sums(const float* y, const int8_t* c, double b, int64_t n, float* F, float* Z) {
  Sums s;
  for (int64_t i = 0; i < n; ++i) {
    const double z = b * c[i], f = static_cast<double>(y[i]) - z;
    const float ff = static_cast<float>(f), zf = static_cast<float>(z);
    if (F != nullptr) F[i] = ff, Z[i] = zf;
    s.f2 += static_cast<double>(ff) * static_cast<double>(ff);
    s.z2 += static_cast<double>(zf) * static_cast<double>(zf);
    s.f1 += static_cast<double>(ff < 0 ? -ff : ff);
    s.z1 += static_cast<double>(zf < 0 ? -zf : zf);
  }
  return s;
}

TEST(FloatRounding, PairedRoundTripsKeepTheirRounding) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> vals(-1.0f, 1.0f);
  const int64_t n = 771;
  std::vector<float> y(static_cast<size_t>(n)), F(static_cast<size_t>(n)), Z(static_cast<size_t>(n));
  std::vector<int8_t> c(static_cast<size_t>(n));
  const double b = 1.0 / 127.0 + 1e-9;
  for (int64_t i = 0; i < n; ++i) {
    y[static_cast<size_t>(i)] = vals(rng);
    c[static_cast<size_t>(i)] = static_cast<int8_t>(static_cast<double>(y[static_cast<size_t>(i)]) / b);
  }
  Sums want;
  for (int64_t i = 0; i < n; ++i) {
    const double z = b * c[static_cast<size_t>(i)], f = static_cast<double>(y[static_cast<size_t>(i)]) - z;
    volatile float ff = static_cast<float>(f), zf = static_cast<float>(z);
    const float fr = ff, zr = zf;
    want.f2 += static_cast<double>(fr) * static_cast<double>(fr);
    want.z2 += static_cast<double>(zr) * static_cast<double>(zr);
    want.f1 += static_cast<double>(fr < 0 ? -fr : fr);
    want.z1 += static_cast<double>(zr < 0 ? -zr : zr);
  }
  for (const bool rows : {false, true}) {
    const Sums got = rounded_sums(y.data(), c.data(), b, n, rows ? F.data() : nullptr, rows ? Z.data() : nullptr);
    EXPECT_EQ(got.f2, want.f2) << (rows ? "with rows" : "sums only");
    EXPECT_EQ(got.z2, want.z2) << (rows ? "with rows" : "sums only");
    EXPECT_EQ(got.f1, want.f1) << (rows ? "with rows" : "sums only");
    EXPECT_EQ(got.z1, want.z1) << (rows ? "with rows" : "sums only");
  }
}

}  // namespace
