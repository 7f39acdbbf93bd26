#include "tokenizer/bpe_merges.h"

#include <queue>

namespace reslens::tokenizer_detail {

namespace {

// A queued merge of the symbol at `pos` with its right neighbour. It may be stale by the time it is
// popped (either side merged meanwhile); it then no longer yields `result` and is skipped.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t result;
};

// Lowest rank first, then leftmost position (Hugging Face's `Merge` ordering).
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.pos > b.pos);
  }
};

}  // namespace

void BpeMerges::add(int32_t left, int32_t right, int32_t result, int32_t rank) {
  table_.emplace(key(left, right), Result{rank, result});
}

const BpeMerges::Result* BpeMerges::find(int32_t left, int32_t right) const {
  if (left < 0 || right < 0) return nullptr;
  const auto it = table_.find(key(left, right));
  return it == table_.end() ? nullptr : &it->second;
}

void BpeMerges::apply(std::vector<int32_t>& symbols) const {
  const auto n = static_cast<int32_t>(symbols.size());
  if (n < 2) return;
  std::vector<int32_t> prev(symbols.size());
  std::vector<int32_t> next(symbols.size());
  std::vector<char> alive(symbols.size(), 1);
  for (int32_t i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue;
  auto consider = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t right = next[static_cast<size_t>(pos)];
    if (right < 0) return;
    if (const Result* r = find(symbols[static_cast<size_t>(pos)], symbols[static_cast<size_t>(right)])) {
      queue.push(Candidate{r->rank, pos, r->id});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const auto pos = static_cast<size_t>(top.pos);
    if (!alive[pos] || next[pos] < 0) continue;
    const auto right = static_cast<size_t>(next[pos]);
    const Result* r = find(symbols[pos], symbols[right]);
    if (r == nullptr || r->id != top.result) continue;  // stale entry
    symbols[pos] = top.result;
    alive[right] = 0;
    next[pos] = next[right];
    if (next[right] >= 0) prev[static_cast<size_t>(next[right])] = top.pos;
    consider(prev[pos]);
    consider(top.pos);
  }

  size_t out = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (alive[i]) symbols[out++] = symbols[i];
  }
  symbols.resize(out);
}

}  // namespace reslens::tokenizer_detail
