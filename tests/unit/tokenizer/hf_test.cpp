// Hugging Face directories and files: tokenizer.json (SentencePiece-style and byte-level BPE),
// vocab.json + merges.txt, tokenizer.model through libsentencepiece; unsupported and malformed
// files are named in typed errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

#include "common/test_paths.h"
#include "io/gguf.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using nlohmann::json;
using test::expect_ids;
using test::shared_path;

void write_file(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
}

TEST(HfTinyStories, DirectoryMatchesGoldensAndHfReference) {
  const auto tok = load_hf_tokenizer(shared_path("models/TinyStories-656K"));
  EXPECT_EQ(tok->kind(), "hf-bpe-spm");
  EXPECT_EQ(tok->n_vocab(), 2048);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_TRUE(tok->add_bos_default());
  EXPECT_EQ(tok->type(1), TokenType::kControl);
  EXPECT_EQ(tok->type(0), TokenType::kUnknown);  // a special added token, but the model's unk_token
  test::expect_golden_tokenization(*tok, "TinyStories-656K");
  // HF's merge ranks and the GGUF's scores give the same segmentation.
  const auto gguf_tok = test::gguf_tokenizer("models/TinyStories-656K/TinyStories-656K-f32.gguf");
  for (const auto& c : test::read_tokenizer_tests("TinyStories-656K")) {
    expect_ids(*tok, c.text, gguf_tok->encode(c.text, true), tok->encode(c.text, true));
  }
  EXPECT_EQ(tok->token_text(tok->find_piece("ce\xE2\x96\x81")), "ce ");
}

TEST(HfTinyStories, LargeTextSameIdsAsGguf) {
  // Without a pre-tokenizer the merges run over the whole text: 100 KB (its speed is measured by
  // bench/bench_tokenizer), and the merge-rank and score-based algorithms must agree on it token for token.
  const auto tok = load_hf_tokenizer(shared_path("models/TinyStories-656K"));
  const auto gguf_tok = test::gguf_tokenizer("models/TinyStories-656K/TinyStories-656K-f32.gguf");
  const std::string text = test::repeated_prompts("TinyStories-656K", 100 * 1024);
  const std::vector<int32_t> ids = tok->encode(text, false);
  EXPECT_TRUE(ids == gguf_tok->encode(text, false));
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(HfTinyStories, MetaspacePreTokenizerFollowsHf) {
  // The newer HF serialization of Llama-style tokenizers: no normalizer, a Metaspace
  // pre-tokenizer that prepends "▁" to the first word and does not split. Unlike the Prepend
  // normalizer it adds no "▁" to text that already starts with one (a space), as HF does.
  auto j = json::parse(test::read_file(shared_path("models/TinyStories-656K/tokenizer.json")));
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"}, {"split", false}};
  const auto dir = test::scratch_dir("metaspace");
  write_file(dir / "tokenizer.json", j.dump());
  const auto tok = load_hf_tokenizer(dir);
  const auto reference = load_hf_tokenizer(shared_path("models/TinyStories-656K"));
  for (const auto& c : test::read_tokenizer_tests("TinyStories-656K")) {
    auto expected = reference->encode(c.text, true);
    if (!c.text.empty() && c.text[0] == ' ') expected.erase(expected.begin() + 1);  // the doubled "▁"
    expect_ids(*tok, c.text, expected, tok->encode(c.text, true));
  }
  EXPECT_EQ(tok->encode(" Hello world", false), (std::vector<int32_t>{80, 1288, 139, 410, 555}));
  EXPECT_EQ(tok->decode(tok->encode("Hello world", true)), "Hello world");

  // After a special token in the text, prepend_scheme "first" adds no "▁": only the stretch at
  // offset 0 of the text gets one (HF: offsets_original().0 == 0). The legacy Prepend normalizer
  // runs on every stretch, so there it does.
  j["pre_tokenizer"]["prepend_scheme"] = "never";
  const auto never_dir = test::scratch_dir("metaspace-never");
  write_file(never_dir / "tokenizer.json", j.dump());
  const auto never = load_hf_tokenizer(never_dir);
  auto with = [](std::vector<int32_t> a, int32_t id, const std::vector<int32_t>& b) {
    a.push_back(id);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::string bos = tok->piece(1), eos = tok->piece(2);  // <|start_story|>, <|end_story|>
  EXPECT_EQ(tok->encode("Hello" + eos + "Hello", false), with(tok->encode("Hello", false), 2, never->encode("Hello", false)));
  EXPECT_EQ(tok->encode(bos + "Hello", false), with({}, 1, never->encode("Hello", false)));
  EXPECT_NE(never->encode("Hello", false), tok->encode("Hello", false));
  EXPECT_EQ(reference->encode("Hello" + eos + "Hello", false),
            with(reference->encode("Hello", false), 2, reference->encode("Hello", false)));
}

TEST(HfRandomGpt2, VocabMergesDirectoryMatchesGoldens) {
  const auto tok = load_hf_tokenizer(shared_path("models/random-gpt2-hf"));
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  EXPECT_EQ(tok->n_vocab(), 50257);
  EXPECT_FALSE(tok->add_bos_default());
  test::expect_golden_tokenization(*tok, "random-gpt2");
}

// GPT-2's vocab.json + merges.txt written as a byte-level tokenizer.json, as `tokenizers` saves it.
json gpt2_tokenizer_json() {
  json vocab = json::parse(test::read_file(shared_path("models/random-gpt2-hf/vocab.json")));
  json merges = json::array();
  const std::string text = test::read_file(shared_path("models/random-gpt2-hf/merges.txt"));
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  }
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}}},
          {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

TEST(HfTokenizerJson, ByteLevelGpt2MatchesVectors) {
  const auto dir = test::scratch_dir("gpt2");
  write_file(dir / "tokenizer.json", gpt2_tokenizer_json().dump());
  const auto tok = load_hf_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "hf-bpe-byte-level");
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->type(50256), TokenType::kControl);
  EXPECT_FALSE(tok->add_bos_default());
  for (const auto& c : test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf")) {
    const auto ids = tok->encode(c.text, false);
    expect_ids(*tok, c.text, c.ids, ids);
    EXPECT_EQ(tok->decode(ids), c.text);
  }
  for (const auto& c : test::read_tokenizer_tests("random-gpt2")) {
    expect_ids(*tok, c.text, *c.ids_no_bos, tok->encode(c.text, false));
  }
}

// A GGUF vocabulary as tokenizer.json's BPE `vocab` and `added_tokens` (its control tokens).
std::pair<json, json> vocab_and_added_tokens(const gguf::File& file) {
  const auto& tokens = file.find("tokenizer.ggml.tokens")->strings;
  const auto& types = file.find("tokenizer.ggml.token_type")->numbers;
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    if (types[i] == 3) added.push_back({{"id", i}, {"content", tokens[i]}, {"special", true}});
  }
  return {vocab, added};
}

TEST(HfTokenizerJson, Llama3StyleSplitAndTemplateMatchVectors) {
  // Llama 3's tokenizer.json layout, filled from the llama-bpe GGUF's vocabulary: a Split
  // pre-tokenizer with HF's original regex, ByteLevel without regex, ignore_merges, and a template
  // that puts <|begin_of_text|> first.
  const gguf::File file(shared_path("tokenizers/ggml-vocab/ggml-vocab-llama-bpe.gguf"));
  const auto [vocab, added] = vocab_and_added_tokens(file);
  const std::string regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
      R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
  const json j = {
      {"added_tokens", added},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern", {{"Regex", regex}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "Sequence"},
        {"processors",
         json::array(
             {{{"type", "ByteLevel"}},
              {{"type", "TemplateProcessing"},
               {"single", json::array({{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                                       {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
               {"special_tokens",
                {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {128000}}}}}}}})}}},
      {"model",
       {{"type", "BPE"},
        {"ignore_merges", true},
        {"vocab", vocab},
        {"merges", file.find("tokenizer.ggml.merges")->strings}}}};
  const auto dir = test::scratch_dir("llama3");
  write_file(dir / "tokenizer.json", j.dump());
  const auto tok = load_hf_tokenizer(dir);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->add_bos_default());
  for (const auto& c : test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-llama-bpe.gguf")) {
    expect_ids(*tok, c.text, c.ids, tok->encode(c.text, false));
  }
}

// Qwen2's tokenizer.json layout, filled from the qwen2 GGUF's vocabulary: an NFC normalizer (which
// llama.cpp does not apply; its test strings are all NFC already, so the ids must agree), a Split
// pre-tokenizer with Qwen2's regex (single digits), ByteLevel without regex.
json qwen2_tokenizer_json(const std::string& normalizer) {
  const gguf::File file(shared_path("tokenizers/ggml-vocab/ggml-vocab-qwen2.gguf"));
  const auto [vocab, added] = vocab_and_added_tokens(file);
  const std::string regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+)"
      R"(|\s+(?!\S)|\s+)";
  return {{"added_tokens", added},
          {"normalizer", {{"type", normalizer}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             json::array({{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", file.find("tokenizer.ggml.merges")->strings}}}};
}

TEST(HfTokenizerJson, Qwen2NfcNormalizerMatchesVectorsAndComposes) {
  const auto dir = test::scratch_dir("qwen2-nfc");
  write_file(dir / "tokenizer.json", qwen2_tokenizer_json("NFC").dump());
  const auto tok = load_hf_tokenizer(dir);
  for (const auto& c : test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-qwen2.gguf")) {
    expect_ids(*tok, c.text, c.ids, tok->encode(c.text, false));
  }
  // Decomposed input (e + U+0301, A + U+030A, the Angstrom sign U+212B) is composed first, so it
  // gives the ids of the precomposed text; the compatibility ligature U+FB01 is left alone by NFC.
  EXPECT_EQ(tok->encode("cafe\xcc\x81 A\xcc\x8apfel", false), tok->encode("caf\xc3\xa9 \xc3\x85pfel", false));
  EXPECT_EQ(tok->encode("\xe2\x84\xab", false), tok->encode("\xc3\x85", false));
  EXPECT_NE(tok->encode("\xef\xac\x81le", false), tok->encode("file", false));
  EXPECT_EQ(tok->decode(tok->encode("cafe\xcc\x81", false)), "caf\xc3\xa9");
}

TEST(HfTokenizerJson, ChatMarkersAndAddedTokensAreSplitOut) {
  // A Qwen2 chat prompt: its special added tokens become those tokens and the text between them is
  // pre-tokenized stretch by stretch (HF's added-token extraction); asked to read them as plain
  // text, they are characters. A non-special added token is split out either way.
  auto j = qwen2_tokenizer_json("NFC");
  const int32_t tool = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-qwen2.gguf")->n_vocab();  // a new id
  j["added_tokens"].push_back({{"id", tool}, {"content", "<tool>"}, {"special", false}});
  const auto dir = test::scratch_dir("qwen2-chat");
  write_file(dir / "tokenizer.json", j.dump());
  const auto tok = load_hf_tokenizer(dir);
  const int32_t start = tok->find_piece("<|im_start|>"), end = tok->find_piece("<|im_end|>");
  ASSERT_GE(start, 0);
  ASSERT_GE(end, 0);
  EXPECT_EQ(tok->type(start), TokenType::kControl);
  EXPECT_EQ(tok->type(tool), TokenType::kUserDefined);
  const std::string chat = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
  std::vector<int32_t> want = {start};
  for (const auto& part : {tok->encode("user\nWhat is the capital of France?", false), std::vector<int32_t>{end},
                           tok->encode("\n", false), std::vector<int32_t>{start}, tok->encode("assistant\n", false)}) {
    want.insert(want.end(), part.begin(), part.end());
  }
  EXPECT_EQ(tok->encode(chat, false), want);
  const auto plain = tok->encode(chat, false, SpecialText::kPlain);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), start), 0);
  EXPECT_EQ(tok->decode(plain), chat);
  for (const SpecialText mode : {SpecialText::kParse, SpecialText::kPlain}) {
    const auto ids = tok->encode("a<tool>b", false, mode);
    EXPECT_EQ(ids, (std::vector<int32_t>{tok->encode("a", false)[0], tool, tok->encode("b", false)[0]}));
  }
}

TEST(HfTokenizerJson, UnicodeNormalizersFollowTheirForms) {
  // NFKC also folds compatibility characters: the ligature U+FB01 is "fi", the circled one "1".
  const auto nfkc_dir = test::scratch_dir("qwen2-nfkc");
  write_file(nfkc_dir / "tokenizer.json", qwen2_tokenizer_json("NFKC").dump());
  const auto nfkc = load_hf_tokenizer(nfkc_dir);
  EXPECT_EQ(nfkc->encode("\xef\xac\x81le \xe2\x91\xa0", false), nfkc->encode("file 1", false));
  // NFD leaves e + U+0301 decomposed and splits precomposed é, so both spellings agree, and differ
  // from what NFC makes of them.
  const auto nfd_dir = test::scratch_dir("qwen2-nfd");
  write_file(nfd_dir / "tokenizer.json", qwen2_tokenizer_json("NFD").dump());
  const auto nfd = load_hf_tokenizer(nfd_dir);
  EXPECT_EQ(nfd->encode("caf\xc3\xa9", false), nfd->encode("cafe\xcc\x81", false));
  EXPECT_EQ(nfd->decode(nfd->encode("caf\xc3\xa9", false)), "cafe\xcc\x81");
  const auto nfkd_dir = test::scratch_dir("qwen2-nfkd");
  write_file(nfkd_dir / "tokenizer.json", qwen2_tokenizer_json("NFKD").dump());
  EXPECT_EQ(load_hf_tokenizer(nfkd_dir)->decode(load_hf_tokenizer(nfkd_dir)->encode("\xef\xac\x81\xc3\xa9", false)),
            "fie\xcc\x81");
}

TEST(HfSentencePiece, Llama2ModelMatchesLlamaSpmVectors) {
  // Through the directory dispatch: a directory holding only tokenizer.model.
  const auto dir = test::scratch_dir("spm");
  std::filesystem::create_symlink(std::filesystem::absolute(shared_path("tokenizers/llama2/tokenizer.model")),
                                  dir / "tokenizer.model");
  const auto tok = load_hf_tokenizer(dir);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->n_vocab(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 0);
  EXPECT_TRUE(tok->add_bos_default());
  EXPECT_EQ(tok->type(13), TokenType::kByte);  // <0x0A>
  const auto gguf_tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  for (int32_t id = 0; id < tok->n_vocab(); ++id)
    ASSERT_EQ(tok->piece(id), gguf_tok->piece(id)) << "id " << id;
  for (const auto& c : test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf")) {
    const auto ids = tok->encode(c.text, false);
    expect_ids(*tok, c.text, c.ids, ids);
    EXPECT_EQ(tok->encode(c.text, true).front(), 1);
    EXPECT_EQ(tok->decode(ids), c.text) << "text: \"" << test::printable(c.text) << "\"";
  }
  EXPECT_EQ(tok->token_text(tok->encode("Hello", false).back()), " Hello");
}

TEST(HfTokenizerJson, UnsupportedModelTypesNameFileAndType) {
  const auto dir = test::scratch_dir("unsupported");
  for (const std::string type : {"WordPiece", "Unigram", "WordLevel"}) {
    const json j = {{"model", {{"type", type}, {"vocab", {{"a", 0}}}}}};
    write_file(dir / "tokenizer.json", j.dump());
    const std::string msg = test::error_of<UnsupportedError>([&] { load_hf_tokenizer(dir); });
    EXPECT_NE(msg.find((dir / "tokenizer.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(type), std::string::npos) << msg;
  }
  // Components that would change the ids and that we do not reproduce are refused, not ignored.
  auto j = json::parse(test::read_file(shared_path("models/TinyStories-656K/tokenizer.json")));
  j["normalizer"] = {{"type", "Lowercase"}};
  write_file(dir / "tokenizer.json", j.dump());
  EXPECT_NE(test::error_of<UnsupportedError>([&] { load_hf_tokenizer(dir); }).find("normalizer 'Lowercase'"),
            std::string::npos);
  j["normalizer"] = nullptr;
  j["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "<|end_story|>"}, {"type_id", 0}}}});
  write_file(dir / "tokenizer.json", j.dump());
  EXPECT_NE(test::error_of<UnsupportedError>([&] { load_hf_tokenizer(dir); }).find("after the text"),
            std::string::npos);
}

TEST(HfTokenizerJson, MalformedFilesAreFormatErrorsNamingTheFile) {
  const auto dir = test::scratch_dir("malformed");
  const auto path = (dir / "tokenizer.json").string();
  const std::vector<std::string> bad = {
      "this is not JSON",
      "[1, 2, 3]",
      R"({"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split",
          "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 99999999}, "merges": []}})",
  };
  for (const auto& content : bad) {
    write_file(path, content);
    const std::string msg = test::error_of<FormatError>([&] { load_hf_tokenizer(dir); });
    EXPECT_NE(msg.find(path), std::string::npos) << "content: " << content << "\nmessage: " << msg;
  }
  write_file(path, R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  write_file(dir / "tokenizer_config.json", "{not json");
  EXPECT_NE(test::error_of<FormatError>([&] { load_hf_tokenizer(dir); }).find("tokenizer_config.json"),
            std::string::npos);
  // add_eos_token: true changes every encoded prompt; refused by name, not dropped. false loads.
  write_file(dir / "tokenizer_config.json", R"({"add_eos_token": true})");
  const std::string eos = test::error_of<UnsupportedError>([&] { load_hf_tokenizer(dir); });
  EXPECT_NE(eos.find("tokenizer_config.json"), std::string::npos) << eos;
  EXPECT_NE(eos.find("add_eos_token"), std::string::npos) << eos;
  write_file(dir / "tokenizer_config.json", R"({"add_eos_token": false})");
  EXPECT_NO_THROW(load_hf_tokenizer(dir));
}

TEST(HfTokenizerJson, CharactersNoTokenCanSpellAreRefusedNotDropped) {
  // Hugging Face (and llama.cpp) drop a character that has no token when the BPE model has neither
  // byte fallback nor an unk_token; reslens refuses the text instead, naming the character and the
  // file: a dropped character would explain the prediction for another text.
  const auto dir = test::scratch_dir("unspellable");
  const auto path = (dir / "tokenizer.json").string();
  auto refused = [&](const std::string& text) {
    const auto tok = load_hf_tokenizer(dir);
    return test::error_of<InvalidArgument>([&] { tok->encode(text, false); });
  };
  // A SentencePiece-style vocabulary (no pre-tokenizer): words are the text itself.
  write_file(path, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
  EXPECT_EQ(load_hf_tokenizer(dir)->encode("abab", false), (std::vector<int32_t>{2, 2}));
  std::string msg = refused("ab\xC3\xA9" "ab");
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("U+00E9 '\xC3\xA9'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no unk_token"), std::string::npos) << msg;
  // A control character is named by its code point and shown escaped, never as the raw byte.
  msg = refused(std::string("a\x1b[31mb"));
  EXPECT_NE(msg.find("U+001B '\\x1b'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
  // Byte-level words: the byte whose character is missing, and the text's character holding it.
  write_file(path, R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "\u0120": 2}, "merges": []},
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}})");
  EXPECT_EQ(load_hf_tokenizer(dir)->encode("a b", false), (std::vector<int32_t>{0, 2, 1}));
  msg = refused("a \xE2\x98\x83");  // snowman, E2 98 83
  EXPECT_NE(msg.find("U+2603 '\xE2\x98\x83' (its byte 0xE2)"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  // With an unk_token, or byte-fallback tokens for every byte, the same text encodes.
  write_file(path, R"({"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"<unk>": 0, "a": 1}, "merges": []}})");
  EXPECT_EQ(load_hf_tokenizer(dir)->encode("a\xC3\xA9", false), (std::vector<int32_t>{1, 0}));
  json fallback = {{"model", {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", {{"a", 0}}}, {"merges", json::array()}}}};
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", b);
    fallback["model"]["vocab"][piece] = b + 1;
  }
  write_file(path, fallback.dump());
  EXPECT_EQ(load_hf_tokenizer(dir)->encode("a\xC3\xA9", false), (std::vector<int32_t>{0, 0xC3 + 1, 0xA9 + 1}));
  // The real tokenizer.json of TinyStories without its byte fallback and unk_token: refused too.
  auto j = json::parse(test::read_file(shared_path("models/TinyStories-656K/tokenizer.json")));
  j["model"]["byte_fallback"] = false;
  j["model"]["unk_token"] = nullptr;
  write_file(path, j.dump());
  EXPECT_NO_THROW(load_hf_tokenizer(dir)->encode("Once upon a time", true));
  msg = refused("Once upon a \xE2\x98\x83");
  EXPECT_NE(msg.find("U+2603"), std::string::npos) << msg;
}

TEST(HfDirectory, MissingFilesAreIoErrors) {
  EXPECT_THROW(load_hf_tokenizer(test::scratch_dir("empty")), IoError);
  EXPECT_THROW(load_hf_tokenizer("/nonexistent/reslens/model"), IoError);
  const auto dir = test::scratch_dir("half");
  write_file(dir / "vocab.json", "{}");
  EXPECT_NE(test::error_of<IoError>([&] { load_hf_tokenizer(dir); }).find("merges.txt"), std::string::npos);
  EXPECT_THROW(load_sentencepiece_model(dir / "tokenizer.model"), IoError);
  write_file(dir / "tokenizer.model", "not a protobuf");
  EXPECT_NE(test::error_of<FormatError>([&] {
              load_sentencepiece_model(dir / "tokenizer.model");
            }).find("tokenizer.model"),
            std::string::npos);
}

}  // namespace
}  // namespace reslens
