#include "model/storage.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/check.h"
#include "core/parallel.h"
#include "reslens/error.h"
#include "model/dequantize.h"

namespace reslens {

const char* storage_type_name(StorageType t) {
  switch (t) {
    case StorageType::kF32: return "F32";
    case StorageType::kF16: return "F16";
    case StorageType::kBF16: return "BF16";
    case StorageType::kQ8_0: return "Q8_0";
    case StorageType::kQ4_0: return "Q4_0";
    case StorageType::kQ4_1: return "Q4_1";
    case StorageType::kQ5_0: return "Q5_0";
    case StorageType::kQ5_1: return "Q5_1";
    case StorageType::kQ2_K: return "Q2_K";
    case StorageType::kQ3_K: return "Q3_K";
    case StorageType::kQ4_K: return "Q4_K";
    case StorageType::kQ5_K: return "Q5_K";
    case StorageType::kQ6_K: return "Q6_K";
    case StorageType::kIQ4_NL: return "IQ4_NL";
    case StorageType::kIQ4_XS: return "IQ4_XS";
  }
  return "?";
}

namespace {

// A stored type's conversion and its block.
struct Dequantizer {
  DequantizeFn fn;
  int64_t elements;
  int64_t bytes;
};

Dequantizer dequantizer(StorageType t) {
  const EncodingBlock b = encoding_block(t);
  return {dequantize_fn(t), b.elements, b.bytes};
}

}  // namespace

EncodingBlock encoding_block(StorageType t) {
  switch (t) {
    case StorageType::kF32: return {1, 4};
    case StorageType::kF16: return {1, 2};
    case StorageType::kBF16: return {1, 2};
    case StorageType::kQ8_0: return {kQ8_0Block, kQ8_0BlockBytes};
    case StorageType::kQ4_0: return {32, 18};
    case StorageType::kQ4_1: return {32, 20};
    case StorageType::kQ5_0: return {32, 22};
    case StorageType::kQ5_1: return {32, 24};
    case StorageType::kQ2_K: return {256, 84};
    case StorageType::kQ3_K: return {256, 110};
    case StorageType::kQ4_K: return {256, 144};
    case StorageType::kQ5_K: return {256, 176};
    case StorageType::kQ6_K: return {256, 210};
    case StorageType::kIQ4_NL: return {32, 18};
    case StorageType::kIQ4_XS: return {256, 136};
  }
  throw InternalError("unknown storage type " + std::to_string(static_cast<int>(t)));
}

DequantizeFn dequantize_fn(StorageType t) {
  switch (t) {
    case StorageType::kF16: return dequantize_f16;
    case StorageType::kBF16: return dequantize_bf16;
    case StorageType::kQ8_0: return dequantize_q8_0;
    case StorageType::kQ4_0: return dequantize_q4_0;
    case StorageType::kQ4_1: return dequantize_q4_1;
    case StorageType::kQ5_0: return dequantize_q5_0;
    case StorageType::kQ5_1: return dequantize_q5_1;
    case StorageType::kQ2_K: return dequantize_q2_k;
    case StorageType::kQ3_K: return dequantize_q3_k;
    case StorageType::kQ4_K: return dequantize_q4_k;
    case StorageType::kQ5_K: return dequantize_q5_k;
    case StorageType::kQ6_K: return dequantize_q6_k;
    case StorageType::kIQ4_NL: return dequantize_iq4_nl;
    case StorageType::kIQ4_XS: return dequantize_iq4_xs;
    case StorageType::kF32: break;
  }
  throw InternalError("no dequantizer for storage type " + std::string(storage_type_name(t)));
}

MatrixView ModelStorage::packed(std::span<const uint8_t> bytes, StorageType type, int64_t rows, int64_t cols) {
  const EncodingBlock b = encoding_block(type);
  RESLENS_CHECK(cols % b.elements == 0, "packed rows are whole blocks");
  const int64_t row_bytes = cols / b.elements * b.bytes;
  RESLENS_CHECK(bytes.size() >= static_cast<size_t>(rows * row_bytes), "tensor bytes");
  mapped_bytes_ += rows * row_bytes;
  MatrixView m;
  m.rows = rows;
  m.cols = cols;
  m.packed = bytes.data();
  m.ld_bytes = row_bytes;
  m.encoding = type;
  return m;
}

const uint8_t* ModelStorage::own_bytes(std::vector<uint8_t> bytes) {
  owned_bytes_ += static_cast<int64_t>(bytes.size());
  owned_encoded_.push_back(std::move(bytes));
  return owned_encoded_.back().data();
}

const float* ModelStorage::own(std::vector<float> buffer) { return own(FloatBuffer(std::move(buffer))); }

const float* ModelStorage::own(FloatBuffer buffer) {
  owned_bytes_ += buffer.size() * static_cast<int64_t>(sizeof(float));
  owned_.push_back(std::move(buffer));
  return owned_.back().data();
}

const float* ModelStorage::floats(std::span<const uint8_t> bytes, StorageType type, int64_t n) {
  if (type == StorageType::kF32) {
    RESLENS_CHECK(bytes.size() >= static_cast<size_t>(n) * sizeof(float), "tensor bytes");
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0) {
      mapped_bytes_ += n * static_cast<int64_t>(sizeof(float));
      return reinterpret_cast<const float*>(bytes.data());
    }
    FloatBuffer copy(n);
    std::memcpy(copy.data(), bytes.data(), static_cast<size_t>(n) * sizeof(float));
    release(bytes);
    return own(std::move(copy));
  }
  FloatBuffer out(n);
  const Dequantizer q = dequantizer(type);
  // Whole blocks per task, on every core: each value depends on its block alone, so the result is
  // the same for any split (a 1.1B-parameter model's conversion is seconds on one core).
  const int64_t blocks = n / q.elements, per_task = std::max<int64_t>(1, (int64_t{1} << 20) / q.elements);
  parallel_for(0, (blocks + per_task - 1) / per_task, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b0 = t * per_task, nb = std::min(per_task, blocks - b0);
      q.fn(out.data() + b0 * q.elements, bytes.subspan(static_cast<size_t>(b0 * q.bytes), static_cast<size_t>(nb * q.bytes)),
           nb * q.elements);
    }
  });
  release(bytes);  // the file's copy is no longer read: peak memory ~ the float32 weights, not both
  return own(std::move(out));
}

std::filesystem::path ModelStorage::changed_file() const {
  for (const auto& m : maps_) {
    if (m->changed_on_disk()) return m->path();
  }
  return {};
}

void ModelStorage::release(std::span<const uint8_t> bytes) const {
  for (const auto& m : maps_) {
    if (m->contains(bytes.data())) {
      m->release(bytes);
      return;
    }
  }
}

void ModelStorage::discard(const float* p) {
  if (!owned_.empty() && owned_.back().data() == p) {
    owned_bytes_ -= owned_.back().size() * static_cast<int64_t>(sizeof(float));
    owned_.pop_back();
  }
}

}  // namespace reslens
