// The BPE merge table and the merge loop shared by every rank-based BPE tokenizer (GPT-2, Llama 3,
// Qwen2, Hugging Face BPE): start from one symbol per character and repeatedly merge the adjacent
// pair with the lowest merge rank (ties: the leftmost pair), as Hugging Face's `Word::merge_all`
// and llama.cpp's `llm_tokenizer_bpe_session` both do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace reslens::tokenizer_detail {

class BpeMerges {
 public:
  /// Records that the pair (left, right) merges into `result` with priority `rank` (lower first).
  /// A pair seen before keeps its first rank, as both reference implementations do.
  void add(int32_t left, int32_t right, int32_t result, int32_t rank);

  /// Merges `symbols` (token ids) in place until no adjacent pair is in the table.
  void apply(std::vector<int32_t>& symbols) const;

  size_t size() const { return table_.size(); }

 private:
  struct Result {
    int32_t rank;
    int32_t id;
  };
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  const Result* find(int32_t left, int32_t right) const;

  std::unordered_map<uint64_t, Result> table_;
};

}  // namespace reslens::tokenizer_detail
