#include "tokenizer/bpe.h"

#include <algorithm>
#include <cstdio>

#include "core/check.h"
#include "core/utf8.h"
#include "reslens/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pieces.h"
#include "tokenizer/spm_text.h"

namespace reslens::tokenizer_detail {

namespace {

// Hugging Face caches words shorter than 256 bytes, up to a fixed number of entries.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 1 << 16;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Splits `word` before every occurrence of `marker` (HF Metaspace split, "MergedWithNext"):
// "▁Hello▁world" -> "▁Hello", "▁world".
void split_before(std::string_view word, std::string_view marker, std::vector<std::string>& out) {
  if (marker.empty()) {
    out.emplace_back(word);
    return;
  }
  size_t start = 0;
  for (size_t pos = word.find(marker, 1); pos != std::string_view::npos; pos = word.find(marker, pos + 1)) {
    out.emplace_back(word.substr(start, pos - start));
    start = pos;
  }
  if (start < word.size()) out.emplace_back(word.substr(start));
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeVocab vocab)
    : normalizer_(std::move(vocab.normalizer)),
      pre_tokenizer_(std::move(vocab.pre_tokenizer)),
      byte_fallback_(vocab.byte_fallback),
      fuse_unk_(vocab.fuse_unk),
      ignore_merges_(vocab.ignore_merges),
      whole_newline_runs_(vocab.whole_newline_runs),
      decoding_(vocab.decoding),
      strip_space_prefix_(vocab.strip_space_prefix),
      source_(std::move(vocab.source)) {
  for (const PreTokenizerStep& step : pre_tokenizer_) {
    byte_level_words_ = byte_level_words_ || step.kind == PreTokenizerStep::Kind::kByteLevel;
  }
  RESLENS_CHECK(vocab.pieces.size() == vocab.types.size(), "BpeVocab arrays differ in length");
  pieces_ = std::move(vocab.pieces);
  types_ = std::move(vocab.types);
  bos_id_ = vocab.bos_id;
  eos_id_ = vocab.eos_id;
  unk_id_ = vocab.unk_id;
  add_bos_default_ = vocab.add_bos;
  kind_ = std::move(vocab.kind);
  index_pieces();
  for (size_t b = 0; b < 256; ++b) byte_ids_[b] = find_piece(byte_piece(static_cast<uint8_t>(b)));

  std::string joined;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const auto& [left, right] = vocab.merges[rank];
    joined.assign(left).append(right);
    const int32_t l = find_piece(left);
    const int32_t r = find_piece(right);
    const int32_t result = find_piece(joined);
    if (l < 0 || r < 0 || result < 0) continue;
    merges_.add(l, r, result, static_cast<int32_t>(rank));
  }
}

std::string BpeTokenizer::normalize(std::string_view text) const {
  std::string s(text);
  for (const NormalizerStep& step : normalizer_) {
    switch (step.kind) {
      case NormalizerStep::Kind::kPrepend:
        if (!s.empty()) s = step.to + s;
        break;
      case NormalizerStep::Kind::kReplace:
        if (!step.from.empty()) s = replace_all(s, step.from, step.to);
        break;
      case NormalizerStep::Kind::kUnicode:
        s = unicode_normalize(s, step.form);
        break;
    }
  }
  return s;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view text, bool at_start) const {
  require_valid_utf8(text, "text to tokenize");
  std::vector<std::string> words;
  if (text.empty()) return words;
  words.push_back(normalize(text));
  std::vector<std::string> next;
  std::vector<std::string_view> parts;
  for (const PreTokenizerStep& step : pre_tokenizer_) {
    next.clear();
    for (size_t w = 0; w < words.size(); ++w) {
      std::string& word = words[w];
      switch (step.kind) {
        case PreTokenizerStep::Kind::kSplit:
          parts.clear();
          if (step.merged_with_previous) {
            step.regex->split_merged_with_previous(word, parts);
          } else {
            step.regex->split(word, parts);
          }
          for (const auto part : parts) next.emplace_back(part);
          break;
        case PreTokenizerStep::Kind::kByteLevel: {
          if (step.add_prefix_space && !starts_with(word, " ")) word.insert(word.begin(), ' ');
          parts.clear();
          if (step.regex) {
            step.regex->split(word, parts);
          } else {
            parts.emplace_back(word);
          }
          for (const auto part : parts) {
            std::string encoded;
            append_byte_level(encoded, part);
            next.push_back(std::move(encoded));
          }
          break;
        }
        case PreTokenizerStep::Kind::kMetaspace: {
          std::string replaced = replace_all(word, " ", step.replacement);
          const bool prepend = step.prepend == PreTokenizerStep::Prepend::kAlways
                               || (step.prepend == PreTokenizerStep::Prepend::kFirst && w == 0 && at_start);
          if (prepend && !starts_with(replaced, step.replacement)) replaced = step.replacement + replaced;
          if (step.split) {
            split_before(replaced, step.replacement, next);
          } else {
            next.push_back(std::move(replaced));
          }
          break;
        }
      }
    }
    words.swap(next);
  }
  return words;
}

void BpeTokenizer::encode_text(std::string_view text, size_t offset, std::vector<int32_t>& out) const {
  // HF normalizes and pre-tokenizes each stretch between added tokens on its own.
  for (const std::string& word : pre_tokenize(text, offset == 0)) encode_word(word, out);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_ || (whole_newline_runs_ && word.find_first_not_of('\n') == std::string_view::npos)) {
    // Llama 3 (HF `ignore_merges`): a word that is a token as a whole is that token, even when
    // the merges would split it differently. Gemma 4 (llama.cpp): the same for runs of newlines.
    const auto it = piece_index_.find(word);
    if (it != piece_index_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kMaxCacheEntries) cache_.emplace(std::string(word), std::move(ids));
  }
}

void BpeTokenizer::merge_word(std::string_view word, std::vector<int32_t>& symbols) const {
  // Initial symbols: one per character (HF `BPE::merge_word`).
  bool pending_unk = false;
  auto flush_unk = [&] {
    if (pending_unk) symbols.push_back(unk_id_);
    pending_unk = false;
  };
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min(utf8_sequence_length(static_cast<uint8_t>(word[i])), word.size() - i);
    const std::string_view ch = word.substr(i, len);
    i += len;
    if (const auto it = piece_index_.find(ch); it != piece_index_.end()) {
      flush_unk();
      symbols.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (const char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        // HF appends these before a still-pending <unk>; we keep text order, which only differs
        // for a vocabulary with some but not all byte tokens.
        flush_unk();
        for (const char c : ch) symbols.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_ >= 0) {
      if (!(pending_unk && fuse_unk_)) flush_unk();
      pending_unk = true;
      continue;
    }
    // No <unk> either: each byte as a one-byte token, as llama.cpp tries, when all of them are
    // tokens. Otherwise llama.cpp and Hugging Face drop the character, and what would be explained
    // is another text than the one given: refused instead. (Every byte-level vocabulary we know
    // covers all 256 bytes, so this is a vocabulary without <unk> that lacks a character.)
    flush_unk();
    for (const char c : ch) {
      const auto it = piece_index_.find(std::string_view(&c, 1));
      if (it == piece_index_.end()) refuse_character(word, i - len);
      symbols.push_back(it->second);
    }
  }
  flush_unk();
  merges_.apply(symbols);
}

void BpeTokenizer::refuse_character(std::string_view word, size_t at) const {
  // The character as the user wrote it: a byte-level word spells each byte of the text as one
  // character of GPT-2's alphabet, so the word is decoded and the text's character that holds the
  // missing byte is named (with that byte); other words hold the (normalized) text itself.
  std::string text;
  size_t pos = at;
  std::string byte_note;
  if (byte_level_words_) {
    size_t n_chars = 0;
    for (size_t k = 0; k < at; k += std::max<size_t>(1, utf8_sequence_length(static_cast<uint8_t>(word[k])))) ++n_chars;
    append_byte_level_decoded(text, word);
    pos = std::min(n_chars, text.size() - 1);
    char buf[32];
    std::snprintf(buf, sizeof buf, " (its byte 0x%02X)", static_cast<unsigned>(static_cast<uint8_t>(text[pos])));
    byte_note = buf;
    while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;  // to the character's first byte
  } else {
    text.assign(word);
  }
  const size_t len = std::min(utf8_sequence_length(static_cast<uint8_t>(text[pos])), text.size() - pos);
  const std::string ch = text.substr(pos, len);
  uint32_t cp = len == 1 ? static_cast<uint8_t>(ch[0])
              : len == 2 ? (static_cast<uint8_t>(ch[0]) & 0x1Fu)
              : len == 3 ? (static_cast<uint8_t>(ch[0]) & 0x0Fu)
                         : (static_cast<uint8_t>(ch[0]) & 0x07u);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(ch[k]) & 0x3Fu);
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
  throw InvalidArgument((source_.empty() ? std::string("the ") + kind_ + " tokenizer" : source_) + ": cannot encode " +
                        code + " '" + ch + "'" + byte_note +
                        ": the vocabulary has no token for it, no byte-fallback tokens and no unk_token (refused "
                        "rather than dropped, which would explain a different text)");
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  if (decoding_ == BpeDecoding::kSentencePiece) return spm_decode(*this, ids, strip_space_prefix_);
  return byte_level_decode(*this, ids);
}

std::string BpeTokenizer::token_bytes(int32_t id) const {
  const int32_t one[1] = {id};
  if (decoding_ == BpeDecoding::kSentencePiece) return spm_decode(*this, one, /*strip_space_prefix=*/false);
  return byte_level_decode(*this, one);
}

std::string BpeTokenizer::token_text(int32_t id) const {
  if (decoding_ == BpeDecoding::kSentencePiece) return spm_token_text(*this, id);
  return byte_level_token_text(*this, id);
}

}  // namespace reslens::tokenizer_detail
