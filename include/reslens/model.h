// Model: a loaded transformer (configuration, weights and tokenizer). A model is named by a path:
// a GGUF file, a llama2.c checkpoint, or a Hugging Face directory. Loading validates everything it
// reads and throws IoError / FormatError / UnsupportedError naming the file and the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "reslens/config.h"
#include "reslens/tokenizer.h"
#include "reslens/weights.h"

namespace reslens {

struct LoadOptions {
  /// A tokenizer file to use instead of the one found with the model (llama2.c `tokenizer.bin`).
  std::filesystem::path tokenizer_path;
  /// Convert every weight to float32 at load (4 bytes per weight) instead of keeping matrices in the
  /// file's encoding and decoding the rows each product reads. Results are the same bit for bit either
  /// way (tests check it); converting trades memory for speed on F16/BF16/quantized files.
  bool weights_as_float32 = false;
};

/// One tensor as it is stored in the model file (for `reslens inspect`).
struct TensorInfo {
  std::string name;            ///< The file's own name ("blk.0.attn_q.weight").
  std::string dtype;           ///< "F32", "F16", "BF16", "Q8_0", "Q4_K", ... (src/model/storage.h)
  std::vector<int64_t> shape;  ///< Row-major, outermost first.
};

class ModelStorage;  // owns memory maps and dequantized buffers (private)

class Model {
 public:
  /// Loads the model at `path`; the format is detected from the contents.
  static std::shared_ptr<const Model> load(const std::filesystem::path& path,
                                           const LoadOptions& options = {});

  Model(ModelConfig config, ModelWeights weights, std::unique_ptr<Tokenizer> tokenizer,
        std::shared_ptr<ModelStorage> storage, std::vector<TensorInfo> tensors, std::string format,
        std::filesystem::path path);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  /// Tensors as stored in the file, in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// "GGUF v3", "llama2.c v0 (legacy)", "Hugging Face safetensors".
  const std::string& format() const { return format_; }
  const std::filesystem::path& path() const { return path_; }
  /// Parameter count (each stored tensor once; a tied matrix counts once).
  int64_t n_params() const;
  /// Bytes of weight data mapped from the file (not copied) and bytes held in owned buffers.
  int64_t mapped_bytes() const;
  int64_t owned_bytes() const;
  /// A file this model reads in place (its weights file, a shard) that was written to or truncated
  /// since the model loaded, or an empty path. Such a change shows through the memory map: a long-running
  /// process (`reslens serve`) asks before each job, so it refuses rather than compute with new bytes
  /// or die of a SIGBUS on a truncated file.
  std::filesystem::path changed_file() const;
  /// Identifies the weights cheaply, for the caches derived from them on disk (explain's bounds and
  /// projection caches name and check their files with it): FNV-1a 64 of the dimensions and a strided
  /// sample of every matrix those caches derive from (W_U, ln_final's scale, W_out, W_O), so an
  /// edited or different model never reuses a stale cache entry. Computed on first use, once per
  /// model (thread-safe); commands that need no cache never read those pages for it.
  uint64_t fingerprint() const;

 private:
  ModelConfig config_;
  ModelWeights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::shared_ptr<ModelStorage> storage_;
  std::vector<TensorInfo> tensors_;
  std::string format_;
  std::filesystem::path path_;
  mutable std::once_flag fingerprint_once_;
  mutable uint64_t fingerprint_ = 0;
};

}  // namespace reslens
