// ops/spectral_bound.h: the certified bound is never below the largest eigenvalue of the float
// matrix it was given, and at most a few per cent above it, on flat, peaked, clustered, singular and
// indefinite spectra. The eigenvalue it must reach is witnessed independently: S = Q diag(l) Q^T is
// built from known eigenvalues and an orthogonal Q (three Householder reflections), rounded to
// float, and the Rayleigh quotient of Q's top column on that float matrix (in long double) is a lower
// bound on its largest eigenvalue.
#include "ops/spectral_bound.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace reslens::ops {
namespace {

struct Case {
  std::vector<float> G;     // [d, d] row-major, S rounded to float
  std::vector<double> top;  // [d] the eigenvector of the largest eigenvalue
  double lambda = 0;        // the largest of the eigenvalues S was built from
};

// S = Q diag(eig) Q^T with Q = H1 H2 H3 (Householder reflections of random vectors).
Case make_case(const std::vector<double>& eig, unsigned seed) {
  const auto d = static_cast<int64_t>(eig.size());
  const auto n = static_cast<size_t>(d);
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> Q(n * n, 0.0);  // [d, d], column k = eigenvector of eig[k]
  for (size_t i = 0; i < n; ++i) Q[i * n + i] = 1;
  for (int r = 0; r < 3; ++r) {
    std::vector<double> v(n);
    double v2 = 0;
    for (double& x : v) {
      x = normal(rng);
      v2 += x * x;
    }
    // Q <- H Q, H = I - 2 v v^T / |v|^2
    for (size_t k = 0; k < n; ++k) {
      double dotk = 0;
      for (size_t i = 0; i < n; ++i) dotk += v[i] * Q[i * n + k];
      const double c = 2 * dotk / v2;
      for (size_t i = 0; i < n; ++i) Q[i * n + k] -= c * v[i];
    }
  }
  Case out;
  out.G.resize(n * n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t k = 0; k < n; ++k) s += Q[i * n + k] * eig[k] * Q[j * n + k];
      out.G[i * n + j] = static_cast<float>(s);
    }
  }
  // Symmetric bit for bit: the lower triangle's values mirrored (the products above round alike
  // in exact arithmetic only).
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) out.G[i * n + j] = out.G[j * n + i];
  }
  const auto best = static_cast<size_t>(std::max_element(eig.begin(), eig.end()) - eig.begin());
  out.top.resize(n);
  for (size_t i = 0; i < n; ++i) out.top[i] = Q[i * n + best];
  out.lambda = eig[best];
  return out;
}

// x^T G x / x^T x in long double: a lower bound on lambda_max(G).
long double rayleigh(const std::vector<float>& G, const std::vector<double>& x) {
  const size_t n = x.size();
  long double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    long double row = 0;
    for (size_t j = 0; j < n; ++j) row += static_cast<long double>(G[i * n + j]) * static_cast<long double>(x[j]);
    num += static_cast<long double>(x[i]) * row;
    den += static_cast<long double>(x[i]) * static_cast<long double>(x[i]);
  }
  return num / den;
}

void expect_certified(const Case& c, double max_excess, const char* what) {
  const auto d = static_cast<int64_t>(c.top.size());
  const double bound = certified_max_eigenvalue(c.G.data(), d, 2);
  const long double witness = rayleigh(c.G, c.top);
  EXPECT_GE(static_cast<long double>(bound), witness) << what;
  EXPECT_LE(bound, c.lambda + max_excess * std::abs(c.lambda) + 1e-6) << what;
  EXPECT_EQ(bound, certified_max_eigenvalue(c.G.data(), d, 1)) << what << ": thread count";
}

TEST(SpectralBound, FlatSpectrumWithoutGaps) {
  // Evenly spaced eigenvalues (no gap at the top): 64 Lanczos steps stop short of lambda_max, so
  // returning their estimate unverified would fall below the witness.
  const int d = 600;
  std::vector<double> eig(static_cast<size_t>(d));
  for (int i = 0; i < d; ++i) eig[static_cast<size_t>(i)] = 2.0 - 1.9 * i / d;
  expect_certified(make_case(eig, 1), 0.02, "flat");
}

TEST(SpectralBound, MarchenkoPasturLikeGram) {
  // A Gram matrix of a random [3d, d] matrix, as the sketch's Gamma of a random-weight W_U.
  const int d = 300, V = 900;
  std::mt19937 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> U(static_cast<size_t>(V * d));
  for (double& x : U) x = normal(rng) * 0.05;
  std::vector<float> G(static_cast<size_t>(d * d));
  for (int i = 0; i < d; ++i) {
    for (int k = 0; k <= i; ++k) {
      double s = 0;
      for (int j = 0; j < V; ++j) s += U[static_cast<size_t>(j * d + i)] * U[static_cast<size_t>(j * d + k)];
      G[static_cast<size_t>(i * d + k)] = G[static_cast<size_t>(k * d + i)] = static_cast<float>(s);
    }
  }
  // The witness: 300 power iterations' vector (any vector's Rayleigh quotient is a lower bound).
  std::vector<double> x(static_cast<size_t>(d), 1.0), y(static_cast<size_t>(d));
  for (int it = 0; it < 300; ++it) {
    double nrm = 0;
    for (int i = 0; i < d; ++i) {
      double s = 0;
      for (int k = 0; k < d; ++k) s += static_cast<double>(G[static_cast<size_t>(i * d + k)]) * x[static_cast<size_t>(k)];
      y[static_cast<size_t>(i)] = s;
      nrm += s * s;
    }
    for (int i = 0; i < d; ++i) x[static_cast<size_t>(i)] = y[static_cast<size_t>(i)] / std::sqrt(nrm);
  }
  const double bound = certified_max_eigenvalue(G.data(), d, 2);
  const long double witness = rayleigh(G, x);
  EXPECT_GE(static_cast<long double>(bound), witness);
  EXPECT_LE(static_cast<long double>(bound), witness * 1.03L);
}

TEST(SpectralBound, PeakedClusteredSingularAndIndefiniteSpectra) {
  const int d = 257;
  std::vector<double> peaked(static_cast<size_t>(d), 1e-3), cluster(static_cast<size_t>(d)), singular(static_cast<size_t>(d), 0.0),
      indefinite(static_cast<size_t>(d));
  peaked[17] = 500;  // one dominant direction (a trained unembedding's mean direction)
  for (int i = 0; i < d; ++i) {
    cluster[static_cast<size_t>(i)] = i < 5 ? 1.0 - 1e-7 * i : 0.5 * std::sin(i);  // five nearly equal at the top
    indefinite[static_cast<size_t>(i)] = -5.0 + 6.0 * i / (d - 1);                    // -5 .. 1
  }
  for (int i = 0; i < 40; ++i) singular[static_cast<size_t>(i * 3)] = 1.0 + i;  // rank 40
  expect_certified(make_case(peaked, 4), 0.02, "peaked");
  expect_certified(make_case(cluster, 5), 0.02, "clustered");
  expect_certified(make_case(singular, 6), 0.02, "singular");
  expect_certified(make_case(indefinite, 7), 0.02, "indefinite");
}

TEST(SpectralBound, TheCertificateRefusesLowEstimates) {
  // The factorization alone decides: from an estimate far below lambda_max the margins grow until
  // one is certified, or the bound is +inf; never an uncertified value below the witness. (Lanczos'
  // estimates are too good to exercise this through certified_max_eigenvalue.)
  const int d = 300;
  std::vector<double> eig(static_cast<size_t>(d));
  for (int i = 0; i < d; ++i) eig[static_cast<size_t>(i)] = 3.0 - 2.0 * i / d;
  const Case c = make_case(eig, 12);
  const long double witness = rayleigh(c.G, c.top);
  for (double below : {1.0, 1.004, 1.05, 1.3, 1.9, 2.5}) {
    const double bound = detail::certify_above(c.G.data(), d, c.lambda / below, 3.0);
    EXPECT_GE(static_cast<long double>(bound), witness) << "estimate lambda / " << below;
    if (below < 2.0) {
      // certified at the first margin at least twice the shortfall
      EXPECT_LE(bound, c.lambda * (1 + 2.0 * (below - 1) + 0x1p-7) + 1e-9) << "estimate lambda / " << below;
    } else {
      EXPECT_EQ(bound, std::numeric_limits<double>::infinity()) << "estimate lambda / " << below;  // margins end at 2x
    }
  }
  // An estimate above lambda_max is certified at the first margin.
  EXPECT_NEAR(detail::certify_above(c.G.data(), d, c.lambda * 1.1, 3.0), c.lambda * 1.1 * (1 + 0x1p-7), 1e-9);
}

TEST(SpectralBound, ReadsOnlyTheLowerTriangleAndRefusesNonFiniteEntries) {
  const int d = 64;
  std::vector<double> eig(static_cast<size_t>(d));
  for (int i = 0; i < d; ++i) eig[static_cast<size_t>(i)] = 1.0 + i;
  Case c = make_case(eig, 8);
  const double bound = certified_max_eigenvalue(c.G.data(), d, 2);
  for (int i = 0; i < d; ++i) {
    for (int k = i + 1; k < d; ++k) c.G[static_cast<size_t>(i * d + k)] = std::numeric_limits<float>::quiet_NaN();
  }
  EXPECT_EQ(certified_max_eigenvalue(c.G.data(), d, 2), bound);
  c.G[static_cast<size_t>(5 * d + 2)] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(certified_max_eigenvalue(c.G.data(), d, 2), std::numeric_limits<double>::infinity());
  EXPECT_EQ(certified_max_eigenvalue(c.G.data(), 0, 2), 0.0);
}

}  // namespace
}  // namespace reslens::ops
