// Hugging Face model directories (config.json + safetensors). Implemented in the next step.
#include "model/loader.h"
#include "reslens/error.h"

namespace reslens {

std::shared_ptr<const Model> load_hf_model(const std::filesystem::path& dir, const LoadOptions&) {
  if (!std::filesystem::exists(dir / "config.json")) {
    throw IoError(dir.string() + ": no model found in this directory (expected config.json and "
                                 "model.safetensors, or pass a .gguf / llama2.c .bin file)");
  }
  throw UnsupportedError(dir.string() + ": Hugging Face directories are not supported yet");
}

}  // namespace reslens
