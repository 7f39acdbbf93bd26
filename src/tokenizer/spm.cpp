#include "tokenizer/spm.h"

#include <queue>

#include "core/check.h"
#include "core/utf8.h"
#include "reslens/error.h"
#include "tokenizer/pieces.h"
#include "tokenizer/spm_text.h"

namespace reslens::tokenizer_detail {

namespace {

// One symbol of the text being merged: a byte range of the escaped text, linked to its neighbours.
// A symbol merged into its left neighbour keeps size 0.
struct Symbol {
  int prev = -1;
  int next = -1;
  size_t offset = 0;
  size_t size = 0;
};

// A candidate merge of two adjacent symbols. `size` is the byte length of the concatenation when
// it was queued: if either side has changed since, the entry is stale and skipped.
struct Bigram {
  int left = 0;
  int right = 0;
  float score = 0.0f;
  size_t size = 0;
};

// Highest score first; among equal scores the leftmost pair (llama.cpp's llm_bigram_spm order).
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

// The byte offset in `text` of the character at `escaped_offset` in its escaped form (each ' ' of
// the text is 3 bytes there). Only used to word error messages.
size_t input_offset(std::string_view text, size_t escaped_offset) {
  size_t escaped = 0;
  size_t i = 0;
  for (; i < text.size() && escaped < escaped_offset; ++i) escaped += text[i] == ' ' ? kSpmSpace.size() : 1;
  return i;
}

}  // namespace

SpmTokenizer::SpmTokenizer(SpmVocab vocab)
    : scores_(std::move(vocab.scores)), add_space_prefix_(vocab.add_space_prefix) {
  RESLENS_CHECK(vocab.pieces.size() == scores_.size() && vocab.pieces.size() == vocab.types.size(),
                "SpmVocab arrays differ in length");
  pieces_ = std::move(vocab.pieces);
  types_ = std::move(vocab.types);
  bos_id_ = vocab.bos_id;
  eos_id_ = vocab.eos_id;
  unk_id_ = vocab.unk_id;
  add_bos_default_ = vocab.add_bos;
  kind_ = std::move(vocab.kind);
  index_pieces();
  for (int b = 0; b < 256; ++b) {
    int32_t id = find_piece(byte_piece(static_cast<uint8_t>(b)));
    if (id < 0) id = find_piece(std::string(1, static_cast<char>(b)));
    byte_ids_[static_cast<size_t>(b)] = id;
  }
}

void SpmTokenizer::encode_text(std::string_view text, size_t text_offset, std::vector<int32_t>& out) const {
  // Every stretch gets the space prefix: it begins the text or follows a special token, and
  // llama.cpp (is_prev_special) and HF's Prepend normalizer (run per stretch) both prefix those.
  //
  // The escaped text: optional space prefix, then every ' ' written as "▁".
  std::string escaped;
  escaped.reserve(text.size() + 8);
  if (add_space_prefix_) escaped += kSpmSpace;
  const size_t prefix_bytes = escaped.size();
  escaped += replace_all(text, " ", kSpmSpace);

  // Step 2: one symbol per UTF-8 character.
  std::vector<Symbol> symbols;
  symbols.reserve(escaped.size());
  for (size_t offset = 0; offset < escaped.size();) {
    Symbol s;
    s.offset = offset;
    s.size = std::min(utf8_sequence_length(static_cast<uint8_t>(escaped[offset])), escaped.size() - offset);
    offset += s.size;
    const int index = static_cast<int>(symbols.size());
    s.prev = index - 1;
    s.next = offset == escaped.size() ? -1 : index + 1;
    symbols.push_back(s);
  }

  // Step 3: merge by score. A pair is a candidate when its concatenation is any token of the
  // vocabulary (llama.cpp's text_to_token, which includes control tokens).
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const std::string_view view(escaped);
  auto try_add_bigram = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols[static_cast<size_t>(left)];
    const Symbol& r = symbols[static_cast<size_t>(right)];
    const size_t size = l.size + r.size;
    const auto it = piece_index_.find(view.substr(l.offset, size));
    if (it == piece_index_.end()) return;
    queue.push(Bigram{left, right, scores_[static_cast<size_t>(it->second)], size});
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add_bigram(static_cast<int>(i - 1), static_cast<int>(i));

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(bigram.left)];
    Symbol& right = symbols[static_cast<size_t>(bigram.right)];
    if (left.size == 0 || right.size == 0 || left.size + right.size != bigram.size) continue;
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = bigram.left;
    try_add_bigram(left.prev, bigram.left);
    try_add_bigram(bigram.left, left.next);
  }

  // Step 4. llama.cpp resegments a symbol that is not a token through a reverse-merge map, but a
  // merged symbol is always a token (a pair is only queued when its concatenation is one), so only
  // single characters ever get here, and those go to byte fallback directly.
  bool previous_was_unk = false;
  for (int i = symbols.empty() ? -1 : 0; i != -1; i = symbols[static_cast<size_t>(i)].next) {
    const Symbol& s = symbols[static_cast<size_t>(i)];
    const std::string_view piece = view.substr(s.offset, s.size);
    const auto it = piece_index_.find(piece);
    if (it != piece_index_.end()) {
      out.push_back(it->second);
      previous_was_unk = false;
      continue;
    }
    if (!emit_unknown_symbol(piece, previous_was_unk, out)) {
      throw InvalidArgument(
          "text to tokenize: the character at byte offset "
          + std::to_string(text_offset + input_offset(text, s.offset > prefix_bytes ? s.offset - prefix_bytes : 0))
          + " is not in the " + kind_ + " vocabulary, which has neither byte tokens for it nor <unk>");
    }
  }
}

bool SpmTokenizer::emit_unknown_symbol(std::string_view symbol, bool& previous_was_unk,
                                       std::vector<int32_t>& out) const {
  bool all_bytes = true;
  for (const char c : symbol) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)] >= 0;
  if (all_bytes) {
    for (const char c : symbol) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    previous_was_unk = false;
    return true;
  }
  if (unk_id_ < 0) return false;
  // Hugging Face fuses a run of unknown characters into one <unk> (`fuse_unk`).
  if (!previous_was_unk) out.push_back(unk_id_);
  previous_was_unk = true;
  return true;
}

float SpmTokenizer::score(int32_t id) const {
  piece(id);  // range check
  return scores_[static_cast<size_t>(id)];
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids) const {
  return spm_decode(*this, ids, add_space_prefix_);
}

std::string SpmTokenizer::token_text(int32_t id) const { return spm_token_text(*this, id); }

std::string SpmTokenizer::token_bytes(int32_t id) const {
  const int32_t one[1] = {id};
  return spm_decode(*this, one, /*strip_space_prefix=*/false);
}

}  // namespace reslens::tokenizer_detail
