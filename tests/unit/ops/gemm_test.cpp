// ops::matmul_nt: accuracy against a float64 reference, and the determinism contract of gemm.h --
// identical bits for any thread count, any number of rows M, any placement of the rows in memory, and
// every instruction set (scalar, AVX2, AVX-512) the machine can run. The suite is spelled `gemm` so
// that `ctest -R gemm` selects it.
#include "ops/gemm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <limits>
#include <string>
#include <vector>

namespace reslens::ops {
namespace {

using detail::GemmIsa;

// Deterministic test data: uniform in [-1, 1).
std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::vector<float> v(n);  // [n]
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(s >> 40) * (2.0f / 16777216.0f) - 1.0f;
  }
  return v;
}

// A problem with padded strides; padding holds NaN so any read of it would poison the result.
struct Problem {
  Problem(int64_t m, int64_t n, int64_t k, int64_t pad_a, int64_t pad_b, int64_t pad_c, uint32_t seed)
      : M(m), N(n), K(k), lda(k + pad_a), ldb(k + pad_b), ldc(n + pad_c) {
    A = random_floats(static_cast<size_t>(M * lda), seed);
    B = random_floats(static_cast<size_t>(N * ldb), seed + 1000);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k2 = K; k2 < lda; ++k2) A[static_cast<size_t>(i * lda + k2)] = nan;
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k2 = K; k2 < ldb; ++k2) B[static_cast<size_t>(j * ldb + k2)] = nan;
  }
  int64_t M, N, K, lda, ldb, ldc;
  std::vector<float> A;  // [M, lda]
  std::vector<float> B;  // [N, ldb]

  // C: [M, ldc], padding filled with a sentinel that must survive.
  std::vector<float> run(int threads, const std::vector<float>* c_init = nullptr) const {
    std::vector<float> C(static_cast<size_t>(M * ldc), kSentinel);
    if (c_init != nullptr) C = *c_init;
    if (c_init != nullptr)
      matmul_nt_accumulate(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, threads);
    else
      matmul_nt(M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, threads);
    return C;
  }
  static constexpr float kSentinel = 12345.0f;
};

// Instruction sets this machine can run, each forced in turn; the guard restores the default.
std::vector<GemmIsa> available_isas() {
  std::vector<GemmIsa> out;
  for (GemmIsa isa : {GemmIsa::scalar, GemmIsa::avx2, GemmIsa::avx512})
    if (static_cast<int>(isa) <= static_cast<int>(detail::gemm_best_isa())) out.push_back(isa);
  return out;
}

struct IsaGuard {
  explicit IsaGuard(GemmIsa isa) { detail::set_gemm_isa_limit(isa); }
  ~IsaGuard() { detail::set_gemm_isa_limit(GemmIsa::avx512); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
};

const char* isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx512:
      return "avx512";
    case GemmIsa::avx2:
      return "avx2";
    case GemmIsa::scalar:
      break;
  }
  return "scalar";
}

bool same_bits(const std::vector<float>& x, const std::vector<float>& y) {
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (std::bit_cast<uint32_t>(x[i]) != std::bit_cast<uint32_t>(y[i])) return false;
  return true;
}

// Checks C against a float64 reference with the rounding-error bound of the kernel's summation:
// each lane is a chain of ceil(K / 16) FMAs and the tree adds 4 more roundings (5 with accumulate),
// so |error| <= gamma(n) * (|C0| + sum_k |a_k b_k|) with gamma(n) = n u / (1 - n u), u = 2^-24.
void expect_close_to_reference(const Problem& p, const std::vector<float>& C,
                               const std::vector<float>* c_init, const std::string& what) {
  const double u = std::ldexp(1.0, -24);
  const double n = static_cast<double>((p.K + 15) / 16 + 5);
  const double gamma = n * u / (1.0 - n * u);
  for (int64_t i = 0; i < p.M; ++i) {
    for (int64_t j = 0; j < p.N; ++j) {
      double exact = 0.0;
      double magnitude = 0.0;
      if (c_init != nullptr) {
        exact = static_cast<double>((*c_init)[static_cast<size_t>(i * p.ldc + j)]);
        magnitude = std::abs(exact);
      }
      for (int64_t k = 0; k < p.K; ++k) {
        const double prod = static_cast<double>(p.A[static_cast<size_t>(i * p.lda + k)]) *
                            static_cast<double>(p.B[static_cast<size_t>(j * p.ldb + k)]);
        exact += prod;
        magnitude += std::abs(prod);
      }
      const auto got = static_cast<double>(C[static_cast<size_t>(i * p.ldc + j)]);
      ASSERT_LE(std::abs(got - exact), gamma * magnitude)
          << what << " at (" << i << ", " << j << "): got " << got << ", want " << exact;
    }
    for (int64_t j = p.N; j < p.ldc; ++j)
      ASSERT_EQ(C[static_cast<size_t>(i * p.ldc + j)], Problem::kSentinel)
          << what << ": wrote into C's padding at (" << i << ", " << j << ")";
  }
}

std::string describe(const Problem& p) {
  return "M=" + std::to_string(p.M) + " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) +
         " lda=" + std::to_string(p.lda) + " ldb=" + std::to_string(p.ldb) +
         " ldc=" + std::to_string(p.ldc);
}

// Sizes: every K tail, the tile edges of each kernel, and a deterministic sample of 1..70.
std::vector<Problem> sample_problems() {
  std::vector<Problem> out;
  uint32_t seed = 1;
  for (int64_t k = 0; k <= 70; ++k) out.emplace_back(3, 7, k, k % 3, (k * 7) % 5, k % 2, seed++);
  for (int64_t m : {1, 2, 3, 4, 5, 8, 9, 13})
    for (int64_t n : {1, 2, 5, 6, 7, 11, 12, 13, 16, 17, 25})
      out.emplace_back(m, n, 33, 0, 1, 3, seed++);
  uint64_t s = 42;
  auto next = [&s](int64_t lo, int64_t hi) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return lo + static_cast<int64_t>((s >> 33) % static_cast<uint64_t>(hi - lo + 1));
  };
  for (int i = 0; i < 120; ++i) {
    const int64_t m = next(1, 70), n = next(1, 70), k = next(1, 70);
    out.emplace_back(m, n, k, next(0, 17), next(0, 17), next(0, 5), seed++);
  }
  return out;
}

TEST(gemm, MatchesFloat64ReferenceOnEveryPath) {
  const std::vector<Problem> problems = sample_problems();
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    for (const Problem& p : problems) {
      const std::vector<float> C = p.run(1);
      ASSERT_NO_FATAL_FAILURE(
          expect_close_to_reference(p, C, nullptr, std::string(isa_name(isa)) + " " + describe(p)));
    }
  }
}

TEST(gemm, EveryPathGivesTheScalarBits) {
  const std::vector<Problem> problems = sample_problems();
  std::vector<std::vector<float>> scalar;
  {
    const IsaGuard guard(GemmIsa::scalar);
    for (const Problem& p : problems) scalar.push_back(p.run(1));
  }
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    for (size_t i = 0; i < problems.size(); ++i)
      ASSERT_TRUE(same_bits(problems[i].run(2), scalar[i]))
          << isa_name(isa) << " differs from scalar: " << describe(problems[i]);
  }
}

TEST(gemm, ForceScalarHookSelectsTheScalarPath) {
  detail::set_force_scalar(true);
  EXPECT_EQ(detail::gemm_active_isa(), GemmIsa::scalar);
  detail::set_force_scalar(false);
  EXPECT_EQ(detail::gemm_active_isa(), detail::gemm_best_isa());
}

TEST(gemm, ScalarAndSimdAgreeOnRealShapes) {
  // Model-sized K (no tail, long lane chains) on a few rows and columns.
  for (int64_t K : {768, 2048, 3072, 5632, 777}) {
    const Problem p(5, 29, K, 0, 0, 0, static_cast<uint32_t>(K));
    std::vector<float> scalar;
    {
      const IsaGuard guard(GemmIsa::scalar);
      scalar = p.run(1);
    }
    for (GemmIsa isa : available_isas()) {
      const IsaGuard guard(isa);
      ASSERT_TRUE(same_bits(p.run(2), scalar)) << isa_name(isa) << " " << describe(p);
    }
  }
}

TEST(gemm, SignedZerosAndSpecialValuesMatchAcrossPaths) {
  // Products that underflow to -0.0 make every lane they reach -0.0 (lanes with no term stay +0.0, so
  // K < 16 sums to +0.0). A K tail that touched lanes past K (e.g. an unmasked fma(0, 0, -0.0) =
  // +0.0) would turn the K >= 16 sums into +0.0.
  for (int64_t K : {5, 16, 20, 31, 37}) {
    const float want = K >= 16 ? -0.0f : 0.0f;
    Problem p(3, 5, K, 1, 2, 0, 7);
    for (float& a : p.A) a = std::isnan(a) ? a : -1e-30f;
    for (float& b : p.B) b = std::isnan(b) ? b : 1e-30f;
    for (GemmIsa isa : available_isas()) {
      const IsaGuard guard(isa);
      for (float c : p.run(1)) {
        if (c == Problem::kSentinel) continue;
        EXPECT_EQ(std::bit_cast<uint32_t>(c), std::bit_cast<uint32_t>(want))
            << isa_name(isa) << " K=" << K;
      }
    }
  }
  // Infinities, subnormals and huge values: every path must give the scalar path's bits.
  Problem p(4, 9, 45, 0, 3, 1, 11);
  const float specials[] = {std::numeric_limits<float>::infinity(), 1e-42f, -3e38f, 3e38f, -0.0f};
  for (size_t i = 0; i < p.A.size(); i += 7) p.A[i] = specials[i % 5];
  for (size_t i = 0; i < p.B.size(); i += 11) p.B[i] = specials[(i + 2) % 5];
  std::vector<float> scalar;
  {
    const IsaGuard guard(GemmIsa::scalar);
    scalar = p.run(1);
  }
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    const std::vector<float> got = p.run(1);
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::isnan(got[i]) && std::isnan(scalar[i])) continue;  // NaN payloads are not promised
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(scalar[i]))
          << isa_name(isa) << " at " << i;
    }
  }
}

TEST(gemm, CacheBlockingDoesNotChangeBits) {
  // A tiny planned L2 forces the loop order for an A that does not fit, with many column blocks;
  // a huge one keeps all of A "in cache". Neither may change a bit.
  const Problem p(23, 77, 300, 1, 2, 3, 21);
  std::vector<float> scalar;
  {
    const IsaGuard guard(GemmIsa::scalar);
    scalar = p.run(1);
  }
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    for (int64_t l2 : {int64_t{4096}, int64_t{40000}, int64_t{1} << 30}) {
      detail::set_gemm_l2_bytes(l2);
      const std::vector<float> got = p.run(2);
      detail::set_gemm_l2_bytes(0);
      ASSERT_TRUE(same_bits(got, scalar)) << isa_name(isa) << " l2=" << l2;
    }
  }
}

TEST(gemm, ThreadCountDoesNotChangeBits) {
  // Large enough that the driver really splits the columns over threads.
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    const Problem p(37, 301, 100, 3, 0, 2, 5);
    const std::vector<float> one = p.run(1);
    for (int threads : {2, 3, 7, 0}) {
      ASSERT_TRUE(same_bits(p.run(threads), one)) << isa_name(isa) << " threads=" << threads;
    }
  }
}

TEST(gemm, RowsDoNotDependOnHowManyRowsThereAre) {
  // Appending tokens to a prompt must not change the earlier rows: compute M = 1..130 rows and
  // compare each row with the same row of the 130-row product. The rows of each smaller A also sit
  // at a different offset in memory (alignment must not matter either).
  constexpr int64_t kMaxM = 130, N = 45, K = 83;
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    const Problem full(kMaxM, N, K, 0, 0, 0, 9);
    const std::vector<float> ref = full.run(2);
    for (int64_t M = 1; M <= kMaxM; ++M) {
      const int64_t shift = M % 16;
      std::vector<float> A(static_cast<size_t>(shift + M * K));  // [shift + M * K]
      std::copy(full.A.begin(), full.A.begin() + M * K, A.begin() + shift);
      std::vector<float> C(static_cast<size_t>(M * N));  // [M, N]
      matmul_nt(M, N, K, A.data() + shift, K, full.B.data(), K, C.data(), N, 2);
      for (int64_t i = 0; i < M * N; ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(C[static_cast<size_t>(i)]),
                  std::bit_cast<uint32_t>(ref[static_cast<size_t>(i)]))
            << isa_name(isa) << " M=" << M << " row " << i / N << " col " << i % N;
    }
  }
}

// Rows that straddle cache lines (std::vector data 16 bytes into a line, GGUF tensors 32) are read
// from aligned copies (A always, B where several row tiles reuse it): the same bits as rows that
// start on a line, for either loop order, any row stride, and K with or without a tail.
TEST(gemm, RowsOffTheCacheLineGiveTheAlignedBits) {
  // Floats placed `shift` floats past a 64-byte boundary, each row `ld` floats apart.
  struct Placed {
    std::vector<float> storage;
    float* rows = nullptr;
    Placed(const std::vector<float>& src, int64_t n, int64_t K, int64_t ld, int64_t shift)
        : storage(static_cast<size_t>(n * ld + shift + 16), std::numeric_limits<float>::quiet_NaN()) {
      auto addr = reinterpret_cast<std::uintptr_t>(storage.data());
      const auto first = static_cast<int64_t>(((64 - addr % 64) % 64) / sizeof(float));
      rows = storage.data() + first + shift;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t k = 0; k < K; ++k) rows[r * ld + k] = src[static_cast<size_t>(r * K + k)];
    }
  };
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    for (const int64_t K : {int64_t{64}, int64_t{83}}) {
      for (const int64_t M : {int64_t{1}, int64_t{3}, int64_t{8}, int64_t{33}}) {
        const int64_t N = 50;
        const std::vector<float> a = random_floats(static_cast<size_t>(M * K), 31);
        const std::vector<float> b = random_floats(static_cast<size_t>(N * K), 32);
        const int64_t ld0 = (K + 15) / 16 * 16;
        const Placed a0(a, M, K, ld0, 0), b0(b, N, K, ld0, 0);
        std::vector<float> want(static_cast<size_t>(M * N));  // [M, N]
        matmul_nt(M, N, K, a0.rows, ld0, b0.rows, ld0, want.data(), N, 2);
        for (const int64_t shift_a : {int64_t{0}, int64_t{4}, int64_t{9}}) {
          for (const int64_t shift_b : {int64_t{0}, int64_t{8}, int64_t{1}}) {
            for (const int64_t pad : {int64_t{0}, int64_t{3}}) {
              const Placed as(a, M, K, K + pad, shift_a), bs(b, N, K, K + pad, shift_b);
              for (const int64_t l2 : {int64_t{4096}, int64_t{1} << 30}) {  // both loop orders
                detail::set_gemm_l2_bytes(l2);
                std::vector<float> got(static_cast<size_t>(M * N));
                matmul_nt(M, N, K, as.rows, K + pad, bs.rows, K + pad, got.data(), N, 2);
                detail::set_gemm_l2_bytes(0);
                ASSERT_TRUE(same_bits(got, want)) << isa_name(isa) << " M=" << M << " K=" << K << " A +" << shift_a
                                                  << " B +" << shift_b << " pad " << pad << " l2 " << l2;
              }
            }
          }
        }
      }
    }
  }
  // An A too large for the thread's kept scratch (over 2^18 floats) is copied for the call alone.
  const int64_t M = 300, N = 20, K = 1000;
  const std::vector<float> a = random_floats(static_cast<size_t>(M * K), 33);
  const std::vector<float> b = random_floats(static_cast<size_t>(N * K), 34);
  const Placed a0(a, M, K, 1008, 0), as(a, M, K, K, 4), b0(b, N, K, 1008, 0);
  std::vector<float> want(static_cast<size_t>(M * N)), got(static_cast<size_t>(M * N));  // [M, N]
  matmul_nt(M, N, K, a0.rows, 1008, b0.rows, 1008, want.data(), N, 2);
  matmul_nt(M, N, K, as.rows, K, b0.rows, 1008, got.data(), N, 2);
  EXPECT_TRUE(same_bits(got, want));
}

TEST(gemm, ColumnsDoNotDependOnN) {
  // The same row of B gives the same output whatever N (and so the tile it falls in) is.
  constexpr int64_t M = 7, kMaxN = 40, K = 70;
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    const Problem full(M, kMaxN, K, 0, 0, 0, 13);
    const std::vector<float> ref = full.run(1);
    for (int64_t N = 1; N <= kMaxN; ++N) {
      const int64_t first = kMaxN - N;  // use B rows [first, kMaxN)
      std::vector<float> C(static_cast<size_t>(M * N));  // [M, N]
      matmul_nt(M, N, K, full.A.data(), K, full.B.data() + first * K, K, C.data(), N, 1);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j)
          ASSERT_EQ(std::bit_cast<uint32_t>(C[static_cast<size_t>(i * N + j)]),
                    std::bit_cast<uint32_t>(ref[static_cast<size_t>(i * kMaxN + first + j)]))
              << isa_name(isa) << " N=" << N;
    }
  }
}

TEST(gemm, AccumulateAddsTheSumOnce) {
  for (GemmIsa isa : available_isas()) {
    const IsaGuard guard(isa);
    for (const Problem& p : {Problem(9, 14, 50, 1, 0, 2, 3), Problem(130, 23, 17, 0, 5, 0, 4),
                             Problem(1, 1, 1, 0, 0, 0, 5)}) {
      std::vector<float> c0 = random_floats(static_cast<size_t>(p.M * p.ldc), 77);
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = p.N; j < p.ldc; ++j) c0[static_cast<size_t>(i * p.ldc + j)] = Problem::kSentinel;
      const std::vector<float> sum = p.run(2);
      const std::vector<float> acc = p.run(2, &c0);
      ASSERT_NO_FATAL_FAILURE(expect_close_to_reference(p, acc, &c0, isa_name(isa)));
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j) {
          const auto at = static_cast<size_t>(i * p.ldc + j);
          ASSERT_EQ(std::bit_cast<uint32_t>(acc[at]), std::bit_cast<uint32_t>(c0[at] + sum[at]))
              << isa_name(isa) << " " << describe(p);
        }
    }
  }
}

TEST(gemm, EmptyShapes) {
  std::vector<float> C(6, 5.0f);  // [2, 3]
  const float a[2] = {1.0f, 2.0f};
  matmul_nt(2, 3, 0, a, 1, a, 1, C.data(), 3, 1);  // K = 0: an empty sum is +0
  for (float c : C) EXPECT_EQ(std::bit_cast<uint32_t>(c), 0u);
  std::fill(C.begin(), C.end(), 5.0f);
  matmul_nt(0, 3, 4, nullptr, 4, nullptr, 4, C.data(), 3, 1);  // M = 0: nothing to do
  matmul_nt(2, 0, 4, nullptr, 4, nullptr, 4, C.data(), 3, 1);  // N = 0: nothing to do
  for (float c : C) EXPECT_EQ(c, 5.0f);
}

}  // namespace
}  // namespace reslens::ops

namespace reslens::ops {
namespace {

// A toy encoding for matmul_nt_encoded: each float stored as its bits XOR a constant, so decoding is
// exact and a decoder that was not called (or called on the wrong rows) shows as garbage.
constexpr uint32_t kScramble = 0x5A5A5A5Au;
void decode_scrambled(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, in.data() + 4 * i, 4);
    out[i] = std::bit_cast<float>(u ^ kScramble);
  }
}

// B [N, K] stored in the toy encoding.
std::vector<uint8_t> scrambled(const std::vector<float>& B) {
  std::vector<uint8_t> packed(B.size() * 4);
  for (size_t i = 0; i < B.size(); ++i) {
    const uint32_t u = std::bit_cast<uint32_t>(B[i]) ^ kScramble;
    std::memcpy(packed.data() + 4 * i, &u, 4);
  }
  return packed;
}

// matmul_nt_encoded over `rows` gives matmul_nt's bits on B, overwriting and accumulating.
void expect_encoded_bits(int64_t M, int64_t N, int64_t K, const std::vector<float>& A, const std::vector<float>& B,
                         const EncodedRows& rows, int threads, const std::string& what) {
  std::vector<float> want(static_cast<size_t>(M * N), 0.5f), got(want);  // [M, N]
  matmul_nt(M, N, K, A.data(), K, B.data(), K, want.data(), N, threads);
  matmul_nt_encoded(M, N, K, A.data(), K, rows, got.data(), N, threads);
  ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << what;
  matmul_nt_accumulate(M, N, K, A.data(), K, B.data(), K, want.data(), N, threads);
  matmul_nt_encoded(M, N, K, A.data(), K, rows, got.data(), N, threads, true);
  ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0) << "accumulate: " << what;
}

TEST(gemm, EncodedRowsGiveTheFloat32Bits) {
  // Both loop orders (A fits in half of L2, or B is decoded in blocks), several M including decode and
  // tails of K, every ISA, 1 and 2 threads, overwrite and accumulate: the same bits as matmul_nt.
  const auto isas = {GemmIsa::scalar, GemmIsa::avx2, GemmIsa::avx512};
  for (const int64_t M : {1, 3, 8, 33}) {
    for (const int64_t K : {16, 75, 640}) {
      const int64_t N = 37;
      const std::vector<float> A = random_floats(static_cast<size_t>(M * K), 7);
      const std::vector<float> B = random_floats(static_cast<size_t>(N * K), 8);  // [N, K]
      const std::vector<uint8_t> packed = scrambled(B);
      const EncodedRows rows{packed.data(), K * 4, decode_scrambled};
      for (const int64_t l2 : {int64_t{0}, int64_t{4096}}) {  // 4 KB: A never fits, B decoded in blocks
        detail::set_gemm_l2_bytes(l2);
        for (const GemmIsa isa : isas) {
          if (isa > detail::gemm_best_isa()) continue;
          detail::set_gemm_isa_limit(isa);
          for (const int threads : {1, 2}) {
            ASSERT_NO_FATAL_FAILURE(expect_encoded_bits(M, N, K, A, B, rows, threads,
                                                        "M " + std::to_string(M) + " K " + std::to_string(K) + " l2 " + std::to_string(l2)));
          }
        }
        detail::set_gemm_isa_limit(GemmIsa::avx512);
      }
      detail::set_gemm_l2_bytes(0);
    }
  }
}


// The K-blocked path (M <= 16 with the encoding's block given): B decoded a block of K at a time into
// L1, the tiles' lanes carried from block to block. A toy block of 1 value (4 bytes) or of 32 values
// (128 bytes, as Q8_0's 32); K with tails (75, 2003: K % 16 != 0), K over several K blocks (2003,
// 2080, 4100: the blocks are 352-1632 values, 4096 on the scalar path at M = 1),
// every M from 1 to 9 (the 4-row tiles, their remainders) and 16; above, 17 and 42, whose A fits in
// the detected L2 (whole rows decoded) but not in a 16 KB one (the panels of run_encoded_panels:
// blocks of K, of A's rows and of B's rows, here one tile each, so every boundary is crossed, the
// last ones shorter), N = 37 (a narrower last column tile), every ISA, 1 and 2 threads, overwrite and
// accumulate: the bits of matmul_nt on the float32 matrix.
TEST(gemm, EncodedBlocksOfKGiveTheFloat32Bits) {
  struct Case {
    int64_t block;
    std::vector<int64_t> ks;
  };
  const Case cases[] = {{1, {16, 75, 640, 2003, 4100}}, {32, {32, 96, 2080}}};
  const int64_t N = 37;
  for (const Case& c : cases) {
    for (const int64_t K : c.ks) {
      const std::vector<float> B = random_floats(static_cast<size_t>(N * K), 18);  // [N, K]
      const std::vector<uint8_t> packed = scrambled(B);
      const EncodedRows rows{packed.data(), K * 4, decode_scrambled, c.block, c.block * 4};
      for (const int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 42}) {
        const std::vector<float> A = random_floats(static_cast<size_t>(M * K), 17 + static_cast<uint32_t>(M));
        for (const int64_t l2 : {int64_t{0}, int64_t{16} << 10}) {
          if (l2 != 0 && M <= 16) continue;  // the L2 size plans only the panels' blocks
          detail::set_gemm_l2_bytes(l2);
          for (const GemmIsa isa : {GemmIsa::scalar, GemmIsa::avx2, GemmIsa::avx512}) {
            if (isa > detail::gemm_best_isa()) continue;
            detail::set_gemm_isa_limit(isa);
            for (const int threads : {1, 2}) {
              ASSERT_NO_FATAL_FAILURE(expect_encoded_bits(
                  M, N, K, A, B, rows, threads,
                  "block " + std::to_string(c.block) + " K " + std::to_string(K) + " M " + std::to_string(M) + " l2 " +
                      std::to_string(l2) + " isa " + std::to_string(static_cast<int>(isa)) + " threads " +
                      std::to_string(threads)));
            }
          }
          detail::set_gemm_isa_limit(GemmIsa::avx512);
        }
        detail::set_gemm_l2_bytes(0);
      }
    }
  }
}

}  // namespace
}  // namespace reslens::ops
