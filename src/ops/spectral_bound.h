// A certified upper bound on the largest eigenvalue of a symmetric matrix held in float.
//
// Explain's int8 sketch bounds |W_U f| through the quadratic form f^T Gamma f, 2 d^2 multiply-adds per
// vector; lambda_max(Gamma) |f|^2 bounds it for d multiply-adds (analysis/projection_sketch.h). Such
// a bound must hold, not be a good estimate, so it is certified: Lanczos gives an estimate theta,
// and a Cholesky factorization of alpha I - S (alpha a little above theta) that runs to completion in
// float64 proves alpha I - S positive semidefinite up to the factorization's rounding, which is
// bounded a priori (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm 10.3:
// R^T R = A + dA with |dA| <= gamma_{n+1} |R^T| |R|, so lambda_min(A) >= -gamma trace(A) / (1 - gamma)).
#pragma once

#include <cstdint>

namespace reslens::ops {

/// An upper bound on lambda_max(S), S the symmetric [d, d] matrix whose lower triangle (row i,
/// columns k <= i) is G's (row-major, leading dimension d; the upper triangle is not read), or
/// +infinity when no bound could be certified (a non-finite entry, or a factorization failing at
/// every margin tried: up to 2 lambda_max). The bound exceeds lambda_max(S) by about 1% at most when it
/// is certified at the first margin. The result does not depend on the thread count: the estimate's
/// sums run in a fixed order and the factorization only decides between margins fixed in advance.
double certified_max_eigenvalue(const float* G, int64_t d, int n_threads);

namespace detail {
/// The certificate alone: the first of estimate + m |estimate| (m = 2^-7, 2^-6, ..., 1) at which
/// the factorization succeeds, plus its rounding slack; +inf if none does. `diag_abs` (max |S_ii|)
/// floors the margins' scale. Tests give it estimates far below lambda_max.
double certify_above(const float* G, int64_t d, double estimate, double diag_abs);
}  // namespace detail

}  // namespace reslens::ops
