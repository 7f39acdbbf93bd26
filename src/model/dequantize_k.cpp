// llama.cpp's k-quants (ggml-common.h's block_q2_K ... block_q6_K): super-blocks of 256 values in
// sub-blocks of 16 or 32 with their own quantized scales, dequantized as ggml's dequantize_row_q2_K
// ... do, with the same float32 operations in the same order (d * scale first, then times the code,
// minus the sub-block's min where there is one).
#include <cstring>

#include "core/half.h"
#include "model/dequantize.h"
#include "model/dequantize_kernels.h"

namespace reslens::detail::scalar {

namespace {

constexpr int64_t kSuper = 256;

// Q4_K and Q5_K pack 8 six-bit scales and 8 six-bit mins in 12 bytes: sub-blocks 0-3 in the low
// six bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 as a nibble of bytes 8-11 plus the
// top two bits of bytes 0-3 (scales) and 4-7 (mins).
void scale_min_k4(int j, const uint8_t* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

// 84 bytes: scales[16] (low nibble scale, high nibble min, per 16 values), qs[64] (2-bit codes),
// fp16 d, fp16 dmin. Each half of 128 values reads 32 bytes of qs four times, 2 bits at a time.
void q2_k(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t* block = in.data() + b * 84;
    const uint8_t* scales = block;
    const uint8_t* q = block + 16;
    const float d = fp16_at(block + 80), dmin = fp16_at(block + 82);
    float* y = out + b * kSuper;
    int is = 0;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int part = 0; part < 2; ++part) {
          const int sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0F), ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16 * part] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// 110 bytes: hmask[32], qs[64] (low 2 bits of each code), scales[12] (16 six-bit scales, offset by
// 32), fp16 d. The k-th 2-bit pass over qs (k = 0..7, four per half) takes its high bits from bit k
// of hmask. x = d (scale - 32) (q - 4 when the high bit is clear).
void q3_k(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr uint32_t kLow2 = 0x03030303, kLow4 = 0x0f0f0f0f;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t* block = in.data() + b * 110;
    const uint8_t* hm = block;
    const uint8_t* q = block + 32;
    const float d = fp16_at(block + 108);
    // The 12 scale bytes as three little-endian words: scales 0-7 have their low nibbles in words
    // 0-1 and scales 8-15 in the same words' high nibbles; word 2 holds every scale's top two bits.
    uint32_t a[4];
    std::memcpy(a, block + 96, 12);
    const uint32_t top = a[2];
    a[2] = ((a[0] >> 4) & kLow4) | (((top >> 4) & kLow2) << 4);
    a[3] = ((a[1] >> 4) & kLow4) | (((top >> 6) & kLow2) << 4);
    a[0] = (a[0] & kLow4) | ((top & kLow2) << 4);
    a[1] = (a[1] & kLow4) | (((top >> 2) & kLow2) << 4);
    int8_t scales[16];
    std::memcpy(scales, a, 16);
    float* y = out + b * kSuper;
    int is = 0;
    unsigned bit = 1;
    for (int half = 0; half < 2; ++half, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, bit <<= 1) {
        for (int part = 0; part < 2; ++part) {
          const float dl = d * static_cast<float>(scales[is++] - 32);
          for (int l = 16 * part; l < 16 * part + 16; ++l) {
            const int code = ((q[l] >> shift) & 3) - ((hm[l] & bit) != 0 ? 0 : 4);
            *y++ = dl * static_cast<float>(code);
          }
        }
      }
    }
  }
}

namespace {

// Q4_K, 144 bytes: fp16 d, fp16 dmin, scales[12] (scale_min_k4), qs[128]. Each 64 values: 32 bytes of
// qs, low nibbles first (sub-block 2i), then high nibbles (2i + 1). x = (d sc) q - (dmin m).
// Q5_K, 176 bytes, adds qh[32] before qs: the fifth bit of sub-block k's values in bit k.
template <bool kFifthBit>
void dequantize_k4(float* out, std::span<const uint8_t> in, int64_t n) {
  constexpr int64_t kBytes = kFifthBit ? 176 : 144, kCodes = kFifthBit ? 48 : 16;
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t* block = in.data() + b * kBytes;
    const float d = fp16_at(block), dmin = fp16_at(block + 2);
    const uint8_t* scales = block + 4;
    const uint8_t* qh = block + 16;
    const uint8_t* q = block + kCodes;
    float* y = out + b * kSuper;
    unsigned u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2, q += 32, u1 <<= 2, u2 <<= 2) {
      int sc = 0, m = 0;
      scale_min_k4(is, scales, sc, m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      scale_min_k4(is + 1, scales, sc, m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int high = kFifthBit && (qh[l] & u1) != 0 ? 16 : 0;
        *y++ = d1 * static_cast<float>((q[l] & 0x0F) + high) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int high = kFifthBit && (qh[l] & u2) != 0 ? 16 : 0;
        *y++ = d2 * static_cast<float>((q[l] >> 4) + high) - m2;
      }
    }
  }
}

}  // namespace

void q4_k(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_k4<false>(out, in, n); }
void q5_k(float* out, std::span<const uint8_t> in, int64_t n) { dequantize_k4<true>(out, in, n); }

// 210 bytes: ql[128] (low nibbles), qh[64] (high 2 bits), scales[16] (int8, per 16 values), fp16 d.
// Each half of 128 values: ql's 64 bytes (low nibbles: values 0-63, high: 64-127) and 32 bytes of
// qh (2 bits for each of the four 32-value quarters). x = (d sc) (q - 32).
void q6_k(float* out, std::span<const uint8_t> in, int64_t n) {
  for (int64_t b = 0; b < n / kSuper; ++b) {
    const uint8_t* block = in.data() + b * 210;
    const uint8_t* ql = block;
    const uint8_t* qh = block + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(block + 192);
    const float d = fp16_at(block + 208);
    float* y = out + b * kSuper;
    for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace reslens::detail::scalar
