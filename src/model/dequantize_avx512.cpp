// AVX-512 dequantizers: the scalar definitions (dequantize.cpp, dequantize_blocks.cpp,
// dequantize_k.cpp, dequantize_iq4.cpp) 16 values per register, with the same float32 operations.
//
// The 4-bit and 5-bit formats go through a table: a sub-block's codes take only 16 (or 32) values,
// so the kernel computes those values once, exactly as the scalar code computes each element (say
// (d sc) * float(q) - (dmin m) for q = 0..15), and then looks each code up with vpermps, which
// reads only an index's low 4 bits (vpermt2ps: 5). That is about half the instructions of widening,
// converting, multiplying and subtracting every element, and it is the same float32 result for
// every element by construction. The other formats convert each code and multiply, one intrinsic
// per scalar operation. AVX-512F includes FMA, and GCC treats these intrinsics as plain vector
// arithmetic, so it would fuse a multiply and a subtract here but for the project's
// -ffp-contract=off (cmake/ReslensWarnings.cmake).
//
// fp16 scales are converted with F16C, which is exact and equals fp16_to_fp32 except that it quiets
// a signaling NaN. A scale only ever reaches the output through a multiply or add, and x86
// arithmetic returns a NaN operand quieted, with its payload, so the outputs are the same bits.
// F16 weights are output as converted, so there the signaling NaNs go through the scalar code.
//
// Only functions marked RESLENS_AVX512 use AVX-512, and they run only after the dispatcher has
// checked the CPU, so the file builds with the project's baseline flags.
#include "model/dequantize_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

// GCC 12.0-12.2 reports the unmasked AVX-512 intrinsics' deliberately undefined merge operand
// (`__m512i __Y = __Y;` in its own avx512fintrin.h) as maybe uninitialized once they are inlined
// (GCC bug 105593). The warning points into that header, so it is silenced for the header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstring>

#define RESLENS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,f16c")))

namespace reslens::detail {
namespace {

RESLENS_AVX512 inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

RESLENS_AVX512 inline __m128i load16(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}
RESLENS_AVX512 inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 16 bytes as 16 int32 lanes (zero- or sign-extended) and as floats.
RESLENS_AVX512 inline __m512i widen_u8(const uint8_t* p) { return _mm512_cvtepu8_epi32(load16(p)); }
RESLENS_AVX512 inline __m512 float_i8(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(v)); }

// Bitwise mask ? a : b. vpternlogd's immediate is the truth table over (mask, a, b), whose bits
// read 0xF0, 0xCC and 0xAA; the result is (0xF0 & 0xCC) | (~0xF0 & 0xAA) = 0xCA.
RESLENS_AVX512 inline __m512i select_bits(__m512i mask, __m512i a, __m512i b) {
  return _mm512_ternarylogic_epi32(mask, a, b, 0xCA);
}

// float(j) for j = 0..15: the codes a 4-bit table is built over.
RESLENS_AVX512 inline __m512 iota16() {
  return _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}

// ---- F16, BF16 -----------------------------------------------------------------------------------

RESLENS_AVX512 void f16(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* p = in.data();
  const __m512i magnitude = _mm512_set1_epi16(0x7fff), infinity = _mm512_set1_epi16(0x7c00);
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // Any NaN among the 32 (never, in real weights): the scalar code, which keeps signaling NaNs.
    // One check per 32 values, then vcvtph2ps reads its 16 halves from memory.
    const __m512i h = _mm512_loadu_si512(p + 2 * i);  // [32] binary16
    if (_mm512_cmpgt_epi16_mask(_mm512_and_si512(h, magnitude), infinity) != 0) {
      scalar::f16(out + i, in.subspan(static_cast<size_t>(2 * i)), 32);
      continue;
    }
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(load32(p + 2 * i)));
    _mm512_storeu_ps(out + i + 16, _mm512_cvtph_ps(load32(p + 2 * i + 32)));
  }
  if (i < n) scalar::f16(out + i, in.subspan(static_cast<size_t>(2 * i)), n - i);
}

RESLENS_AVX512 void bf16(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* p = in.data();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(load32(p + 2 * i));  // [16] bfloat16 in the low halves
    _mm512_storeu_ps(out + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  if (i < n) {
    const auto m = static_cast<__mmask16>((1U << (n - i)) - 1U);
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p + 2 * i));
    _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
}

// ---- Q8_0 and the 32-value blocks ----------------------------------------------------------------

// 34 bytes: fp16 d, 32 int8 codes. x = d * q.
RESLENS_AVX512 void q8_0(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += 34, out += 32) {
    const __m512 d = _mm512_set1_ps(half_at(block));
    _mm512_storeu_ps(out, _mm512_mul_ps(d, float_i8(load16(block + 2))));
    _mm512_storeu_ps(out + 16, _mm512_mul_ps(d, float_i8(load16(block + 18))));
  }
}

// Q4_0, Q4_1, Q5_0, Q5_1 (layouts in dequantize_blocks.cpp). Value j < 16 is byte j's low nibble,
// value j + 16 its high nibble, each with its fifth bit from bit j (j + 16) of the Q5 word.
template <bool kHasMin, bool kHighBits>
RESLENS_AVX512 inline void blocks32(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr int64_t kHeader = 2 + (kHasMin ? 2 : 0) + (kHighBits ? 4 : 0), kBytes = kHeader + 16;
  constexpr float kOffset = kHasMin ? 0.0f : (kHighBits ? 16.0f : 8.0f);
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += kBytes, out += 32) {
    const __m512 d = _mm512_set1_ps(half_at(block));
    // The 16 (Q4) or 32 (Q5: t0 without the fifth bit, t1 with it) values a code can give: the
    // scalar code's float(q - offset) * d, or float(q) * d + m. float(q - offset) is exact, so it
    // equals the float iota minus the offset.
    const __m512 codes = _mm512_sub_ps(iota16(), _mm512_set1_ps(kOffset));  // [16]
    __m512 t0 = _mm512_mul_ps(codes, d);
    __m512 t1 = _mm512_mul_ps(_mm512_add_ps(codes, _mm512_set1_ps(16.0f)), d);
    if constexpr (kHasMin) {
      const __m512 m = _mm512_set1_ps(half_at(block + 2));
      t0 = _mm512_add_ps(t0, m);
      t1 = _mm512_add_ps(t1, m);
    }
    const __m512i q = widen_u8(block + kHeader);  // [16] bytes: low nibble value j, high j + 16
    const __m512i qhi = _mm512_srli_epi32(q, 4);
    if constexpr (kHighBits) {
      uint32_t high;
      std::memcpy(&high, block + 2 + (kHasMin ? 2 : 0), 4);
      const auto lo_set = static_cast<__mmask16>(high & 0xFFFFU), hi_set = static_cast<__mmask16>(high >> 16);
      _mm512_storeu_ps(out, _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(q, t0), lo_set, q, t1));
      _mm512_storeu_ps(out + 16, _mm512_mask_permutexvar_ps(_mm512_permutexvar_ps(qhi, t0), hi_set, qhi, t1));
    } else {
      _mm512_storeu_ps(out, _mm512_permutexvar_ps(q, t0));
      _mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(qhi, t0));
    }
  }
}

RESLENS_AVX512 void q4_0(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<false, false>(out, in, n); }
RESLENS_AVX512 void q4_1(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<true, false>(out, in, n); }
RESLENS_AVX512 void q5_0(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<false, true>(out, in, n); }
RESLENS_AVX512 void q5_1(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<true, true>(out, in, n); }

// ---- IQ4 -----------------------------------------------------------------------------------------

// 32 values from 16 bytes of codebook indices (low nibbles first): scale * codebook[q].
RESLENS_AVX512 inline void iq4_nibbles(float* y, const uint8_t* qs, float scale) {
  // ggml-common.h's kvalues_iq4nl (dequantize_iq4.cpp's kCodebook), as floats.
  const __m512 codebook = _mm512_setr_ps(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
  const __m512 table = _mm512_mul_ps(_mm512_set1_ps(scale), codebook);  // [16]
  const __m512i q = widen_u8(qs);
  _mm512_storeu_ps(y, _mm512_permutexvar_ps(q, table));
  _mm512_storeu_ps(y + 16, _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table));
}

RESLENS_AVX512 void iq4_nl(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += 18, out += 32) iq4_nibbles(out, block + 2, half_at(block));
}

RESLENS_AVX512 void iq4_xs(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 256; ++b, block += 136, out += 256) {
    const float d = half_at(block);
    const unsigned high = static_cast<unsigned>(block[2] | (block[3] << 8));
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = static_cast<int>(((block[4 + ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((high >> (2 * ib)) & 3U) << 4));
      iq4_nibbles(out + 32 * ib, block + 8 + 16 * ib, d * static_cast<float>(ls - 32));
    }
  }
}

// ---- k-quants ------------------------------------------------------------------------------------

// Q4_K / Q5_K's 8 six-bit scales and 8 six-bit mins (12 bytes at p, layout in dequantize_k.cpp's
// scale_min_k4) as 16 bytes: scales 0-7, then mins 0-7. Bytes 0-3 hold scales 0-3 and bytes 4-7
// mins 0-3 in their low six bits, and the top two bits of sub-blocks 4-7's; bytes 8-11 hold
// sub-blocks 4-7's low nibbles (scale) and high nibbles (min).
RESLENS_AVX512 inline __m128i scales_mins_k4(const uint8_t* p) {
  uint32_t w[3];
  std::memcpy(w, p, 12);
  constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  const auto s03 = static_cast<int>(w[0] & kLow6);
  const auto s47 = static_cast<int>((w[2] & kLow4) | (((w[0] >> 6) & kLow2) << 4));
  const auto m03 = static_cast<int>(w[1] & kLow6);
  const auto m47 = static_cast<int>(((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kLow2) << 4));
  return _mm_setr_epi32(s03, s47, m03, m47);
}

// d * scale for lanes 0-7 and dmin * min for lanes 8-15, as the scalar code's d1 and m1.
RESLENS_AVX512 inline void scales_k4(float* dm, const uint8_t* block) {
  const __m512 sm = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scales_mins_k4(block + 4)));
  const __m512 dd = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(half_at(block)), _mm512_set1_ps(half_at(block + 2)));
  _mm512_storeu_ps(dm, _mm512_mul_ps(dd, sm));
}

// Q4_K: per 64 values, 32 bytes of codes: low nibbles are sub-block 2i, high nibbles 2i + 1.
RESLENS_AVX512 void q4_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 256; ++b, block += 144) {
    alignas(64) float dm[16];  // [8 d * scale, 8 dmin * min]
    scales_k4(dm, block);
    const uint8_t* q = block + 16;
    for (int i = 0; i < 4; ++i, q += 32, out += 64) {
      // The scalar code's d1 * float(q) - m1 for q = 0..15, for both sub-blocks.
      const __m512 t1 = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dm[2 * i]), iota16()), _mm512_set1_ps(dm[8 + 2 * i]));
      const __m512 t2 =
          _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dm[2 * i + 1]), iota16()), _mm512_set1_ps(dm[9 + 2 * i]));
      const __m512i a = widen_u8(q), c = widen_u8(q + 16);  // [16] bytes each
      _mm512_storeu_ps(out, _mm512_permutexvar_ps(a, t1));
      _mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(c, t1));
      _mm512_storeu_ps(out + 32, _mm512_permutexvar_ps(_mm512_srli_epi32(a, 4), t2));
      _mm512_storeu_ps(out + 48, _mm512_permutexvar_ps(_mm512_srli_epi32(c, 4), t2));
    }
  }
}

// Q5_K: Q4_K's codes plus a fifth bit, bit k of qh[l] for sub-block k's value l. The table has the
// 32 values of d1 * float(q) - m1; vpermt2ps takes the index's bit 4 from the qh bit (moved there
// by a shift) and bits 0-3 from the nibble (one vpternlogd picks the bits).
RESLENS_AVX512 void q5_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m512i nibble = _mm512_set1_epi32(0x0F);
  const __m512 sixteen = _mm512_set1_ps(16.0f);
  for (int64_t b = 0; b < n / 256; ++b, block += 176) {
    alignas(64) float dm[16];  // [8 d * scale, 8 dmin * min]
    scales_k4(dm, block);
    __m512i h0 = widen_u8(block + 16), h1 = widen_u8(block + 32);  // [16] qh bytes each
    const uint8_t* q = block + 48;
    for (int i = 0; i < 4; ++i, q += 32, out += 64, h0 = _mm512_srli_epi32(h0, 2), h1 = _mm512_srli_epi32(h1, 2)) {
      __m512 t[2][2];  // [sub-block][fifth bit][16]
      for (int s = 0; s < 2; ++s) {
        const __m512 d1 = _mm512_set1_ps(dm[2 * i + s]), m1 = _mm512_set1_ps(dm[8 + 2 * i + s]);
        t[s][0] = _mm512_sub_ps(_mm512_mul_ps(d1, iota16()), m1);
        t[s][1] = _mm512_sub_ps(_mm512_mul_ps(d1, _mm512_add_ps(iota16(), sixteen)), m1);
      }
      const __m512i a = widen_u8(q), c = widen_u8(q + 16);
      // Index bits 0-3 from the nibble, bit 4 from the qh bit (bits above 4 are not read).
      const __m512i ia = select_bits(nibble, a, _mm512_slli_epi32(h0, 4));
      const __m512i ic = select_bits(nibble, c, _mm512_slli_epi32(h1, 4));
      const __m512i ja = select_bits(nibble, _mm512_srli_epi32(a, 4), _mm512_slli_epi32(h0, 3));
      const __m512i jc = select_bits(nibble, _mm512_srli_epi32(c, 4), _mm512_slli_epi32(h1, 3));
      _mm512_storeu_ps(out, _mm512_permutex2var_ps(t[0][0], ia, t[0][1]));
      _mm512_storeu_ps(out + 16, _mm512_permutex2var_ps(t[0][0], ic, t[0][1]));
      _mm512_storeu_ps(out + 32, _mm512_permutex2var_ps(t[1][0], ja, t[1][1]));
      _mm512_storeu_ps(out + 48, _mm512_permutex2var_ps(t[1][0], jc, t[1][1]));
    }
  }
}

// Q6_K: per half of 128 values, ql[64] and qh[32] give four runs of 32 six-bit codes; each run of
// 16 has its own int8 scale, in output order. x = (d * scale) * float(q - 32).
RESLENS_AVX512 void q6_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30), bias = _mm512_set1_epi8(32);
  // Per-16-bit-lane shifts that bring the high pairs of values 0-31 / 32-63 (bits 0-1 / 2-3 of qh)
  // and of values 64-95 / 96-127 (bits 4-5 / 6-7) to bits 4-5 of each byte.
  const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i down = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  for (int64_t b = 0; b < n / 256; ++b, block += 210) {
    alignas(64) float ds[16];  // [16] d * scale, one per 16 values
    _mm512_storeu_ps(ds, _mm512_mul_ps(_mm512_set1_ps(half_at(block + 208)), float_i8(load16(block + 192))));
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(block + 64 * half);  // [64]
      const __m512i qh = _mm512_broadcast_i64x4(load32(block + 128 + 32 * half));  // [2][32]
      // Low nibble from ql, bits 4-5 from qh (bits 6-7 are clear), then minus 32: int8 codes.
      const __m512i lo = select_bits(low4, ql, _mm512_and_si512(_mm512_sllv_epi16(qh, up), bits45));
      const __m512i hi = select_bits(low4, _mm512_srli_epi16(ql, 4), _mm512_and_si512(_mm512_srlv_epi16(qh, down), bits45));
      alignas(64) int8_t codes[128];  // [128] q - 32, in output order
      _mm512_store_si512(codes, _mm512_sub_epi8(lo, bias));
      _mm512_store_si512(codes + 64, _mm512_sub_epi8(hi, bias));
      for (int k = 0; k < 8; ++k, out += 16)
        _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_set1_ps(ds[8 * half + k]), float_i8(load16(codes + 16 * k))));
    }
  }
}

// Q2_K: per half of 128 values, 32 bytes of codes read four times, 2 bits at a time; each run of
// 16 has a scale (low nibble) and a min (high nibble), in output order. x = dl * float(q) - ml.
RESLENS_AVX512 void q2_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m512i three = _mm512_set1_epi32(3);
  for (int64_t b = 0; b < n / 256; ++b, block += 84) {
    const __m128i sc = load16(block);  // [16] scale | min << 4
    alignas(64) float dl[16], ml[16];  // [16] each
    _mm512_storeu_ps(dl, _mm512_mul_ps(_mm512_set1_ps(half_at(block + 80)),
                                       _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_cvtepu8_epi32(sc), _mm512_set1_epi32(0x0F)))));
    _mm512_storeu_ps(ml, _mm512_mul_ps(_mm512_set1_ps(half_at(block + 82)),
                                       _mm512_cvtepi32_ps(_mm512_srli_epi32(_mm512_cvtepu8_epi32(sc), 4))));
    for (int half = 0; half < 2; ++half) {
      const __m512i q[2] = {widen_u8(block + 16 + 32 * half), widen_u8(block + 32 + 32 * half)};  // [2][16]
      for (int k = 0; k < 8; ++k, out += 16) {
        const int shift = 2 * (k / 2), g = 8 * half + k;
        const __m512 code = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srl_epi32(q[k % 2], _mm_cvtsi32_si128(shift)), three));
        _mm512_storeu_ps(out, _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(dl[g]), code), _mm512_set1_ps(ml[g])));
      }
    }
  }
}

// Q3_K: Q2_K's 2-bit passes, minus 4 where the pass's hmask bit is clear, with sixteen six-bit
// scales (offset by 32) packed in 12 bytes (see dequantize_k.cpp). x = (d * (scale - 32)) * code.
RESLENS_AVX512 void q3_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m512i three = _mm512_set1_epi32(3), four = _mm512_set1_epi32(4);
  constexpr uint32_t kLow2 = 0x03030303, kLow4 = 0x0f0f0f0f;
  for (int64_t b = 0; b < n / 256; ++b, block += 110) {
    uint32_t a[3];
    std::memcpy(a, block + 96, 12);
    const __m128i scales = _mm_setr_epi32(static_cast<int>((a[0] & kLow4) | ((a[2] & kLow2) << 4)),
                                          static_cast<int>((a[1] & kLow4) | (((a[2] >> 2) & kLow2) << 4)),
                                          static_cast<int>(((a[0] >> 4) & kLow4) | (((a[2] >> 4) & kLow2) << 4)),
                                          static_cast<int>(((a[1] >> 4) & kLow4) | (((a[2] >> 6) & kLow2) << 4)));
    alignas(64) float dl[16];  // [16] d * (scale - 32)
    _mm512_storeu_ps(dl, _mm512_mul_ps(_mm512_set1_ps(half_at(block + 108)),
                                       _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(scales), _mm512_set1_epi32(32)))));
    const __m512i hm[2] = {widen_u8(block), widen_u8(block + 16)};  // [2][16]
    for (int half = 0; half < 2; ++half) {
      const __m512i q[2] = {widen_u8(block + 32 + 32 * half), widen_u8(block + 48 + 32 * half)};  // [2][16]
      for (int k = 0; k < 8; ++k, out += 16) {
        const __m128i shift = _mm_cvtsi32_si128(2 * (k / 2)), bit = _mm_cvtsi32_si128(4 * half + k / 2);
        const __m512i low = _mm512_and_si512(_mm512_srl_epi32(q[k % 2], shift), three);
        const __mmask16 clear = _mm512_testn_epi32_mask(_mm512_srl_epi32(hm[k % 2], bit), _mm512_set1_epi32(1));
        const __m512 code = _mm512_cvtepi32_ps(_mm512_mask_sub_epi32(low, clear, low, four));
        _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_set1_ps(dl[8 * half + k]), code));
      }
    }
  }
}

constexpr DequantizeKernels kKernels = {f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs};

}  // namespace

const DequantizeKernels* avx512_dequantize_kernels() { return &kKernels; }

}  // namespace reslens::detail

#else

namespace reslens::detail {
const DequantizeKernels* avx512_dequantize_kernels() { return nullptr; }
}  // namespace reslens::detail

#endif
