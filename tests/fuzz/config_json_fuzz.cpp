// libFuzzer target: a Hugging Face model directory's config.json. The input is written as the
// config.json of a directory holding a real model's weights and tokenizer (TinyStories-656K, from
// $RESLENS_FUZZ_HF_DIR or ../shared), which is then loaded: every field's type, range and
// combination must end in a typed error or a model, never a crash or an unbounded allocation.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "reslens/error.h"
#include "reslens/model.h"

namespace fs = std::filesystem;

namespace {

fs::path fuzz_dir() {
  static const fs::path dir = [] {
    const char* env = std::getenv("RESLENS_FUZZ_HF_DIR");
    const fs::path src = env != nullptr ? fs::path(env) : fs::path("../shared/models/TinyStories-656K");
    if (!fs::exists(src / "model.safetensors")) {
      std::fprintf(stderr, "config_json_fuzz: no %s/model.safetensors (set RESLENS_FUZZ_HF_DIR)\n", src.c_str());
      std::exit(2);
    }
    const fs::path d = fs::temp_directory_path() / ("reslens-config-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"}) {
      if (fs::exists(src / f)) fs::copy_file(src / f, d / f, fs::copy_options::overwrite_existing);
    }
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path dir = fuzz_dir();
  {
    std::ofstream out(dir / "config.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const auto model = reslens::Model::load(dir);
    return model->config().n_layers > 0 ? 0 : 1;
  } catch (const reslens::Error&) {
  } catch (const reslens::InvalidArgument&) {
  } catch (const reslens::OutOfRange&) {
  }
  return 0;
}
