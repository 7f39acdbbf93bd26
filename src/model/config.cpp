// TransformerLens spellings of the configuration enums.
#include "reslens/config.h"

namespace reslens {

const char* to_string(Architecture a) { return a == Architecture::kGpt2 ? "gpt2" : "llama"; }
const char* to_string(NormType n) { return n == NormType::kLayerNorm ? "LN" : "RMS"; }
const char* to_string(ActFn a) { return a == ActFn::kGeluNew ? "gelu_new" : "silu"; }
const char* to_string(PositionalEmbedding p) {
  return p == PositionalEmbedding::kStandard ? "standard" : "rotary";
}
const char* to_string(RopeLayout r) { return r == RopeLayout::kHalf ? "half" : "interleaved"; }

}  // namespace reslens
