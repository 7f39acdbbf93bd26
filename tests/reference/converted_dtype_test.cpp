// F16, BF16 and Q8_0 models (the shared models converted by scripts/convert_model.py) against the
// F32 originals: they load (dequantized to float32 at load, so their weights are owned, not mapped),
// report their storage type, and give logits within what each type's rounding allows.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_paths.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

struct Case {
  const char* original;
  const char* stem;
  std::vector<int32_t> ids;
};

double max_rel_diff(const Tensor& a, const Tensor& b) {
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    scale = std::max(scale, std::abs(static_cast<double>(b.data()[i])));
  }
  return worst / scale;
}

TEST(ConvertedDtypes, LogitsStayWithinEachTypesRounding) {
  const std::filesystem::path dir = RESLENS_GENERATED_DIR "/converted";
  ASSERT_TRUE(std::filesystem::exists(dir)) << dir << " is missing: run the generate_converted_models test first";
  const Case cases[] = {
      {"models/stories260K/stories260K.gguf", "stories260K", {1, 403, 407, 261, 378, 432, 383}},
      {"models/TinyStories-656K/TinyStories-656K-f32.gguf", "TinyStories-656K", {1, 80, 147, 201, 282, 57}},
      {"models/random-gpt2/random-gpt2-test.gguf", "random-gpt2", {464, 3139, 286, 4881, 318}},
  };
  // Bounds on max |logit difference| / max |logit|, about 3x what the conversions were seen to give
  // (f16 3-6e-4, bf16 2.6-3.9e-3, q8_0 0.8-1.1e-2; see scripts/README.md).
  const std::pair<const char*, double> types[] = {{"f16", 2e-3}, {"bf16", 1.5e-2}, {"q8_0", 4e-2}};
  for (const Case& c : cases) {
    const auto f32 = Model::load(test::shared_path(c.original));
    EXPECT_EQ(f32->owned_bytes(), 0) << c.original << ": F32 weights are used in place";
    RunOptions o;
    o.all_logits = true;
    const RunResult want = run(*f32, c.ids, o);
    for (const auto& [type, bound] : types) {
      const auto path = dir / (std::string(c.stem) + "-" + type + ".gguf");
      const auto m = Model::load(path);
      EXPECT_NE(m->config().dtype.find(type == std::string("q8_0") ? "Q8_0" : type == std::string("f16") ? "F16" : "BF16"),
                std::string::npos)
          << path << " reports " << m->config().dtype;
      EXPECT_FALSE(m->weights().layers[0].W_Q.is_float()) << path << ": matrices stay in the file's encoding";
      EXPECT_EQ(m->owned_bytes(), 0) << path << ": nothing is converted at load";
      const RunResult got = run(*m, c.ids, o);
      const double rel = max_rel_diff(got.logits, want.logits);
      EXPECT_LT(rel, bound) << path;
      std::printf("%-40s max |dlogit| / max |logit| = %.2e\n", path.filename().c_str(), rel);
    }
  }
}

}  // namespace
}  // namespace reslens
