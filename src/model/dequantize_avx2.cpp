// AVX2 dequantizers: the scalar definitions (dequantize.cpp, dequantize_blocks.cpp,
// dequantize_k.cpp, dequantize_iq4.cpp) 8 values per register, one intrinsic per scalar float32
// operation, in the same order. Codes are widened to 32-bit lanes straight from memory (vpmovzxbd
// reads 8 bytes), then split into nibbles or bit fields with 32-bit shifts and masks.
//
// The functions are compiled for AVX2 and F16C but not FMA, so no compiler can fuse a multiply and
// an add here whatever the flags. fp16 scales are converted with F16C: exact, and equal to
// fp16_to_fp32 except that a signaling NaN comes out quiet, which the multiply or add each scale
// goes through would do anyway (x86 arithmetic quiets a NaN operand and keeps its payload). F16
// weights are output as converted, so there a NaN goes through the scalar code.
//
// Only functions marked RESLENS_AVX2 use AVX2, and they run only after the dispatcher has checked
// the CPU, so the file builds with the project's baseline flags.
#include "model/dequantize_kernels.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include <cstring>

#define RESLENS_AVX2 __attribute__((target("avx2,f16c")))

namespace reslens::detail {
namespace {

RESLENS_AVX2 inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

RESLENS_AVX2 inline __m128i load8(const void* p) { return _mm_loadl_epi64(static_cast<const __m128i*>(p)); }
RESLENS_AVX2 inline __m128i load16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
RESLENS_AVX2 inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 8 bytes as 8 int32 lanes, zero- or sign-extended.
RESLENS_AVX2 inline __m256i widen_u8(const void* p) { return _mm256_cvtepu8_epi32(load8(p)); }
RESLENS_AVX2 inline __m256 float_i8(const void* p) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(p))); }

// ---- F16, BF16 -----------------------------------------------------------------------------------

RESLENS_AVX2 void f16(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* p = in.data();
  const __m256i magnitude = _mm256_set1_epi16(0x7fff), infinity = _mm256_set1_epi16(0x7c00);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // Any NaN among the 16 (never, in real weights): the scalar code, which keeps signaling NaNs.
    // One check per 16 values, then vcvtph2ps reads its 8 halves from memory.
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi16(_mm256_and_si256(load32(p + 2 * i), magnitude), infinity)) != 0) {
      scalar::f16(out + i, in.subspan(static_cast<size_t>(2 * i)), 16);
      continue;
    }
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(load16(p + 2 * i)));
    _mm256_storeu_ps(out + i + 8, _mm256_cvtph_ps(load16(p + 2 * i + 16)));
  }
  if (i < n) scalar::f16(out + i, in.subspan(static_cast<size_t>(2 * i)), n - i);
}

RESLENS_AVX2 void bf16(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* p = in.data();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(load16(p + 2 * i));  // [8] bfloat16 in the low halves
    _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  if (i < n) scalar::bf16(out + i, in.subspan(static_cast<size_t>(2 * i)), n - i);
}

// ---- Q8_0 and the 32-value blocks ----------------------------------------------------------------

// 34 bytes: fp16 d, 32 int8 codes. x = d * q.
RESLENS_AVX2 void q8_0(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += 34, out += 32) {
    const __m256 d = _mm256_set1_ps(half_at(block));
    for (int g = 0; g < 4; ++g) _mm256_storeu_ps(out + 8 * g, _mm256_mul_ps(d, float_i8(block + 2 + 8 * g)));
  }
}

// Q4_0, Q4_1, Q5_0, Q5_1 (layouts in dequantize_blocks.cpp). Value j < 16 is byte j's low nibble,
// value j + 16 its high nibble, each with its fifth bit from bit j (j + 16) of the Q5 word.
template <bool kHasMin, bool kHighBits>
RESLENS_AVX2 inline void blocks32(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr int64_t kHeader = 2 + (kHasMin ? 2 : 0) + (kHighBits ? 4 : 0), kBytes = kHeader + 16;
  const __m256i offset = _mm256_set1_epi32(kHasMin ? 0 : (kHighBits ? 16 : 8)), nibble = _mm256_set1_epi32(0x0F);
  const __m256i one = _mm256_set1_epi32(1), lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += kBytes, out += 32) {
    const __m256 d = _mm256_set1_ps(half_at(block));
    [[maybe_unused]] __m256 m;
    if constexpr (kHasMin) m = _mm256_set1_ps(half_at(block + 2));
    [[maybe_unused]] __m256i high;
    if constexpr (kHighBits) {
      uint32_t h;
      std::memcpy(&h, block + 2 + (kHasMin ? 2 : 0), 4);
      high = _mm256_set1_epi32(static_cast<int>(h));
    }
    for (int g = 0; g < 2; ++g) {
      const __m256i a = widen_u8(block + kHeader + 8 * g);  // [8] bytes: values 8g.. and 16 + 8g..
      __m256i q[2] = {_mm256_and_si256(a, nibble), _mm256_srli_epi32(a, 4)};
      for (int s = 0; s < 2; ++s) {
        const int first = 16 * s + 8 * g;  // the value index of lane 0
        if constexpr (kHighBits) {
          const __m256i bit = _mm256_and_si256(_mm256_srlv_epi32(high, _mm256_add_epi32(lanes, _mm256_set1_epi32(first))), one);
          q[s] = _mm256_or_si256(q[s], _mm256_slli_epi32(bit, 4));
        }
        // The scalar code's float(q - offset) * d, or float(q) * d + m.
        __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[s], offset)), d);
        if constexpr (kHasMin) y = _mm256_add_ps(y, m);
        _mm256_storeu_ps(out + first, y);
      }
    }
  }
}

RESLENS_AVX2 void q4_0(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<false, false>(out, in, n); }
RESLENS_AVX2 void q4_1(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<true, false>(out, in, n); }
RESLENS_AVX2 void q5_0(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<false, true>(out, in, n); }
RESLENS_AVX2 void q5_1(float* out, std::span<const uint8_t> in, int64_t n) { blocks32<true, true>(out, in, n); }

// ---- IQ4 -----------------------------------------------------------------------------------------

// 32 values from 16 bytes of codebook indices (low nibbles first): scale * codebook[q]. pshufb is
// the 16-entry lookup, on int8 entries, which convert to float exactly.
RESLENS_AVX2 inline void iq4_nibbles(float* y, const uint8_t* qs, float scale) {
  // ggml-common.h's kvalues_iq4nl (dequantize_iq4.cpp's kCodebook).
  const __m128i codebook = _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m256 s = _mm256_set1_ps(scale);
  const __m128i v = load16(qs);
  const __m128i entries[2] = {_mm_shuffle_epi8(codebook, _mm_and_si128(v, low4)),
                              _mm_shuffle_epi8(codebook, _mm_and_si128(_mm_srli_epi16(v, 4), low4))};  // [2][16]
  for (int h = 0; h < 2; ++h) {
    _mm256_storeu_ps(y + 16 * h, _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(entries[h]))));
    _mm256_storeu_ps(y + 16 * h + 8,
                     _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(entries[h], entries[h])))));
  }
}

RESLENS_AVX2 void iq4_nl(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 32; ++b, block += 18, out += 32) iq4_nibbles(out, block + 2, half_at(block));
}

RESLENS_AVX2 void iq4_xs(float* out, std::span<const uint8_t> in, int64_t n) {
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

// Q4_K / Q5_K's d * scale (dm[0..7]) and dmin * min (dm[8..15]) of the 8 sub-blocks, as the scalar
// code's d1 and m1. The 12 bytes at block + 4 (layout in dequantize_k.cpp's scale_min_k4): bytes
// 0-3 hold scales 0-3 and bytes 4-7 mins 0-3 in their low six bits, and the top two bits of
// sub-blocks 4-7's; bytes 8-11 hold sub-blocks 4-7's low nibbles (scale) and high nibbles (min).
RESLENS_AVX2 inline void scales_k4(float* dm, const uint8_t* block) {
  uint32_t w[3];
  std::memcpy(w, block + 4, 12);
  constexpr uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  const uint32_t sm[4] = {w[0] & kLow6, (w[2] & kLow4) | (((w[0] >> 6) & kLow2) << 4), w[1] & kLow6,
                          ((w[2] >> 4) & kLow4) | (((w[1] >> 6) & kLow2) << 4)};  // [16] bytes: scales, mins
  _mm256_storeu_ps(dm, _mm256_mul_ps(_mm256_set1_ps(half_at(block)), _mm256_cvtepi32_ps(widen_u8(sm))));
  _mm256_storeu_ps(dm + 8, _mm256_mul_ps(_mm256_set1_ps(half_at(block + 2)), _mm256_cvtepi32_ps(widen_u8(sm + 2))));
}

// Q4_K (kFifthBit false) and Q5_K: per 64 values, 32 bytes of codes: low nibbles are sub-block 2i,
// high nibbles 2i + 1; Q5_K's fifth bit of sub-block k's value l is bit k of qh[l].
// x = d1 * float(q) - m1.
template <bool kFifthBit>
RESLENS_AVX2 inline void k4(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr int64_t kBytes = kFifthBit ? 176 : 144, kCodes = kFifthBit ? 48 : 16;
  const __m256i nibble = _mm256_set1_epi32(0x0F), sixteen = _mm256_set1_epi32(16);
  const uint8_t* block = in.data();
  for (int64_t b = 0; b < n / 256; ++b, block += kBytes) {
    alignas(32) float dm[16];  // [8 d * scale, 8 dmin * min]
    scales_k4(dm, block);
    [[maybe_unused]] __m256i qh[4];  // [4][8] qh bytes, shifted right by 2 per pair of sub-blocks
    if constexpr (kFifthBit)
      for (int g = 0; g < 4; ++g) qh[g] = widen_u8(block + 16 + 8 * g);
    const uint8_t* q = block + kCodes;
    for (int i = 0; i < 4; ++i, q += 32, out += 64) {
      const __m256 d1 = _mm256_set1_ps(dm[2 * i]), m1 = _mm256_set1_ps(dm[8 + 2 * i]);
      const __m256 d2 = _mm256_set1_ps(dm[2 * i + 1]), m2 = _mm256_set1_ps(dm[9 + 2 * i]);
      for (int g = 0; g < 4; ++g) {
        const __m256i a = widen_u8(q + 8 * g);  // [8] bytes: values 8g.. of both sub-blocks
        __m256i lo = _mm256_and_si256(a, nibble), hi = _mm256_srli_epi32(a, 4);
        if constexpr (kFifthBit) {
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi32(qh[g], 4), sixteen));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi32(qh[g], 3), sixteen));
          qh[g] = _mm256_srli_epi32(qh[g], 2);
        }
        _mm256_storeu_ps(out + 8 * g, _mm256_sub_ps(_mm256_mul_ps(d1, _mm256_cvtepi32_ps(lo)), m1));
        _mm256_storeu_ps(out + 32 + 8 * g, _mm256_sub_ps(_mm256_mul_ps(d2, _mm256_cvtepi32_ps(hi)), m2));
      }
    }
  }
}

RESLENS_AVX2 void q4_k(float* out, std::span<const uint8_t> in, int64_t n) { k4<false>(out, in, n); }
RESLENS_AVX2 void q5_k(float* out, std::span<const uint8_t> in, int64_t n) { k4<true>(out, in, n); }

// Q6_K: per half of 128 values, ql[64] and qh[32] give four runs of 32 six-bit codes, assembled
// 32 bytes at a time (16-bit shifts, then masks that drop the bits that crossed a byte); each run
// of 16 has its own int8 scale, in output order. x = (d * scale) * float(q - 32).
RESLENS_AVX2 void q6_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32);
  for (int64_t b = 0; b < n / 256; ++b, block += 210) {
    alignas(32) float ds[16];  // [16] d * scale, one per 16 values
    const __m256 d = _mm256_set1_ps(half_at(block + 208));
    _mm256_storeu_ps(ds, _mm256_mul_ps(d, float_i8(block + 192)));
    _mm256_storeu_ps(ds + 8, _mm256_mul_ps(d, float_i8(block + 200)));
    for (int half = 0; half < 2; ++half) {
      const __m256i l0 = load32(block + 64 * half), l1 = load32(block + 64 * half + 32), h = load32(block + 128 + 32 * half);
      const __m256i runs[4] = {
          // values 0-31: ql[0..31] low nibbles, qh bits 0-1; 32-63: ql[32..63], bits 2-3;
          // 64-95: ql[0..31] high nibbles, bits 4-5; 96-127: ql[32..63], bits 6-7.
          _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45)),
          _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(h, bits45)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4), _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45))};
      alignas(32) int8_t codes[128];  // [128] q - 32, in output order
      for (int r = 0; r < 4; ++r) _mm256_store_si256(reinterpret_cast<__m256i*>(codes + 32 * r), _mm256_sub_epi8(runs[r], bias));
      for (int k = 0; k < 8; ++k, out += 16) {
        const __m256 s = _mm256_set1_ps(ds[8 * half + k]);
        _mm256_storeu_ps(out, _mm256_mul_ps(s, float_i8(codes + 16 * k)));
        _mm256_storeu_ps(out + 8, _mm256_mul_ps(s, float_i8(codes + 16 * k + 8)));
      }
    }
  }
}

// Q2_K: per half of 128 values, 32 bytes of codes read four times, 2 bits at a time; each run of
// 16 has a scale (low nibble) and a min (high nibble), in output order. x = dl * float(q) - ml.
RESLENS_AVX2 void q2_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m256i three = _mm256_set1_epi32(3), nibble = _mm256_set1_epi32(0x0F);
  for (int64_t b = 0; b < n / 256; ++b, block += 84) {
    alignas(32) float dl[16], ml[16];  // [16] each
    const __m256 d = _mm256_set1_ps(half_at(block + 80)), dmin = _mm256_set1_ps(half_at(block + 82));
    for (int g = 0; g < 2; ++g) {
      const __m256i sc = widen_u8(block + 8 * g);  // [8] scale | min << 4
      _mm256_storeu_ps(dl + 8 * g, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_and_si256(sc, nibble))));
      _mm256_storeu_ps(ml + 8 * g, _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_srli_epi32(sc, 4))));
    }
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];  // [4][8] the half's 32 code bytes
      for (int g = 0; g < 4; ++g) q[g] = widen_u8(block + 16 + 32 * half + 8 * g);
      for (int k = 0; k < 8; ++k, out += 16) {
        const __m128i shift = _mm_cvtsi32_si128(2 * (k / 2));
        const __m256 dk = _mm256_set1_ps(dl[8 * half + k]), mk = _mm256_set1_ps(ml[8 * half + k]);
        for (int g = 0; g < 2; ++g) {
          const __m256i code = _mm256_and_si256(_mm256_srl_epi32(q[2 * (k % 2) + g], shift), three);
          _mm256_storeu_ps(out + 8 * g, _mm256_sub_ps(_mm256_mul_ps(dk, _mm256_cvtepi32_ps(code)), mk));
        }
      }
    }
  }
}

// Q3_K: Q2_K's 2-bit passes, minus 4 where the pass's hmask bit is clear, with sixteen six-bit
// scales (offset by 32) packed in 12 bytes (see dequantize_k.cpp). x = (d * (scale - 32)) * code.
RESLENS_AVX2 void q3_k(float* out, std::span<const uint8_t> in, int64_t n) {
  const uint8_t* block = in.data();
  const __m256i three = _mm256_set1_epi32(3), four = _mm256_set1_epi32(4), bias = _mm256_set1_epi32(32);
  constexpr uint32_t kLow2 = 0x03030303, kLow4 = 0x0f0f0f0f;
  for (int64_t b = 0; b < n / 256; ++b, block += 110) {
    uint32_t a[3];
    std::memcpy(a, block + 96, 12);
    const uint32_t scales[4] = {(a[0] & kLow4) | ((a[2] & kLow2) << 4), (a[1] & kLow4) | (((a[2] >> 2) & kLow2) << 4),
                                ((a[0] >> 4) & kLow4) | (((a[2] >> 4) & kLow2) << 4),
                                ((a[1] >> 4) & kLow4) | (((a[2] >> 6) & kLow2) << 4)};  // [16] bytes
    alignas(32) float dl[16];  // [16] d * (scale - 32)
    const __m256 d = _mm256_set1_ps(half_at(block + 108));
    for (int g = 0; g < 2; ++g)
      _mm256_storeu_ps(dl + 8 * g, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(widen_u8(scales + 2 * g), bias))));
    __m256i hm[4];  // [4][8] hmask bytes, the same for both halves
    for (int g = 0; g < 4; ++g) hm[g] = widen_u8(block + 8 * g);
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];  // [4][8] the half's 32 code bytes
      for (int g = 0; g < 4; ++g) q[g] = widen_u8(block + 32 + 32 * half + 8 * g);
      for (int k = 0; k < 8; ++k, out += 16) {
        const __m128i shift = _mm_cvtsi32_si128(2 * (k / 2));
        const __m256i bit = _mm256_set1_epi32(1 << (4 * half + k / 2));
        const __m256 dk = _mm256_set1_ps(dl[8 * half + k]);
        for (int g = 0; g < 2; ++g) {
          const int l = 2 * (k % 2) + g;
          const __m256i low = _mm256_and_si256(_mm256_srl_epi32(q[l], shift), three);
          const __m256i clear = _mm256_cmpeq_epi32(_mm256_and_si256(hm[l], bit), _mm256_setzero_si256());
          const __m256i code = _mm256_sub_epi32(low, _mm256_and_si256(clear, four));
          _mm256_storeu_ps(out + 8 * g, _mm256_mul_ps(dk, _mm256_cvtepi32_ps(code)));
        }
      }
    }
  }
}

constexpr DequantizeKernels kKernels = {f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs};

}  // namespace

const DequantizeKernels* avx2_dequantize_kernels() { return &kKernels; }

}  // namespace reslens::detail

#else

namespace reslens::detail {
const DequantizeKernels* avx2_dequantize_kernels() { return nullptr; }
}  // namespace reslens::detail

#endif
