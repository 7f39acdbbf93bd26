// The reslens command line, end to end: outputs agree with the library and the goldens, and every
// kind of bad input gives one line on stderr naming the problem and the right exit code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/compare.h"
#include "common/gguf_builder.h"
#include "common/test_paths.h"
#include "common/tiny_models.h"
#include "io/npy.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

CliResult cli(const std::vector<std::string>& args) {
  static int counter = 0;
  const auto dir = std::filesystem::temp_directory_path() / ("reslens-cli-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto out = dir / ("out" + std::to_string(counter));
  const auto err = dir / ("err" + std::to_string(counter++));
  std::string cmd = quote(RESLENS_CLI_PATH);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(out.string()) + " 2>" + quote(err.string());
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::read_file(out);
  r.err = test::read_file(err);
  // Each test runs in its own process (gtest_discover_tests), so the folder is this test's alone:
  // leave nothing behind in /tmp (hundreds of folders accumulated over runs).
  std::error_code ec;
  std::filesystem::remove(out, ec);
  std::filesystem::remove(err, ec);
  std::filesystem::remove(dir, ec);  // only when empty
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

std::string shared(const std::string& rel) { return test::shared_path(rel).string(); }

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(cli({}).code, 2);
  const auto r = cli({"predict", shared("models/stories260K/stories260K.gguf"), "hi", "--no-such-flag"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
  EXPECT_EQ(cli({"bogus-command"}).code, 2);
  EXPECT_EQ(cli({"--help"}).code, 0);
}

TEST(Cli, InspectDescribesEveryFormat) {
  for (const char* m : {"models/stories260K/stories260K.gguf", "models/stories260K/stories260K.bin",
                        "models/TinyStories-656K/TinyStories-656K-f32.gguf", "models/TinyStories-656K",
                        "models/random-gpt2/random-gpt2-test.gguf", "models/random-gpt2-hf"}) {
    const auto r = cli({"inspect", shared(m), "--json"});
    ASSERT_EQ(r.code, 0) << m << ": " << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["n_layers"].get<int>(), 0);
    EXPECT_FALSE(j["tensors"].empty());
    EXPECT_EQ(cli({"inspect", shared(m)}).code, 0);
  }
}

TEST(Cli, TokenizeMatchesTheGoldens) {
  const auto g = nlohmann::json::parse(test::read_file(test::shared_path("goldens/stories260K/goldens.json")));
  for (const auto& p : g["prompts"]) {
    const auto r = cli({"tokenize", shared("models/stories260K/stories260K.gguf"), p["text"].get<std::string>(), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["ids"], p["token_ids"]);
    EXPECT_EQ(j["pieces"], p["token_pieces"]);
  }
  const auto nobos = cli({"tokenize", shared("models/stories260K/stories260K.gguf"), "Once upon", "--bos", "no", "--json"});
  EXPECT_EQ(nlohmann::json::parse(nobos.out)["ids"][0], 403);
}

TEST(Cli, SpecialTokensInTheTextAreParsedUnlessAskedNot) {
  // "</s>" in the prompt is the EOS token (2), and the text after it gets its own space prefix;
  // --no-parse-special reads it as characters. The same option reaches every command's prompt.
  // (BOS comes first in every case: the model adds it.)
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto parsed = cli({"tokenize", m, "Lily</s>Tom", "--json"});
  ASSERT_EQ(parsed.code, 0) << parsed.err;
  const auto want_parts = nlohmann::json::parse(cli({"tokenize", m, "Lily", "--json"}).out)["ids"];
  const auto ids = nlohmann::json::parse(parsed.out)["ids"];
  ASSERT_GT(ids.size(), want_parts.size());
  EXPECT_EQ(ids[want_parts.size()], 2);
  const auto plain = nlohmann::json::parse(cli({"tokenize", m, "Lily</s>Tom", "--no-parse-special", "--json"}).out)["ids"];
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_GT(plain.size(), ids.size());
  for (const bool as_text : {false, true}) {
    std::vector<std::string> args = {"predict", m, "Lily</s>Tom", "--json"};
    if (as_text) args.push_back("--no-parse-special");
    const auto r = cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto tokens = nlohmann::json::parse(r.out)["tokens"];
    ASSERT_EQ(tokens.size(), (as_text ? plain : ids).size());
    EXPECT_EQ(tokens[want_parts.size()]["text"] == "</s>", !as_text);
  }
}

TEST(Cli, ChatLaysTheTextOutWithTheModelsTemplate) {
  // A Hugging Face directory whose tokenizer_config.json carries a ChatML template: --chat gives the
  // ids of the laid-out text, --chat-template and --system choose and add; no template, or --chat
  // with --no-parse-special, is a usage error.
  const auto src = test::shared_path("models/TinyStories-656K");
  const auto dir = test::scratch_dir("chat-model");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json"}) std::filesystem::copy_file(src / f, dir / f);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"add_bos_token": false, "chat_template": "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n'}}{% endfor %}"})";
  auto ids = [](const CliResult& r) {
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["ids"];
  };
  const std::string m = dir.string();
  EXPECT_EQ(ids(cli({"tokenize", m, "Hi", "--chat", "--json"})),
            ids(cli({"tokenize", m, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "--json"})));
  EXPECT_EQ(ids(cli({"tokenize", m, "Hi", "--chat-template", "llama3", "--system", "Be brief", "--json"})),
            ids(cli({"tokenize", m,
                     "<|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|><|start_header_id|>user"
                     "<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                     "--json"})));
  EXPECT_EQ(cli({"predict", m, "Hi", "--chat", "--json"}).code, 0);
  // inspect names the layout --chat would use, or null without a template.
  EXPECT_EQ(nlohmann::json::parse(cli({"inspect", m, "--json"}).out)["tokenizer"]["chat_template"], "chatml");
  EXPECT_TRUE(nlohmann::json::parse(cli({"inspect", shared("models/TinyStories-656K"), "--json"}).out)["tokenizer"]["chat_template"].is_null());
  auto r = cli({"tokenize", shared("models/TinyStories-656K"), "Hi", "--chat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no chat template"), std::string::npos) << r.err;
  r = cli({"tokenize", m, "Hi", "--chat", "--no-parse-special"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--no-parse-special"), std::string::npos) << r.err;
  r = cli({"predict", m, "--ids", "1,2", "--chat"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--ids"), std::string::npos) << r.err;
  r = cli({"tokenize", m, "Hi", "--chat-template", "chatgpt"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("chatml"), std::string::npos) << r.err;
}

TEST(Cli, PredictGivesTheGoldenTopTokens) {
  const auto g = nlohmann::json::parse(test::read_file(test::shared_path("goldens/TinyStories-656K/goldens.json")));
  const auto& p = g["prompts"][0];
  const auto r = cli({"predict", shared("models/TinyStories-656K/TinyStories-656K-f32.gguf"), p["text"].get<std::string>(),
                      "--json", "--logits", "-k", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["top"].size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["top"][i]["id"], p["last_logits"]["top10"][i]["id"]);
    EXPECT_NEAR(j["top"][i]["logit"].get<double>(), p["last_logits"]["top10"][i]["logit"].get<double>(), 3e-5);
  }
  EXPECT_EQ(j["logits"].size(), 2048u);
  EXPECT_EQ(j["tokens"].size(), p["token_ids"].size());
  // --ids gives the same answer as the text.
  std::string ids;
  for (const auto& id : p["token_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
  const auto r2 = cli({"predict", shared("models/TinyStories-656K/TinyStories-656K-f32.gguf"), "--ids", ids, "--json"});
  EXPECT_EQ(nlohmann::json::parse(r2.out)["top"][0]["id"], j["top"][0]["id"]);
}

TEST(Cli, GenerateReproducesLlamaCppGreedyText) {
  for (const char* m : {"stories260K", "TinyStories-656K"}) {
    const auto g = nlohmann::json::parse(test::read_file(test::shared_path(std::string("goldens/") + m + "/goldens.json")));
    const std::string model = shared(g["gguf"].get<std::string>());
    for (const auto& p : g["prompts"]) {
      const auto r = cli({"generate", model, p["text"].get<std::string>(), "-n", "32", "--json"});
      ASSERT_EQ(r.code, 0) << r.err;
      const auto j = nlohmann::json::parse(r.out);
      EXPECT_EQ(j["ids"], p["greedy"]["token_ids"]) << m << " " << p["id"];
      EXPECT_EQ(j["text"], p["greedy"]["text"]) << m << " " << p["id"];
    }
  }
  const auto plain = cli({"generate", shared("models/stories260K/stories260K.gguf"), "Once upon a time", "-n", "8"});
  EXPECT_EQ(plain.code, 0);
  EXPECT_EQ(plain.out.rfind("Once upon a time, there was", 0), 0u) << plain.out;
  const auto sampled = cli({"generate", shared("models/stories260K/stories260K.gguf"), "Once", "-n", "8", "--temp", "0.8",
                            "--seed", "3"});
  EXPECT_EQ(sampled.out, cli({"generate", shared("models/stories260K/stories260K.gguf"), "Once", "-n", "8", "--temp",
                              "0.8", "--seed", "3"}).out);
}

TEST(Cli, TraceWritesEveryHookAsNpy) {
  const auto dir = test::scratch_dir("trace");
  const std::string model = shared("models/stories260K/stories260K.gguf");
  const auto r = cli({"trace", model, "Once upon a time", "--out", dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto index = nlohmann::json::parse(test::read_file(dir / "index.json"));
  EXPECT_EQ(index["tokens"], nlohmann::json({1, 403, 407, 261, 378}));
  const auto m = Model::load(model);
  RunOptions o;
  o.capture = HookFilter::all();
  o.all_logits = true;
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378};
  const RunResult ref = run(*m, ids, o);
  EXPECT_EQ(index["hooks"].size(), ref.cache.size() + 1);  // + logits
  for (const char* name : {"blocks.0.hook_resid_pre", "blocks.4.attn.hook_pattern", "blocks.2.mlp.hook_post",
                           "ln_final.hook_scale", "blocks.1.attn.hook_z"}) {
    const NpyArray a = read_npy(dir / (std::string(name) + ".npy"));
    const Tensor& t = ref.cache.at(name);
    EXPECT_EQ(a.shape, t.shape()) << name;
    EXPECT_TRUE(test::all_close(t.values(), a.data, 0.0, name));
  }
  const NpyArray logits = read_npy(dir / "logits.npy");
  EXPECT_EQ(logits.shape, (std::vector<int64_t>{5, 512}));
  // A hook filter records only what it names.
  const auto dir2 = test::scratch_dir("trace2");
  ASSERT_EQ(cli({"trace", model, "Once", "--out", dir2.string(), "--hooks", "blocks.*.hook_resid_post"}).code, 0);
  EXPECT_EQ(nlohmann::json::parse(test::read_file(dir2 / "index.json"))["hooks"].size(), 6u);  // 5 layers + logits
  const auto bad = cli({"trace", model, "Once", "--out", dir2.string(), "--hooks", "blocks.0.hook_resid_pree"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("did you mean 'blocks.0.hook_resid_pre'"), std::string::npos) << bad.err;
}

// Every row's share of the FMA peak is its GFLOP/s over the peak printed in the same run (the peak's
// own FLOP count and its bound on the GEMM are checked in tests/unit/ops/fma_peak_test.cpp); the peak
// ran on the GEMM's instruction set; sgemm says which OpenBLAS core ran it.
TEST(Cli, BenchReportsEveryLengthAgainstTheFmaPeak) {
  const auto r = cli({"bench", shared("models/stories260K/stories260K.gguf"), "--tokens", "4,8", "-r", "1", "--json",
                      "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["results"].size(), 4u);
  EXPECT_GT(j["sgemm_gflops"].get<double>(), 0.0);
  EXPECT_FALSE(j["sgemm_core"].get<std::string>().empty());
  const double peak = j["fma_peak_gflops"].get<double>();
  EXPECT_GT(peak, 0.0);
  // Measured before and after the runs; the larger is the peak.
  EXPECT_EQ(peak, std::max(j["fma_peak_before_gflops"].get<double>(), j["fma_peak_after_gflops"].get<double>()));
  EXPECT_EQ(j["fma_peak_isa"], j["kernels"]["gemm"]);
  for (const auto& x : j["results"]) {
    EXPECT_GT(x["tokens_per_s"].get<double>(), 0.0);
    const double gflops = x["gflops"].get<double>();
    EXPECT_NEAR(x["fraction_of_fma_peak"].get<double>(), gflops / peak, 1e-12 * gflops / peak) << x.dump();
  }
  // The text form prints the peak and each row's percentage of it.
  const auto t = cli({"bench", shared("models/stories260K/stories260K.gguf"), "--tokens", "4", "-r", "1", "--threads", "1"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("float32 FMA peak ("), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("% peak"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("sgemm (OpenBLAS, core "), std::string::npos) << t.out;
}

TEST(Cli, BenchExplainReportsEveryPhase) {
  // A 50257-token vocabulary: the bounded method, with its bounds and tails phases.
  const auto r = cli({"bench", shared("models/random-gpt2/random-gpt2-test.gguf"), "--tokens", "4", "-r", "1",
                      "--explain", "--full-max-tokens", "0", "--json", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto e = nlohmann::json::parse(r.out)["explain"].at(0);
  const auto& phases = e["phases_ms"];
  double sum = 0;
  for (const char* name : {"forward", "points", "bounds", "tails", "attention", "ffn", "checks", "queries"}) {
    ASSERT_TRUE(phases.contains(name)) << name << " missing from " << phases.dump();
    EXPECT_GE(phases[name].get<double>(), 0.0) << name;
    sum += phases[name].get<double>();
  }
  EXPECT_EQ(phases.size(), 8u) << phases.dump();
  // The phases are the explain's parts: with one repetition, their sum is its time.
  EXPECT_NEAR(sum, e["explain_ms"].get<double>(), 0.05 * e["explain_ms"].get<double>() + 1.0);
  // --no-sketch: what the sketch certified (on a CPU with AVX2 at least) is projected exactly.
  const auto off = cli({"bench", shared("models/random-gpt2/random-gpt2-test.gguf"), "--tokens", "4", "-r", "1",
                        "--explain", "--no-sketch", "--full-max-tokens", "0", "--json", "--threads", "1"});
  ASSERT_EQ(off.code, 0) << off.err;
  const auto o = nlohmann::json::parse(off.out);
  const int64_t full = e["vectors_full"].get<int64_t>(), full_off = o["explain"].at(0)["vectors_full"].get<int64_t>();
  if (o["kernels"]["int8"] != "portable") {
    EXPECT_GT(full_off, full);
  } else {
    EXPECT_EQ(full_off, full);
  }
}

// Bad input: (arguments, exit code, fragments the single stderr line must contain).
struct BadCase {
  std::vector<std::string> args;
  int code;
  std::vector<std::string> fragments;
};

// Output that cannot be written is a failure (exit 3, one line), never exit 0 with a truncated
// document; files are written whole or not at all.
TEST(Cli, WriteFailuresAreErrors) {
  const std::string gguf = shared("models/stories260K/stories260K.gguf");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"tokenize", gguf, "Once upon a time", "--json"},
        std::vector<std::string>{"inspect", gguf}, std::vector<std::string>{"predict", gguf, "Once upon", "--json"}}) {
    std::string cmd = quote(RESLENS_CLI_PATH);
    for (const auto& a : args) cmd += " " + quote(a);
    const int status = std::system((cmd + " >/dev/full 2>/dev/null").c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << cmd;
  }
  const auto dir = test::scratch_dir("unwritable");
  const auto r = cli({"explain", gguf, "Once upon a time", "--out", (dir / "no" / "such" / "dir").string(),
                      "--html", (dir / "missing-dir" / "r.html").string()});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "missing-dir" / "r.html"));
}

TEST(Cli, BadInputGivesOneClearLine) {
  const auto dir = test::scratch_dir("bad");
  const std::string gguf = shared("models/stories260K/stories260K.gguf");
  auto bytes = test::tiny_llama_gguf({}).bytes();
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + 300);
  test::write_file(dir / "cut.gguf", cut);
  test::TinyLlamaSpec bert;
  bert.architecture = "bert";
  test::tiny_llama_gguf(bert).write(dir / "bert.gguf");
  test::TinyLlamaSpec nan;
  nan.nan_tensor = "blk.0.ffn_up.weight";
  test::tiny_llama_gguf(nan).write(dir / "nan.gguf");
  std::filesystem::copy_file(test::shared_path("models/stories260K/stories260K.bin"), dir / "lonely.bin");
  std::filesystem::create_directories(dir / "empty");
  const std::vector<BadCase> cases = {
      {{"predict", (dir / "missing.gguf").string(), "x"}, 3, {"missing.gguf", "no such file"}},
      {{"predict", (dir / "empty").string(), "x"}, 3, {"empty", "no model found"}},
      {{"inspect", (dir / "cut.gguf").string()}, 3, {"cut.gguf", "truncated"}},
      {{"inspect", (dir / "bert.gguf").string()}, 4, {"bert.gguf", "architecture 'bert'"}},
      // a NaN weight: exit 3 naming it, on every command that runs the model
      {{"predict", (dir / "nan.gguf").string(), "x", "--json"}, 3, {"nan.gguf", "blocks.0.mlp.W_in", "NaN or Inf"}},
      {{"explain", (dir / "nan.gguf").string(), "x"}, 3, {"nan.gguf", "blocks.0.mlp.W_in"}},
      {{"generate", (dir / "nan.gguf").string(), "x", "-n", "2"}, 3, {"nan.gguf", "blocks.0.mlp.W_in"}},
      {{"predict", (dir / "lonely.bin").string(), "x"}, 3, {"lonely.bin", "tokenizer", "--tokenizer"}},
      {{"predict", gguf, "--ids", "1,99999"}, 2, {"99999", "outside the vocabulary"}},
      {{"predict", gguf, "--ids", "1,x"}, 2, {"not a valid token id"}},
      {{"predict", gguf, "", "--bos", "no"}, 2, {"empty"}},
      {{"predict", gguf, std::string("caf\xff")}, 2, {"not valid UTF-8"}},
      {{"predict", shared("models/random-gpt2/random-gpt2-test.gguf"), std::string(600, 'a') + std::string(600, ' ') +
                                                                            std::string(600, 'b')},
       2, {"context window is 128"}},
      {{"tokenize", gguf, "x", "--bos", "maybe"}, 2, {"--bos"}},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[0] << " " << c.args[1] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in " << r.err;
  }
}

}  // namespace
}  // namespace reslens

namespace reslens {
namespace {

TEST(CliExplain, JsonHasTheDocumentedKeysAndArraysGoToNpy) {
  const auto dir = test::scratch_dir("explain");
  const auto r = cli({"explain", shared("models/stories260K/stories260K.gguf"), "Once upon a time", "--json", "--top", "5",
                      "--out", dir.string(), "--foil", " there"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"target", "layers", "heads", "ffn_neurons", "attn_neurons", "query_ffn_neurons", "lens", "contrast"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  for (const char* k : {"id", "text", "log_prob", "bs_log_prob"}) EXPECT_TRUE(j["target"].contains(k)) << k;
  EXPECT_EQ(j["target"]["id"], 432);
  EXPECT_EQ(j["layers"].size(), 5u);
  EXPECT_EQ(j["heads"].size(), 5u);
  EXPECT_EQ(j["heads"][0].size(), 8u);
  ASSERT_EQ(j["ffn_neurons"].size(), 5u);
  EXPECT_EQ(j["ffn_neurons"][0]["label"], "L1N101");
  EXPECT_GE(j["ffn_neurons"][0]["score"].get<double>(), j["ffn_neurons"][1]["score"].get<double>());
  for (const char* k : {"layer", "neuron", "score", "coef"}) EXPECT_TRUE(j["ffn_neurons"][0].contains(k)) << k;
  for (const char* k : {"layer", "head", "dim", "pos", "score"}) EXPECT_TRUE(j["attn_neurons"][0].contains(k)) << k;
  const NpyArray ffn = read_npy(dir / "ffn_neuron_scores.npy");
  EXPECT_EQ(ffn.shape, (std::vector<int64_t>{5, 172}));
  EXPECT_NEAR(ffn.data[static_cast<size_t>(1 * 172 + 101)], 1.0408607952, 1e-5);
  EXPECT_EQ(read_npy(dir / "attn_neuron_scores.npy").shape, (std::vector<int64_t>{5, 8, 8, 5}));
  EXPECT_TRUE(std::filesystem::exists(dir / "explanation.json"));
  // The terminal report names the top neuron and the layers.
  const auto text = cli({"explain", shared("models/stories260K/stories260K.gguf"), "Once upon a time"});
  EXPECT_EQ(text.code, 0);
  EXPECT_NE(text.out.find("L1N101"), std::string::npos);
  EXPECT_NE(text.out.find("Logit lens"), std::string::npos);
}

TEST(CliExplain, LensAndAblate) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto lens = cli({"lens", m, "Once upon a time", "--json"});
  ASSERT_EQ(lens.code, 0) << lens.err;
  EXPECT_EQ(nlohmann::json::parse(lens.out)["points"].size(), 11u);
  const auto ab = cli({"ablate", m, "Once upon a time", "--ffn", "1:101,2:122,3:136", "--json"});
  ASSERT_EQ(ab.code, 0) << ab.err;
  const auto j = nlohmann::json::parse(ab.out);
  EXPECT_LT(j["after"]["prob"].get<double>(), j["before"]["prob"].get<double>());
  EXPECT_EQ(j["random"]["ffn"].size(), 3u);
  EXPECT_EQ(cli({"ablate", m, "Once upon a time", "--heads", "2:5", "--attn", "2:6:6@3", "--activation"}).code, 0);
}

TEST(CliExplain, BadRequestsGiveOneClearLine) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const std::vector<BadCase> cases = {
      {{"explain", m, "Once upon a time", "--position", "9"}, 2, {"position 9 is out of range"}},
      {{"explain", m, "Once upon a time", "--target", "99999"}, 2, {"outside the vocabulary"}},
      {{"ablate", m, "Once", "--ffn", "1:999"}, 2, {"FFN neuron 999 is out of range"}},
      {{"ablate", m, "Once", "--heads", "7:0"}, 2, {"layer 7 is out of range"}},
      {{"ablate", m, "Once", "--attn", "1:2"}, 2, {"should have 3 numbers"}},
      {{"ablate", m, "Once"}, 2, {"nothing to ablate"}},
      {{"explain", m, "Once", "--compat", "sometimes"}, 2, {"--compat"}},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[0] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in " << r.err;
  }
  // A target given as text that is several tokens: every token explained, with a note.
  const auto multi = cli({"explain", m, "Once upon a time", "--target", "zzqx", "--json"});
  EXPECT_EQ(multi.code, 0);
  EXPECT_NE(multi.err.find("each is explained after the ones before it"), std::string::npos) << multi.err;
  EXPECT_EQ(nlohmann::json::parse(multi.out)["kind"], "target");
}

TEST(CliExplain, ATargetOfSeveralTokensIsExplainedStepByStepAndSummed) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto dir = test::scratch_dir("explain-target");
  const auto r = cli({"explain", m, "Once upon a time", "--target", " there was a", "--foil", " there lived", "--json",
                      "--top", "5", "--out", dir.string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kind"], "target");
  ASSERT_EQ(j["steps"].size(), 3u);
  ASSERT_EQ(j["target"]["tokens"].size(), 3u);
  double log_prob = 0;
  for (size_t t = 0; t < 3; ++t) {
    const auto& step = j["steps"][t];
    const auto& tok = j["target"]["tokens"][t];
    EXPECT_EQ(step["target"]["id"], tok["id"]);            // each step is a single-position document
    EXPECT_EQ(step["position"], j["position"].get<int>() + static_cast<int>(t));
    EXPECT_EQ(step["tokens"].size(), j["prompt"].size() + 2);  // the prompt, then the target's first two tokens
    log_prob += tok["log_prob"].get<double>();
  }
  EXPECT_NEAR(j["target"]["log_prob"].get<double>(), log_prob, 1e-12);
  // ' there' is shared, the sequences part at step 1 (' was' vs ' lived'), in one context.
  EXPECT_EQ(j["foil"]["contrast_step"], 1);
  EXPECT_TRUE(j["steps"][1].contains("contrast"));
  EXPECT_FALSE(j["steps"][0].contains("contrast"));
  const auto& s = j["summed"];
  EXPECT_EQ(s["top_heads"].size(), 5u);
  EXPECT_EQ(s["top_heads"][0]["steps"].size(), 3u);
  EXPECT_TRUE(s.contains("contrast"));
  // --out: the steps' arrays with a leading step axis (sources padded to the last step's), the sums.
  const NpyArray layers = read_npy(dir / "layer_scores.npy");
  EXPECT_EQ(layers.shape, (std::vector<int64_t>{3, 5, 2}));
  const int64_t n = static_cast<int64_t>(j["prompt"].size()) + 2;
  EXPECT_EQ(read_npy(dir / "attn_neuron_scores.npy").shape, (std::vector<int64_t>{3, 5, 8, 8, n}));
  const NpyArray ffn = read_npy(dir / "ffn_neuron_scores.npy"), summed = read_npy(dir / "summed_ffn_neuron_scores.npy");
  ASSERT_EQ(summed.shape, (std::vector<int64_t>{5, 172}));
  for (size_t i = 0; i < summed.data.size(); ++i) {
    ASSERT_NEAR(summed.data[i], ffn.data[i] + ffn.data[i + 860] + ffn.data[i + 1720], 1e-12) << i;
  }
  EXPECT_EQ(read_npy(dir / "summed_contrast_layer_scores.npy").shape, (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(nlohmann::json::parse(test::read_file(dir / "explanation.json")), j);
  // The terminal report: the steps, the summed layers and components, each step in brief.
  const auto text = cli({"explain", m, "Once upon a time", "--target", " there was a"});
  ASSERT_EQ(text.code, 0) << text.err;
  for (const char* f : {"target ' there was a' (3 tokens", "Layers summed over the 3 steps", "Top heads (summed",
                        "Step 2: ' a'"}) {
    EXPECT_NE(text.out.find(f), std::string::npos) << f << " not in\n" << text.out;
  }
  // The same target by ids.
  const auto ids = cli({"explain", m, "Once upon a time", "--target",
                        std::to_string(j["target"]["tokens"][0]["id"].get<int>()) + "," +
                            std::to_string(j["target"]["tokens"][1]["id"].get<int>()),
                        "--json", "--top", "5"});
  ASSERT_EQ(ids.code, 0) << ids.err;
  const auto by_ids = nlohmann::json::parse(ids.out);
  ASSERT_EQ(by_ids["steps"].size(), 2u);
  // A step depends on its prefix only (the full method here: a 512-token vocabulary).
  EXPECT_EQ(by_ids["steps"][1]["ffn_neurons"], j["steps"][1]["ffn_neurons"]);
  EXPECT_EQ(by_ids["steps"][1]["layers"], j["steps"][1]["layers"]);
}

TEST(CliExplain, AContinuationIsItsTokensAfterThePrompt) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto by_continuation = cli({"explain", m, "Once upon a time", "--continuation", " there was a", "--json"});
  ASSERT_EQ(by_continuation.code, 0) << by_continuation.err;
  const auto by_target = cli({"explain", m, "Once upon a time", "--target", "383,286,261", "--json"});
  ASSERT_EQ(by_target.code, 0) << by_target.err;
  EXPECT_EQ(by_continuation.out, by_target.out);
  EXPECT_EQ(nlohmann::json::parse(by_continuation.out)["target"]["text"], " there was a");
  // An answer the tokenizer cannot give back: this TinyStories tokenizer has an unk token but no
  // byte fallback, so a snowman becomes <unk>.
  const auto dir = test::scratch_dir("unk-continuation");
  auto tj = nlohmann::json::parse(test::read_file(test::shared_path("models/TinyStories-656K/tokenizer.json")));
  tj["model"]["byte_fallback"] = false;
  test::write_file(dir / "tokenizer.json", tj.dump());
  const std::vector<BadCase> cases = {
      {{"explain", m, "Once upon a ti", "--continuation", "me there"}, 2, {"does not start at a token boundary"}},
      {{"explain", m, "--ids", "1,403", "--continuation", " upon"}, 2, {"with --ids, give the answer's ids as --target"}},
      {{"explain", m, "Once", "--continuation", " upon", "--target", " upon"}, 2, {"--continuation"}},
      {{"explain", m, "Once", "--continuation", ""}, 2, {"the continuation is empty"}},
      {{"explain", shared("models/TinyStories-656K"), "Once upon a time,", "--tokenizer", (dir / "tokenizer.json").string(),
        "--continuation", "\xE2\x98\x83"},
       2, {"does not survive tokenization: its 1 token decodes to '<unk>'"}},
      // This vocabulary glues a space to the word before it ('e ' of ' time'): " there" after
      // "Once upon a time" changes the prompt's last token.
      {{"explain", shared("models/TinyStories-656K"), "Once upon a time", "--continuation", " there"},
       2, {"does not start at a token boundary", "'e' reads as 'e '"}},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[3] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in " << r.err;
  }
}

TEST(CliExplain, AGeneratedAnswerIsGeneratesTokensExplainedStepByStep) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const std::vector<std::vector<std::string>> samplings = {{}, {"--temp", "0.8", "--seed", "5"}};
  for (const std::vector<std::string>& sampling : samplings) {
    std::vector<std::string> gen_args = {"generate", m, "Once upon a time", "-n", "6", "--json"};
    gen_args.insert(gen_args.end(), sampling.begin(), sampling.end());
    const auto gen = cli(gen_args);
    ASSERT_EQ(gen.code, 0) << gen.err;
    const auto dir = test::scratch_dir("explain-generate");
    std::vector<std::string> args = {"explain", m, "Once upon a time", "--generate", "6", "--json", "--out", dir.string()};
    args.insert(args.end(), sampling.begin(), sampling.end());
    const auto r = cli(args);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    std::vector<int> ids;
    for (const auto& t : j["target"]["tokens"]) ids.push_back(t["id"].get<int>());
    EXPECT_EQ(nlohmann::json(ids), nlohmann::json::parse(gen.out)["ids"]);  // the answer `generate` prints
    EXPECT_EQ(j["kind"], "target");
    EXPECT_EQ(j["generated"]["max_tokens"], 6);
    EXPECT_EQ(j["generated"]["stop"], "max_tokens");
    EXPECT_EQ(j["steps"].size(), 6u);
    EXPECT_NE(r.err.find("note: generated 6 tokens"), std::string::npos) << r.err;
    // The arrays have a step axis, as a target's do.
    EXPECT_EQ(read_npy(dir / "layer_scores.npy").shape, (std::vector<int64_t>{6, 5, 2}));
    EXPECT_EQ(read_npy(dir / "summed_layer_scores.npy").shape, (std::vector<int64_t>{5, 2}));
    // The same answer given as a target: the same numbers.
    std::string csv;
    for (const int id : ids) csv += (csv.empty() ? "" : ",") + std::to_string(id);
    const auto as_target = nlohmann::json::parse(cli({"explain", m, "Once upon a time", "--target", csv, "--json"}).out);
    EXPECT_EQ(as_target["steps"], j["steps"]);
    EXPECT_EQ(as_target["summed"], j["summed"]);
  }
  // JSON lines: one line per step (its single-position document), then the summary.
  const auto jl = cli({"explain", m, "Once upon a time", "--generate", "3", "--jsonl"});
  ASSERT_EQ(jl.code, 0) << jl.err;
  ASSERT_EQ(lines(jl.out), 4) << jl.out;
  std::istringstream in(jl.out);
  std::string line;
  for (int t = 0; t < 3; ++t) {
    std::getline(in, line);
    const auto step = nlohmann::json::parse(line);
    EXPECT_EQ(step["kind"], "step");
    EXPECT_EQ(step["step"], t);
    EXPECT_EQ(step["explanation"]["position"], 4 + t);
  }
  std::getline(in, line);
  const auto summary = nlohmann::json::parse(line);
  EXPECT_EQ(summary["kind"], "target_summary");
  EXPECT_FALSE(summary.contains("steps"));
  EXPECT_EQ(summary["target"]["tokens"].size(), 3u);
  // With a foil that has steps of its own, the target's lines (printed as each step finishes) come
  // first, then the foil's, then the summary: the --json document's steps, line by line.
  {
    const std::vector<std::string> tf = {"explain", m, "Once upon a time", "--target", " there was a little",
                                         "--foil", " there is one day"};
    std::vector<std::string> a = tf, b = tf;
    a.push_back("--jsonl");
    b.push_back("--json");
    const auto fl = cli(a), fj = cli(b);
    ASSERT_EQ(fl.code, 0) << fl.err;
    ASSERT_EQ(fj.code, 0) << fj.err;
    const auto doc = nlohmann::json::parse(fj.out);
    ASSERT_FALSE(doc["foil_steps"].empty());
    std::istringstream fin(fl.out);
    for (const char* seq : {"target", "foil"}) {
      const auto& want = doc[std::string(seq) == "target" ? "steps" : "foil_steps"];
      for (size_t t = 0; t < want.size(); ++t) {
        ASSERT_TRUE(std::getline(fin, line));
        const auto got = nlohmann::json::parse(line);
        EXPECT_EQ(got["sequence"], seq);
        EXPECT_EQ(got["explanation"], want[t]) << seq << " step " << t;
      }
    }
    ASSERT_TRUE(std::getline(fin, line));
    EXPECT_EQ(nlohmann::json::parse(line)["kind"], "target_summary");
    EXPECT_FALSE(std::getline(fin, line));
  }
  // The terminal report says how the answer was made.
  const auto text = cli({"explain", m, "Once upon a time", "--generate", "2"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("generated by the model (greedy, at most 2 tokens): stopped at the token limit"),
            std::string::npos) << text.out;
  const std::vector<BadCase> cases = {
      {{"explain", m, "Once", "--generate", "0"}, 2, {"the number of tokens to generate is 0"}},
      {{"explain", m, "Once", "--generate", "5000"}, 2, {"more than the model's context window of 2048"}},
      {{"explain", m, "Once", "--generate", "2", "--target", " upon"}, 2, {"--generate"}},
      {{"explain", m, "Once", "--generate", "2", "--foil", " upon"}, 2, {"a foil is not taken"}},
      {{"explain", m, "Once", "--temp", "0.5"}, 2, {"--generate"}},
      {{"explain", m, "Once", "--generate", "2", "--json", "--jsonl"}, 2, {"--json"}},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[3] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in " << r.err;
  }
}

TEST(CliExplain, ATargetOfOneTokenPrintsTheSinglePositionDocument) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto one = cli({"explain", m, "Once upon a time", "--target", " there", "--foil", "432", "--json"});
  ASSERT_EQ(one.code, 0) << one.err;
  const auto j = nlohmann::json::parse(one.out);
  EXPECT_FALSE(j.contains("kind"));
  EXPECT_FALSE(j.contains("steps"));
  EXPECT_TRUE(j.contains("contrast"));
}

TEST(CliExplain, BadTargetsGiveOneClearLine) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  // A tokenizer with neither byte fallback nor an unk token cannot spell a snowman.
  const auto dir = test::scratch_dir("unspellable-foil");
  auto tj = nlohmann::json::parse(test::read_file(test::shared_path("models/TinyStories-656K/tokenizer.json")));
  tj["model"]["byte_fallback"] = false;
  tj["model"]["unk_token"] = nullptr;
  test::write_file(dir / "tokenizer.json", tj.dump());
  std::string words;
  for (int i = 0; i < 200; ++i) words += " upon";
  const std::vector<BadCase> cases = {
      {{"explain", m, "Once upon a time", "--target", ""}, 2, {"the target is empty"}},
      {{"explain", m, "Once upon a time", "--foil", ""}, 2, {"the foil is empty"}},
      {{"explain", shared("models/random-gpt2/random-gpt2-test.gguf"), "Once upon a time", "--target", words},
       2, {"the target has 200 tokens", "context window of 128"}},
      {{"explain", m, "Once upon a time", "--target", " there was", "--position", "2"}, 2, {"after the last position"}},
      {{"explain", m, "Once upon a time", "--target", " there was", "--foil", " there was"}, 2, {"the foil is the target"}},
      {{"explain", m, "Once upon a time", "--target", "1,99999"}, 2, {"outside the vocabulary"}},
      {{"explain", shared("models/TinyStories-656K"), "Once upon a time", "--tokenizer", (dir / "tokenizer.json").string(),
        "--target", " there was", "--foil", " a \xE2\x98\x83"},
       2, {"cannot encode U+2603"}},
  };
  for (const auto& c : cases) {
    const auto r = cli(c.args);
    EXPECT_EQ(r.code, c.code) << c.args[3] << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    for (const auto& f : c.fragments) EXPECT_NE(r.err.find(f), std::string::npos) << "'" << f << "' not in " << r.err;
  }
}

// Sets an environment variable for the commands a test runs, and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// RESLENS_ISA runs the tool as on a CPU with fewer instruction sets (tools/reslens/isa_limit.h), and
// bench says which kernels ran; a bad value is refused in one line. A CPU without a capped-to set
// keeps what it has, so the expectations follow the uncapped run's kernels.
TEST(Cli, IsaLimitCapsTheKernelsThatBenchReports) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto kernels = [&]() {
    const auto r = cli({"bench", m, "--tokens", "1", "-r", "1", "--json", "--threads", "1"});
    EXPECT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j.at("fma_peak_isa"), j.at("kernels").at("gemm"));  // the peak is the GEMM's instruction set's
    return j.at("kernels");
  };
  const auto native = kernels();
  const bool simd = native["int8"] != "portable";  // AVX2 at least
  {
    const ScopedEnv env("RESLENS_ISA", "avx2");
    const auto k = kernels();
    if (simd) {
      EXPECT_EQ(k, (nlohmann::json{{"gemm", "avx2"}, {"dequantize", "avx2"}, {"int8", "avx2"}}));
    }
  }
  {
    const ScopedEnv env("RESLENS_ISA", "avx-vnni");
    const auto k = kernels();
    if (simd) {
      EXPECT_EQ(k["gemm"], "avx2");
      // AVX-VNNI where the CPU has it (not every AVX-512 VNNI CPU does), else AVX2
      EXPECT_TRUE(k["int8"] == "avx-vnni" || k["int8"] == "avx2") << k.dump();
      if (native["int8"] == "avx-vnni") {
        EXPECT_EQ(k["int8"], "avx-vnni");
      }
    }
  }
  {
    const ScopedEnv env("RESLENS_ISA", "scalar");
    EXPECT_EQ(kernels(), (nlohmann::json{{"gemm", "scalar"}, {"dequantize", "scalar"}, {"int8", "portable"}}));
  }
  {
    const ScopedEnv env("RESLENS_ISA", "avx1024");
    const auto r = cli({"inspect", m});
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("RESLENS_ISA='avx1024'"), std::string::npos) << r.err;
  }
}

TEST(CliPrecompute, StatusBuildAndProgressLines) {
  const std::string m = shared("models/stories260K/stories260K.gguf");
  const auto dir = std::filesystem::temp_directory_path() / ("reslens-cli-cache-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const ScopedEnv env("RESLENS_CACHE_DIR", dir.string());
  const auto before = cli({"precompute", m, "--status", "--json"});
  ASSERT_EQ(before.code, 0) << before.err;
  const auto status = nlohmann::json::parse(before.out);
  EXPECT_FALSE(status["present"].get<bool>());
  const std::filesystem::path path = status["path"].get<std::string>();
  EXPECT_EQ(path.parent_path(), dir);
  EXPECT_GT(status["bytes"].get<int64_t>(), 0);

  // Not a terminal: plain progress lines on stderr, ending at 100%; the result on stdout.
  const auto build = cli({"precompute", m, "-t", "2"});
  ASSERT_EQ(build.code, 0) << build.err;
  EXPECT_NE(build.err.find("progress: "), std::string::npos) << build.err;
  EXPECT_NE(build.err.find(" directions (100%)"), std::string::npos) << build.err;
  EXPECT_EQ(build.err.find('\r'), std::string::npos) << build.err;
  EXPECT_NE(build.out.find("projection cache: " + path.string()), std::string::npos) << build.out;
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(path)), status["bytes"].get<int64_t>());

  const auto after = cli({"precompute", m, "--status", "--json"});
  ASSERT_EQ(after.code, 0) << after.err;
  EXPECT_TRUE(nlohmann::json::parse(after.out)["present"].get<bool>());
  const auto quiet = cli({"precompute", m, "-q"});  // rebuilt, silently
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_TRUE(quiet.err.empty()) << quiet.err;
  std::filesystem::remove_all(dir);
}

TEST(CliPrecompute, ExplainSuggestsItOnATerminalUntilTheCacheExists) {
  // A 50257-token vocabulary: explain uses the bounded method, which the cache speeds up.
  const std::string m = shared("models/random-gpt2/random-gpt2-test.gguf");
  const auto dir = std::filesystem::temp_directory_path() / ("reslens-cli-tip-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const ScopedEnv env("RESLENS_CACHE_DIR", dir.string());
  // util-linux `script` gives the command a pseudo-terminal for stderr.
  auto on_terminal = [&] {
    const auto log = dir.parent_path() / ("reslens-cli-tip-" + std::to_string(::getpid()) + ".log");
    const std::string inner = quote(RESLENS_CLI_PATH) + " explain " + quote(m) + " 'Hello world' --json";
    const std::string cmd = "script -qec " + quote(inner) + " /dev/null >" + quote(log.string()) + " 2>&1 </dev/null";
    const int status = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::string text = test::read_file(log);
    std::filesystem::remove(log);  // beside the cache dir, not in it: removed here
    return text;
  };
  const std::string tip = "tip: `reslens precompute " + m + "`";
  EXPECT_NE(on_terminal().find(tip), std::string::npos);
  const auto piped = cli({"explain", m, "Hello world", "--json"});  // not a terminal: no tip
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("tip:"), std::string::npos) << piped.err;
  ASSERT_EQ(cli({"precompute", m, "-q"}).code, 0);
  EXPECT_EQ(on_terminal().find("tip:"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(CliPrecompute, AnUnwritableCacheDirIsOneLineNamingIt) {
  // A cache dir below a regular file cannot be created, even by root.
  const auto file = std::filesystem::temp_directory_path() / ("reslens-cli-notadir-" + std::to_string(::getpid()));
  { std::ofstream(file) << "x"; }
  const ScopedEnv env("RESLENS_CACHE_DIR", (file / "cache").string());
  const auto r = cli({"precompute", shared("models/stories260K/stories260K.gguf"), "-q"});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find((file / "cache").string()), std::string::npos) << r.err;
  std::filesystem::remove(file);
}

// A copy of the TinyStories-656K Hugging Face directory to change files in.
std::filesystem::path tinystories_copy(const std::string& name) {
  const auto dir = test::scratch_dir(name);
  for (const auto& entry : std::filesystem::directory_iterator(test::shared_path("models/TinyStories-656K"))) {
    if (entry.path().extension() == ".gguf") continue;
    std::filesystem::copy_file(entry.path(), dir / entry.path().filename(),
                               std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(dir / entry.path().filename(), std::filesystem::perms::owner_write,
                                 std::filesystem::perm_options::add);
  }
  return dir;
}

TEST(Cli, ATokenizerThatDoesNotFitTheModelIsRefusedAtLoadNamingIt) {
  // A 3-token tokenizer.json for a model of 2048 rows: exit 3 at load, naming the tokenizer file
  // and both sizes (it used to load and stop at the first prediction: "token id 68 is outside the
  // vocabulary (0..2)", exit 2, no file named).
  const auto dir = tinystories_copy("small-tokenizer");
  auto j = nlohmann::json::parse(test::read_file(dir / "tokenizer.json"));
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [piece, id] : j["model"]["vocab"].items()) {
    if (id.get<int>() < 3) vocab[piece] = id;
  }
  j["model"]["vocab"] = vocab;
  j["added_tokens"] = nlohmann::json::array({j["added_tokens"][0]});
  test::write_file(dir / "tokenizer.json", j.dump());
  for (const std::string cmd : {"predict", "explain"}) {
    const auto r = cli({cmd, dir.string(), "Once upon a time"});
    EXPECT_EQ(r.code, 3) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find((dir / "tokenizer.json").string() + ": the tokenizer has 3 tokens but the model's vocabulary has 2048 rows"),
              std::string::npos) << r.err;
  }
  // --tokenizer with a GGUF is refused, not ignored.
  const auto r = cli({"predict", shared("models/stories260K/stories260K.gguf"), "Once", "--tokenizer",
                      (dir / "tokenizer.json").string()});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("a GGUF file carries its own tokenizer"), std::string::npos) << r.err;
}

TEST(Cli, ErrorMessagesNeverEchoRawControlBytes) {
  // A config.json field name is quoted in the refusal; its ESC and NUL come out escaped, and the
  // text after the NUL is still there.
  const auto dir = tinystories_copy("evil-config");
  auto cfg = nlohmann::json::parse(test::read_file(dir / "config.json"));
  cfg[std::string("evil\x1b[2J\0tail", 13)] = 1;
  test::write_file(dir / "config.json", cfg.dump());
  const auto r = cli({"inspect", dir.string()});
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\0'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("evil\\x1b[2J\\x00tail"), std::string::npos) << r.err;
  // Command-line text quoted in a message: a token id list with an escape sequence.
  const auto t = cli({"predict", shared("models/stories260K/stories260K.gguf"), "--ids", "1,\x1b]0;x\x07"});
  EXPECT_EQ(t.code, 2) << t.err;
  EXPECT_EQ(lines(t.err), 1) << t.err;
  EXPECT_EQ(t.err.find('\x1b'), std::string::npos) << t.err;
  EXPECT_NE(t.err.find("'\\x1b]0;x\\x07'"), std::string::npos) << t.err;
}

TEST(Cli, ThreadsZeroMeansAllCoresAndNegativeIsAUsageError) {
  const std::string gguf = shared("models/stories260K/stories260K.gguf");
  const auto all = cli({"predict", gguf, "Once upon a time", "--json"});
  const auto zero = cli({"predict", gguf, "Once upon a time", "--json", "-t", "0"});
  ASSERT_EQ(zero.code, 0) << zero.err;
  EXPECT_EQ(zero.out, all.out);
  for (const std::string bad : {"-1", "x", "1.5"}) {
    const auto r = cli({"predict", gguf, "Once", "--threads", bad});
    EXPECT_EQ(r.code, 2) << bad << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_NE(r.err.find("--threads"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("0 or absent: all cores"), std::string::npos) << r.err;
  }
  EXPECT_NE(cli({"predict", "--help"}).out.find("(0 or absent: all cores)"), std::string::npos);
}

// Runs the CLI with writes to regular files limited to a few KiB (SIGXFSZ ignored, so a write past
// the limit fails with EFBIG as on a full disk); stdout goes to /dev/null, which the limit spares.
CliResult cli_with_small_disk(const std::vector<std::string>& args) {
  const auto err = test::scratch_dir("small-disk") / "err";
  std::string cmd = "trap '' XFSZ; ulimit -f 4; exec " + quote(RESLENS_CLI_PATH);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd = "/bin/sh -c " + quote(cmd) + " >/dev/null 2>" + quote(err.string());
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = test::read_file(err);
  return r;
}

// Every file in `dir` is whole: no temporary is left, and every .npy parses to its full size.
void expect_only_whole_files(const std::filesystem::path& dir) {
  if (!std::filesystem::exists(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << "temporary left behind: " << entry.path();
    if (entry.path().extension() == ".npy") {
      EXPECT_NO_THROW(read_npy(entry.path())) << "partial file: " << entry.path();
    }
  }
}

TEST(Cli, FailedWritesLeaveNoPartialFileUnderTheName) {
  const std::string gguf = shared("models/stories260K/stories260K.gguf");
  const std::string text = "Once upon a time, there was a little girl named";
  const auto dir = test::scratch_dir("partial");
  // explain --out: the arrays that fit are written whole, the first that does not fails (exit 3,
  // naming it), and explanation.json (written last) is not there.
  auto r = cli_with_small_disk({"explain", gguf, text, "--out", (dir / "arrays").string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("cannot write the file (File too large)"), std::string::npos) << r.err;
  expect_only_whole_files(dir / "arrays");
  EXPECT_FALSE(std::filesystem::exists(dir / "arrays" / "explanation.json"));
  // --html: no page at all.
  r = cli_with_small_disk({"explain", gguf, text, "--html", (dir / "page.html").string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find((dir / "page.html").string()), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "page.html"));
  EXPECT_FALSE(std::filesystem::exists(dir / "page.html.tmp"));
  // trace: whole hook files only, and no index.json.
  r = cli_with_small_disk({"trace", gguf, text, "--out", (dir / "trace").string()});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  expect_only_whole_files(dir / "trace");
  EXPECT_FALSE(std::filesystem::exists(dir / "trace" / "index.json"));
  // precompute: no cache file (nor temporary) in the cache folder.
  const ScopedEnv env("RESLENS_CACHE_DIR", (dir / "cache").string());
  r = cli_with_small_disk({"precompute", gguf, "-q"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(": cannot write the projection cache (File too large)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((dir / "cache").string()), std::string::npos) << r.err;
  if (std::filesystem::exists(dir / "cache")) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "cache")) {
      EXPECT_TRUE(entry.is_directory()) << "left behind: " << entry.path();
    }
  }
}

}  // namespace
}  // namespace reslens
