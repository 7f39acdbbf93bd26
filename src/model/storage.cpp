#include "model/storage.h"

#include <cstring>

#include "core/check.h"
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
  }
  return "?";
}

const float* ModelStorage::own(std::vector<float> buffer) {
  owned_bytes_ += static_cast<int64_t>(buffer.size() * sizeof(float));
  owned_.push_back(std::move(buffer));
  return owned_.back().data();
}

const float* ModelStorage::floats(std::span<const uint8_t> bytes, StorageType type, int64_t n) {
  if (type == StorageType::kF32) {
    RESLENS_CHECK(bytes.size() >= static_cast<size_t>(n) * 4, "tensor bytes");
    if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(float) == 0) {
      mapped_bytes_ += n * 4;
      return reinterpret_cast<const float*>(bytes.data());
    }
    std::vector<float> copy(static_cast<size_t>(n));
    std::memcpy(copy.data(), bytes.data(), static_cast<size_t>(n) * 4);
    release(bytes);
    return own(std::move(copy));
  }
  std::vector<float> out(static_cast<size_t>(n));
  switch (type) {
    case StorageType::kF16: dequantize_f16(out.data(), bytes, n); break;
    case StorageType::kBF16: dequantize_bf16(out.data(), bytes, n); break;
    case StorageType::kQ8_0: dequantize_q8_0(out.data(), bytes, n); break;
    case StorageType::kQ4_0: dequantize_q4_0(out.data(), bytes, n); break;
    case StorageType::kQ4_1: dequantize_q4_1(out.data(), bytes, n); break;
    case StorageType::kQ5_0: dequantize_q5_0(out.data(), bytes, n); break;
    case StorageType::kQ5_1: dequantize_q5_1(out.data(), bytes, n); break;
    case StorageType::kQ2_K: dequantize_q2_k(out.data(), bytes, n); break;
    case StorageType::kQ3_K: dequantize_q3_k(out.data(), bytes, n); break;
    case StorageType::kQ4_K: dequantize_q4_k(out.data(), bytes, n); break;
    case StorageType::kQ5_K: dequantize_q5_k(out.data(), bytes, n); break;
    case StorageType::kQ6_K: dequantize_q6_k(out.data(), bytes, n); break;
    case StorageType::kF32: break;
  }
  release(bytes);  // the file's copy is no longer read: peak memory ~ the float32 weights, not both
  return own(std::move(out));
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
    owned_bytes_ -= static_cast<int64_t>(owned_.back().size() * sizeof(float));
    owned_.pop_back();
  }
}

}  // namespace reslens
