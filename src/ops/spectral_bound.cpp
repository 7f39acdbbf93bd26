// certified_max_eigenvalue: a Lanczos estimate, then a Cholesky factorization as the certificate
// (ops/spectral_bound.h).
#include "ops/spectral_bound.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "core/parallel.h"

// LAPACK (OpenBLAS provides it; found by CMake's FindLAPACK). Fortran calling convention, with the
// hidden lengths of the character arguments.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info, size_t uplo_len);
void dstev_(const char* jobz, const int* n, double* d, double* e, double* z, const int* ldz, double* work, int* info,
            size_t jobz_len);
}

namespace reslens::ops {

namespace {

constexpr double kUnit64 = 1.0 / 9007199254740992.0;  // 2^-53, double's unit roundoff

// y = S x over the full symmetric float copy, each row summed in double in index order (the same
// sums whatever the thread count).
void sym_matvec(const std::vector<float>& S, int64_t d, const std::vector<double>& x, std::vector<double>& y,
                int n_threads) {
  parallel_for(n_threads, d, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* row = S.data() + i * d;
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += static_cast<double>(row[k]) * x[static_cast<size_t>(k)];
      y[static_cast<size_t>(i)] = s;
    }
  });
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// The largest Ritz value of `steps` Lanczos steps with full reorthogonalization: an estimate of
// lambda_max(S) from below (NaN if the tridiagonal's eigenvalues cannot be computed).
double lanczos_estimate(const std::vector<float>& S, int64_t d, int steps, int n_threads) {
  const auto n = static_cast<size_t>(d);
  std::vector<std::vector<double>> Q;  // the Lanczos basis, [steps][d]
  std::vector<double> alpha, beta;
  std::vector<double> q(n), w(n);
  // A fixed start vector with every component non-zero (a hash of the index, in [-0.5, 0.5)).
  for (size_t i = 0; i < n; ++i) q[i] = static_cast<double>((i * 2654435761u + 12345u) % 4294967296u) / 4294967296.0 - 0.5;
  const double q_norm = std::sqrt(dot(q, q));
  for (double& x : q) x /= q_norm;
  for (int j = 0; j < steps; ++j) {
    Q.push_back(q);
    sym_matvec(S, d, q, w, n_threads);
    const double a = dot(q, w);
    alpha.push_back(a);
    // Full reorthogonalization (twice), so that the Ritz values do not repeat.
    for (int pass = 0; pass < 2; ++pass) {
      for (const std::vector<double>& p : Q) {
        const double c = dot(p, w);
        for (size_t i = 0; i < n; ++i) w[i] -= c * p[i];
      }
    }
    const double b = std::sqrt(dot(w, w));
    if (!(b > 1e-12 * std::abs(a)) || j + 1 == steps) break;  // an invariant subspace, or done
    beta.push_back(b);
    for (size_t i = 0; i < n; ++i) q[i] = w[i] / b;
  }
  int m = static_cast<int>(alpha.size()), ldz = 1, info = 0;
  std::vector<double> e(beta);
  e.resize(static_cast<size_t>(std::max(1, m)), 0.0);
  double z = 0, work = 0;
  dstev_("N", &m, alpha.data(), e.data(), &z, &ldz, &work, &info, 1);
  if (info != 0) return std::numeric_limits<double>::quiet_NaN();
  return *std::max_element(alpha.begin(), alpha.end());  // eigenvalues, ascending
}

// Whether alpha I - S factors (Cholesky runs to completion in float64), S from G's lower triangle;
// `trace` receives trace(A) and `diag_max` max |A_ii| of the matrix factored.
bool factors(const float* G, int64_t d, double alpha, double& trace, double& diag_max) {
  std::vector<double> A(static_cast<size_t>(d * d));  // [d, d] alpha I - S (symmetric, so any major order)
  trace = 0, diag_max = 0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t k = 0; k <= i; ++k) {
      const double x = -static_cast<double>(G[i * d + k]);
      A[static_cast<size_t>(i * d + k)] = x;
      A[static_cast<size_t>(k * d + i)] = x;
    }
    double& a = A[static_cast<size_t>(i * d + i)];
    a += alpha;
    trace += a;
    diag_max = std::max(diag_max, std::abs(a));
  }
  const int n = static_cast<int>(d);
  int info = 0;
  dpotrf_("L", &n, A.data(), &n, &info, 1);
  return info == 0;
}

}  // namespace

double certified_max_eigenvalue(const float* G, int64_t d, int n_threads) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (d <= 0) return 0.0;
  if (d > std::numeric_limits<int>::max() / 2) return kInf;
  // The symmetric matrix of G's lower triangle, in full (the Lanczos products read rows).
  std::vector<float> S(static_cast<size_t>(d * d));  // [d, d]
  double diag_abs = 0;
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t k = 0; k <= i; ++k) {
      const float x = G[i * d + k];
      if (!std::isfinite(x)) return kInf;
      S[static_cast<size_t>(i * d + k)] = x;
      S[static_cast<size_t>(k * d + i)] = x;
    }
    diag_abs = std::max(diag_abs, static_cast<double>(std::abs(G[i * d + i])));
  }
  const double theta = lanczos_estimate(S, d, static_cast<int>(std::min<int64_t>(d, 64)), n_threads);
  if (!std::isfinite(theta)) return kInf;
  return detail::certify_above(G, d, theta, diag_abs);
}

namespace detail {

double certify_above(const float* G, int64_t d, double estimate, double diag_abs) {
  // Margins tried, relative to the estimate's size (Lanczos' estimate is from below; with 64 steps
  // it is usually within 0.5% of lambda_max on a flat spectrum, far closer on a peaked one). A floor
  // of diag_abs * 2^-20 keeps a zero or tiny estimate from asking for an exact singular factorization.
  const double size = std::max(std::abs(estimate), diag_abs * 0x1p-20);
  const double gamma = 2.0 * static_cast<double>(d + 1) * kUnit64 / (1.0 - 2.0 * static_cast<double>(d + 1) * kUnit64);
  for (double margin = 0x1p-7; margin <= 1.0; margin *= 2) {
    const double alpha = estimate + margin * size;
    double trace = 0, diag_max = 0;
    if (!factors(G, d, alpha, trace, diag_max)) continue;
    // lambda_min of the matrix factored >= -gamma trace / (1 - gamma) (gamma_{2(n+1)}: twice the
    // theorem's constant, for a blocked factorization's inner products); forming alpha - S_ii rounded
    // each diagonal entry by at most 2^-53 of itself.
    const double slack = gamma * std::max(trace, 0.0) / (1.0 - gamma) + kUnit64 * diag_max;
    const double bound = alpha + slack;
    return bound + std::abs(bound) * 1e-12;
  }
  return std::numeric_limits<double>::infinity();
}

}  // namespace detail

}  // namespace reslens::ops
