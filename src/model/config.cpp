// TransformerLens spellings of the configuration enums.
#include "reslens/config.h"

namespace reslens {

const char* to_string(Architecture a) {
  switch (a) {
    case Architecture::kGpt2: return "gpt2";
    case Architecture::kGptNeoX: return "gpt_neox";
    case Architecture::kLlama: break;
  }
  return "llama";
}
const char* to_string(NormType n) { return n == NormType::kLayerNorm ? "LN" : "RMS"; }
const char* to_string(ActFn a) {
  switch (a) {
    case ActFn::kGeluNew: return "gelu_new";
    case ActFn::kGeluErf: return "gelu";
    case ActFn::kSilu: break;
  }
  return "silu";
}
const char* to_string(PositionalEmbedding p) {
  return p == PositionalEmbedding::kStandard ? "standard" : "rotary";
}
const char* to_string(RopeLayout r) { return r == RopeLayout::kHalf ? "half" : "interleaved"; }

}  // namespace reslens
