// What every model loader shares: the stored-tensor description, shape-checked materialisation into
// weight views, configuration validation, and the per-format entry points Model::load dispatches to.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/storage.h"
#include "reslens/config.h"
#include "reslens/model.h"
#include "reslens/weights.h"

namespace reslens {

/// One tensor as a file stores it.
struct StoredTensor {
  std::span<const uint8_t> bytes;
  StorageType type = StorageType::kF32;
  std::vector<int64_t> shape;  ///< row-major, outermost first
};

std::string shape_string(const std::vector<int64_t>& shape);

/// Float32 data of `t` after checking that its shape is `expected` (FormatError naming `source` and
/// `name` otherwise). Mapped in place when possible.
const float* materialize(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                         const std::vector<int64_t>& expected, const std::string& source);

/// A [rows, cols] matrix view of a checked tensor.
MatrixView matrix_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t rows, int64_t cols, const std::string& source);
VectorView vector_view(ModelStorage& storage, const StoredTensor& t, const std::string& name,
                       int64_t size, const std::string& source);

/// Rejects absurd or inconsistent hyperparameters with a FormatError naming `source`.
void validate_config(const ModelConfig& c, const std::string& source);

std::shared_ptr<const Model> load_gguf_model(const std::filesystem::path& path, const LoadOptions& o);
std::shared_ptr<const Model> load_llama2c_model(const std::filesystem::path& path, const LoadOptions& o);
std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& dir, const LoadOptions& o);

}  // namespace reslens
