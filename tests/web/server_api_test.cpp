// The JSON API of `reslens serve`, without sockets: every endpoint agrees with the library called
// directly, jobs report their state, concurrent callers all get the single-request answers, and bad
// requests get a 4xx JSON error while the API keeps answering.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/test_paths.h"
#include "reslens/graph.h"
#include "reslens/reslens.h"
#include "server/api.h"

namespace reslens {
namespace {

using nlohmann::json;
using server::Api;
using server::Reply;
using server::Request;

constexpr const char* kPrompt = "Once upon a time";

class ServerApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
    server::ApiOptions o;
    o.n_threads = 1;
    api_ = new Api(model_, o);
  }
  static void TearDownTestSuite() {
    delete api_;
    api_ = nullptr;
    model_.reset();
  }

  static Reply call(const std::string& method, const std::string& path, const std::string& body = "",
                    std::map<std::string, std::string> query = {}) {
    // Headers as a browser on this page sends them: POST bodies are JSON.
    std::map<std::string, std::string> headers = {{"host", "127.0.0.1:8080"}};
    if (method == "POST") headers["content-type"] = "application/json";
    return api_->handle(Request{method, path, std::move(query), body, std::move(headers)});
  }
  static json post_ok(const std::string& endpoint, const json& body) {
    const Reply r = call("POST", "/api/" + endpoint, body.dump());
    EXPECT_EQ(r.status, 200) << endpoint << ": " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    return json::parse(r.body);
  }
  static void expect_error(const Reply& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j["error"];
  }

  // The library's own answer for the prompt.
  struct Direct {
    std::vector<int32_t> tokens;
    RunResult run;
    ExplainOptions eo;
    Explanation ex;
  };
  static Direct direct(const std::string& prompt) {
    Direct d;
    d.tokens = model_->tokenizer().encode(prompt, model_->tokenizer().add_bos_default());
    RunOptions ro;
    ro.capture = explain_capture();
    ro.all_logits = true;
    ro.n_threads = 1;
    d.run = run(*model_, d.tokens, ro);
    d.eo.position = static_cast<int>(d.tokens.size()) - 1;
    d.eo.n_threads = 1;
    d.ex = explain(*model_, d.run, d.tokens, d.eo);
    return d;
  }

  static inline std::shared_ptr<const Model> model_;
  static inline Api* api_ = nullptr;
};

TEST_F(ServerApi, InfoDescribesTheModel) {
  const Reply r = call("GET", "/api/info");
  ASSERT_EQ(r.status, 200);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["model"]["n_layers"], model_->config().n_layers);
  EXPECT_EQ(j["limits"]["max_body_bytes"], 64 * 1024);
}

TEST_F(ServerApi, PredictMatchesTheForwardPass) {
  const json j = post_ok("predict", {{"prompt", kPrompt}, {"top_k", 5}});
  const Direct d = direct(kPrompt);
  ASSERT_EQ(j["top"].size(), 5u);
  EXPECT_EQ(j["top"][0]["id"], d.ex.target);  // the explained default target is the top prediction
  EXPECT_NEAR(j["top"][0]["prob"].get<double>(), d.ex.real_prob, 1e-9);
  EXPECT_EQ(j["tokens"].size(), d.tokens.size());
}

TEST_F(ServerApi, ChatLaysEveryPromptOut) {
  // A server started with a chat layout tokenizes what the library's format_chat makes of each
  // prompt, and says so in /api/info; the default server says null.
  server::ApiOptions o;
  o.n_threads = 1;
  o.chat = ChatTemplate::kChatml;
  o.chat_system = "Be brief";
  Api chat_api(model_, o);
  const Reply r = chat_api.handle(Request{"POST", "/api/predict", {}, json{{"prompt", "Hi"}}.dump(), {{"content-type", "application/json"}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const Tokenizer& tok = model_->tokenizer();
  const std::vector<int32_t> want = tok.encode(format_chat(ChatTemplate::kChatml, "Hi", "Be brief"), tok.add_bos_default());
  const json tokens = json::parse(r.body)["tokens"];
  ASSERT_EQ(tokens.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(tokens[i]["id"], want[i]) << i;
  EXPECT_EQ(json::parse(chat_api.handle(Request{"GET", "/api/info", {}, "", {}}).body)["chat"], "chatml");
  EXPECT_TRUE(json::parse(call("GET", "/api/info").body)["chat"].is_null());
}

TEST_F(ServerApi, ExplainIsTheLibrarysJsonDocument) {
  const json j = post_ok("explain", {{"prompt", kPrompt}});
  const Direct d = direct(kPrompt);
  EXPECT_EQ(j, json::parse(explain_json(*model_, d.run, d.tokens, d.ex, d.eo)));
}

TEST_F(ServerApi, TargetsByTextOrIdAndFoils) {
  const Direct d = direct(kPrompt);
  const std::string text = model_->tokenizer().token_text(d.ex.target);
  const json by_text = post_ok("explain", {{"prompt", kPrompt}, {"target", text}, {"top", 3}});
  const json by_id = post_ok("explain", {{"prompt", kPrompt}, {"target", d.ex.target}, {"top", 3}});
  EXPECT_EQ(by_text["target"]["id"], d.ex.target);
  EXPECT_EQ(by_text["layers"], by_id["layers"]);
  EXPECT_EQ(by_id["top_heads"].size(), 3u);
  const json contrast = post_ok("explain", {{"prompt", kPrompt}, {"foil", 100}, {"position", 2}});
  EXPECT_EQ(contrast["position"], 2);
  EXPECT_EQ(contrast["foil"]["id"], 100);
  EXPECT_TRUE(contrast.contains("contrast"));
}

TEST_F(ServerApi, ExplainTakesAWholeAnswerGeneratedOrGiven) {
  // "generate": the library's explain_generated() document, the answer `reslens generate` gives.
  ExplainRequest req;
  req.tokens = model_->tokenizer().encode(kPrompt, model_->tokenizer().add_bos_default());
  req.options.n_threads = 1;
  GenerateOptions go;
  go.max_tokens = 4;
  ReportOptions ro;
  ro.top = 5;
  const ExplainedTarget done = explain_generated(*model_, req, go);
  const json gen = post_ok("explain", {{"prompt", kPrompt}, {"generate", 4}, {"top", 5}});
  json want = json::parse(target_json(*model_, done, ro));
  want["notes"] = done.notes;
  EXPECT_EQ(gen, want);
  EXPECT_EQ(gen["kind"], "target");
  EXPECT_EQ(gen["generated"]["stop"], "max_tokens");
  ASSERT_EQ(gen["steps"].size(), 4u);
  // Sampled as `generate --temp --seed` samples.
  go.temperature = 0.8;
  go.seed = 5;
  const json sampled = post_ok("explain", {{"prompt", kPrompt}, {"generate", 4}, {"temperature", 0.8}, {"seed", 5}});
  std::vector<int32_t> ids;
  for (const auto& t : sampled["target"]["tokens"]) ids.push_back(t["id"].get<int32_t>());
  EXPECT_EQ(ids, generate(*model_, req.tokens, go).tokens);
  // "continuation": the given answer's tokens, as explain --continuation reads them.
  const json cont = post_ok("explain", {{"prompt", kPrompt}, {"continuation", " there was a"}});
  EXPECT_EQ(cont["target"]["text"], " there was a");
  EXPECT_EQ(cont["steps"].size(), 3u);
  // A "target" (or "foil") of several tokens: the whole sequence, explain_target()'s document, as
  // `reslens explain --target` gives it (before, the first token only, with a note).
  ExplainRequest seq = req;
  seq.target = TokenName{-1, " there was a"};
  const ExplainedTarget seq_done = explain_target(*model_, seq);
  ASSERT_EQ(seq_done.target.size(), 3u);
  const json by_target = post_ok("explain", {{"prompt", kPrompt}, {"target", " there was a"}, {"top", 5}});
  json seq_want = json::parse(target_json(*model_, seq_done, ro));
  if (!seq_done.notes.empty()) seq_want["notes"] = seq_done.notes;
  EXPECT_EQ(by_target, seq_want);
  EXPECT_EQ(by_target["steps"].size(), 3u);
  seq.foil = TokenName{-1, " there is"};
  const ExplainedTarget contrast_done = explain_target(*model_, seq);
  const json by_foil =
      post_ok("explain", {{"prompt", kPrompt}, {"target", " there was a"}, {"foil", " there is"}, {"top", 5}});
  json contrast_want = json::parse(target_json(*model_, contrast_done, ro));
  if (!contrast_done.notes.empty()) contrast_want["notes"] = contrast_done.notes;
  EXPECT_EQ(by_foil, contrast_want);
  expect_error(call("POST", "/api/explain", json{{"prompt", kPrompt}, {"position", 1}, {"target", " there was a"}}.dump()),
               400, "continues the prompt");
  expect_error(call("POST", "/api/explain", json{{"prompt", kPrompt}, {"generate", 0}}.dump()), 400, "out of range");
  expect_error(call("POST", "/api/explain", json{{"prompt", kPrompt}, {"generate", 2}, {"target", 5}}.dump()), 400,
               "give no 'target'");
  expect_error(call("POST", "/api/explain", json{{"prompt", kPrompt}, {"generate", 2}, {"continuation", " a"}}.dump()),
               400, "not both");
  expect_error(call("POST", "/api/explain", json{{"prompt", kPrompt}, {"temperature", 0.5}}.dump()), 400, "need 'generate'");
  expect_error(call("POST", "/api/explain", json{{"prompt", "Once upon a ti"}, {"continuation", "me there"}}.dump()), 400,
               "does not start at a token boundary");
}

// POST /api/graph: graph_json()'s document for the same request, with the thresholds asked for;
// thresholds outside [0, 1] (or not numbers) are refused at once with 400, an empty pruning too.
TEST_F(ServerApi, GraphIsTheLibrarysDocument) {
  ExplainRequest req;
  req.prompt = kPrompt;
  req.options.n_threads = 1;
  EXPECT_EQ(post_ok("graph", {{"prompt", kPrompt}}), json::parse(graph_json(*model_, graph(*model_, req))));
  GraphOptions go;
  go.node_threshold = 0.9;
  go.edge_threshold = 0.5;
  req.position = 2;
  req.target = TokenName{1, ""};
  EXPECT_EQ(post_ok("graph", {{"prompt", kPrompt}, {"position", 2}, {"target", 1}, {"node_threshold", 0.9}, {"edge_threshold", 0.5}}),
            json::parse(graph_json(*model_, graph(*model_, req, go))));
  expect_error(call("POST", "/api/graph", json{{"prompt", kPrompt}, {"node_threshold", 1.5}}.dump()), 400,
               "'node_threshold' = 1.5 must be a number in [0, 1]");
  expect_error(call("POST", "/api/graph", json{{"prompt", kPrompt}, {"edge_threshold", -0.1}}.dump()), 400,
               "'edge_threshold'");
  expect_error(call("POST", "/api/graph", json{{"prompt", kPrompt}, {"edge_threshold", "0.5"}}.dump()), 400,
               "'edge_threshold'");
  expect_error(call("POST", "/api/graph", json{{"prompt", kPrompt}, {"foil", 3}}.dump()), 400, "unknown field 'foil'");
  expect_error(call("POST", "/api/graph", json{{"prompt", kPrompt}, {"node_threshold", 0}}.dump()), 400,
               "empty after pruning");
  post_ok("predict", {{"prompt", kPrompt}});  // still answering
}

// explain's precision knobs ("method", "bound_tol", "projection_cache", "projection_sketch", named as
// Python's keywords): every endpoint that explains passes them to the library (its method_counts
// change as the knobs say, and each answer is the library's own for the same knobs), the documents
// record them, the cached explanation a head or neuron click reuses is one made with the same knobs,
// and bad values are a 400 naming the field before anything runs.
TEST_F(ServerApi, ExplainKnobsReachTheLibraryAndAreRecorded) {
  auto exact = [](const json& counts) {
    int64_t n = 0;
    for (const auto& [k, v] : counts.items()) {
      if (k.size() > 5 && k.compare(k.size() - 5, 5, "_full") == 0) n += v.get<int64_t>();
    }
    return n;
  };
  auto direct_with = [&](const std::function<void(ExplainOptions&)>& set) {
    Direct d = direct(kPrompt);
    set(d.eo);
    d.ex = explain(*model_, d.run, d.tokens, d.eo);
    return d;
  };
  // A 512-token vocabulary: "auto" is the full method, which records no counts.
  const json plain = post_ok("explain", {{"prompt", kPrompt}});
  EXPECT_TRUE(plain["method_counts"].empty()) << plain["method_counts"];
  EXPECT_EQ(plain["options"]["method"], "auto");
  EXPECT_EQ(plain["options"]["bound_tol"], ExplainOptions{}.bound_tol);
  EXPECT_EQ(plain["options"]["projection_cache"], true);
  EXPECT_EQ(plain["options"]["projection_sketch"], true);

  const json bounded = post_ok("explain", {{"prompt", kPrompt}, {"method", "bounded"}});
  EXPECT_GT(bounded["method_counts"].value("ffn_bounded", 0), 0) << bounded["method_counts"];
  EXPECT_EQ(bounded["options"]["method"], "bounded");
  const Direct db = direct_with([](ExplainOptions& o) { o.method = ScoreMethod::kBounded; });
  EXPECT_EQ(bounded, json::parse(explain_json(*model_, db.run, db.tokens, db.ex, db.eo)));

  const json knobs = post_ok("explain", {{"prompt", kPrompt}, {"method", "bounded"}, {"bound_tol", 1e-3},
                                         {"projection_cache", false}, {"projection_sketch", false}});
  const Direct dk = direct_with([](ExplainOptions& o) {
    o.method = ScoreMethod::kBounded;
    o.bound_tol = 1e-3;
    o.projection_cache = false;
    o.projection_sketch = false;
  });
  EXPECT_EQ(knobs, json::parse(explain_json(*model_, dk.run, dk.tokens, dk.ex, dk.eo)));
  EXPECT_EQ(knobs["options"]["bound_tol"], 1e-3);
  EXPECT_EQ(knobs["options"]["projection_cache"], false);
  EXPECT_EQ(knobs["options"]["projection_sketch"], false);
  // The extended head reaches the library and the document (-1, auto, by default).
  EXPECT_EQ(bounded["options"]["extended_head"], -1);
  const json split = post_ok("explain", {{"prompt", kPrompt}, {"method", "bounded"}, {"extended_head", 0}});
  const Direct ds = direct_with([](ExplainOptions& o) {
    o.method = ScoreMethod::kBounded;
    o.extended_head = 0;
  });
  EXPECT_EQ(split, json::parse(explain_json(*model_, ds.run, ds.tokens, ds.ex, ds.eo)));
  EXPECT_EQ(split["options"]["extended_head"], 0);
  EXPECT_EQ(knobs["method_counts"].value("ffn_sketched", 0) + knobs["method_counts"].value("attention_sketched", 0), 0);
  EXPECT_LT(exact(knobs["method_counts"]), exact(bounded["method_counts"])) << knobs["method_counts"] << " vs "
                                                                             << bounded["method_counts"];

  // /api/head after a default /api/explain of the same prompt: the bounded explanation's score, not
  // the cached full one's (the head whose two scores differ most, so a stale cache would show).
  const Direct df = direct(kPrompt);
  size_t worst = 0;
  for (size_t i = 0; i < df.ex.head.values.size(); ++i) {
    if (std::abs(db.ex.head.values[i] - df.ex.head.values[i]) > std::abs(db.ex.head.values[worst] - df.ex.head.values[worst])) worst = i;
  }
  ASSERT_NE(db.ex.head.values[worst], df.ex.head.values[worst]) << "the bounded and full scores are identical here";
  const int64_t H = model_->config().n_heads;
  const json head_body = {{"prompt", kPrompt}, {"layer", static_cast<int64_t>(worst) / H}, {"head", static_cast<int64_t>(worst) % H}};
  EXPECT_EQ(post_ok("head", head_body)["score"], df.ex.head.values[worst]);
  json head_bounded = head_body;
  head_bounded["method"] = "bounded";
  EXPECT_EQ(post_ok("head", head_bounded)["score"], db.ex.head.values[worst]);
  json neuron_bounded = {{"prompt", kPrompt}, {"layer", 1}, {"neuron", 3}, {"ablate", false}, {"method", "bounded"}};
  EXPECT_EQ(post_ok("neuron", neuron_bounded)["score"], db.ex.ffn_neuron.at({1, 3}));

  // A whole answer: every step explained with the knobs, the library's document.
  ExplainRequest req;
  req.tokens = model_->tokenizer().encode(kPrompt, model_->tokenizer().add_bos_default());
  req.options.n_threads = 1;
  req.options.method = ScoreMethod::kBounded;
  req.options.projection_sketch = false;
  GenerateOptions go;
  go.max_tokens = 3;
  ReportOptions ro;
  ro.top = 5;
  const ExplainedTarget done = explain_generated(*model_, req, go);
  const json gen = post_ok("explain", {{"prompt", kPrompt}, {"generate", 3}, {"top", 5}, {"method", "bounded"},
                                       {"projection_sketch", false}});
  json want = json::parse(target_json(*model_, done, ro));
  want["notes"] = done.notes;
  EXPECT_EQ(gen, want);
  ASSERT_EQ(gen["steps"].size(), 3u);
  for (const json& st : gen["steps"]) {  // each step is an explain document
    EXPECT_GT(st["method_counts"].value("ffn_bounded", 0), 0);
    EXPECT_EQ(st["options"]["method"], "bounded");
    EXPECT_EQ(st["options"]["projection_sketch"], false);
  }
  const json cont = post_ok("explain", {{"prompt", kPrompt}, {"continuation", " there was a"}, {"method", "bounded"}});
  ASSERT_EQ(cont["steps"].size(), 3u);
  for (const json& st : cont["steps"]) EXPECT_GT(st["method_counts"].value("ffn_bounded", 0), 0);

  // /api/graph: the library's circuit with the same knobs, which its generation_settings record.
  ExplainRequest greq;
  greq.prompt = kPrompt;
  greq.options.n_threads = 1;
  greq.options.method = ScoreMethod::kBounded;
  greq.options.bound_tol = 1e-4;
  const json g = post_ok("graph", {{"prompt", kPrompt}, {"method", "bounded"}, {"bound_tol", 1e-4}});
  EXPECT_EQ(g, json::parse(graph_json(*model_, graph(*model_, greq))));
  EXPECT_EQ(g["metadata"]["generation_settings"]["method"], "bounded");
  EXPECT_EQ(g["metadata"]["generation_settings"]["bound_tol"], 1e-4);
  EXPECT_EQ(post_ok("graph", {{"prompt", kPrompt}})["metadata"]["generation_settings"]["method"], "auto");

  // Bad values: 400, one line naming the field, on every endpoint that takes them.
  for (const char* endpoint : {"explain", "head", "neuron", "graph"}) {
    const json base = std::string(endpoint) == "head"     ? json{{"prompt", kPrompt}, {"layer", 0}, {"head", 0}}
                      : std::string(endpoint) == "neuron" ? json{{"prompt", kPrompt}, {"layer", 0}, {"neuron", 0}}
                                                          : json{{"prompt", kPrompt}};
    auto with = [&](const char* field, const json& v) {
      json b = base;
      b[field] = v;
      return call("POST", std::string("/api/") + endpoint, b.dump());
    };
    SCOPED_TRACE(endpoint);
    expect_error(with("method", "exact"), 400, "method must be 'auto', 'full' or 'bounded', not 'exact'");
    expect_error(with("method", 1), 400, "'method' must be");
    expect_error(with("bound_tol", 0), 400, "bound_tol must be a positive finite number, not 0");
    expect_error(with("bound_tol", -1e-5), 400, "bound_tol must be a positive finite number, not -1e-05");
    expect_error(with("bound_tol", "1e-5"), 400, "'bound_tol' must be a positive finite number");
    expect_error(with("bound_tol", true), 400, "'bound_tol' must be a positive finite number");
    expect_error(with("projection_cache", "no"), 400, "'projection_cache' must be true or false");
    expect_error(with("projection_sketch", 0), 400, "'projection_sketch' must be true or false");
    expect_error(with("extended_head", -2), 400, "extended_head must be -1 (auto), 0 (none) or a number of tokens");
    expect_error(with("extended_head", 1.5), 400, "'extended_head' must be -1 (auto), 0 (none) or a number of tokens");
    expect_error(with("extended_head", "2048"), 400, "'extended_head' must be");
  }
  // JSON has no nan or inf: the literals are malformed, and so is a number past double's range.
  expect_error(call("POST", "/api/explain", R"({"prompt": "x", "bound_tol": NaN})"), 400, "malformed JSON");
  expect_error(call("POST", "/api/explain", R"({"prompt": "x", "bound_tol": Infinity})"), 400, "malformed JSON");
  expect_error(call("POST", "/api/explain", R"({"prompt": "x", "bound_tol": 1e999})"), 400, "number overflow");
  // Endpoints that explain nothing do not take them.
  expect_error(call("POST", "/api/ablate", json{{"prompt", kPrompt}, {"heads", {{0, 0}}}, {"method", "full"}}.dump()), 400,
               "unknown field 'method'");
  expect_error(call("POST", "/api/predict", json{{"prompt", kPrompt}, {"bound_tol", 1e-3}}.dump()), 400,
               "unknown field 'bound_tol'");
  post_ok("predict", {{"prompt", kPrompt}});  // still answering
}

TEST_F(ServerApi, AsyncJobsReportStateAndGiveTheSameResult) {
  const json body = {{"prompt", "The cat sat"}, {"top", 5}};
  const Reply sub = call("POST", "/api/explain", body.dump(), {{"async", "1"}});
  ASSERT_EQ(sub.status, 202) << sub.body;
  const std::string id = json::parse(sub.body)["job"];
  json status;
  for (int i = 0; i < 2000; ++i) {
    const Reply r = call("GET", "/api/jobs/" + id);
    ASSERT_EQ(r.status, 200) << r.body;
    status = json::parse(r.body);
    const std::string state = status["state"];
    ASSERT_TRUE(state == "queued" || state == "running" || state == "done") << r.body;
    if (state == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(status["state"], "done");
  EXPECT_EQ(status["kind"], "explain");
  EXPECT_EQ(status["result"], post_ok("explain", body));
  expect_error(call("GET", "/api/jobs/999999"), 404, "no job");
}

// An answer's steps stream: a client polling the job reads each step's document as soon as it is
// explained ("steps", "steps_done"; ?from=K for the ones after the K it has), and they are the
// steps of the finished reply.
TEST_F(ServerApi, AnAnswersStepsStreamWhileTheJobRuns) {
  const json body = {{"prompt", kPrompt}, {"generate", 5}, {"top", 5}};
  const Reply sub = call("POST", "/api/explain", body.dump(), {{"async", "1"}});
  ASSERT_EQ(sub.status, 202) << sub.body;
  const std::string id = json::parse(sub.body)["job"];
  json status;
  std::vector<json> streamed;  // the steps in the order they came
  size_t seen_while_running = 0;
  for (int i = 0; i < 4000; ++i) {
    const Reply r = call("GET", "/api/jobs/" + id, "", {{"from", std::to_string(streamed.size())}});
    ASSERT_EQ(r.status, 200) << r.body;
    status = json::parse(r.body);
    if (status.contains("steps")) {
      EXPECT_EQ(status["steps_done"].get<size_t>(), streamed.size() + status["steps"].size());
      for (const json& st : status["steps"]) streamed.push_back(st);
      if (status["state"] == "running") seen_while_running = streamed.size();
    }
    if (status["state"] == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(status["state"], "done");
  const json& result = status["result"];
  ASSERT_EQ(streamed.size(), result["steps"].size());
  for (size_t t = 0; t < streamed.size(); ++t) {
    EXPECT_EQ(streamed[t]["kind"], "step");
    EXPECT_EQ(streamed[t]["sequence"], "target");
    EXPECT_EQ(streamed[t]["step"], t);
    EXPECT_EQ(streamed[t]["explanation"], result["steps"][t]) << "step " << t;
  }
  // The whole list again from 0, and a bad ?from.
  const json again = json::parse(call("GET", "/api/jobs/" + id).body);
  EXPECT_EQ(again["steps"].size(), streamed.size());
  expect_error(call("GET", "/api/jobs/" + id, "", {{"from", "x"}}), 400, "from=x");
  RecordProperty("steps_seen_while_running", static_cast<int>(seen_while_running));
}

// A long answer that stories260K explains step by step for seconds: a job that is surely still
// running when a test cancels it after its first step.
std::string long_continuation() {
  std::string text;
  for (int i = 0; i < 20; ++i) text += " there was a little girl named Lily.";
  return text;
}

// Polls a job until `until` holds for its status (or ~20 s pass) and returns that status.
template <class Until>
json poll_job(const std::function<Reply(const std::string&, const std::string&)>& get, const std::string& id, Until until) {
  json status;
  for (int i = 0; i < 20000; ++i) {
    const Reply r = get("GET", "/api/jobs/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) break;
    status = json::parse(r.body);
    if (until(status)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return status;
}

// DELETE /api/jobs/ID on a running answer: 202, and the job stops at its next step boundary, ends
// "cancelled" with the steps it had finished still readable (?from=K too), and the job queued
// behind it runs next. A finished job then gives 409, an unknown one 404, in both forms.
TEST_F(ServerApi, CancelStopsARunningAnswerAtAStepBoundaryAndTheNextJobRuns) {
  const auto get = [](const std::string& m, const std::string& p) { return call(m, p); };
  const json body = {{"prompt", kPrompt}, {"continuation", long_continuation()}, {"top", 3}};
  const Reply sub = call("POST", "/api/explain", body.dump(), {{"async", "1"}});
  ASSERT_EQ(sub.status, 202) << sub.body;
  const std::string id = json::parse(sub.body)["job"];
  const Reply next_sub = call("POST", "/api/predict", json{{"prompt", "Lily and Tom"}}.dump(), {{"async", "1"}});
  ASSERT_EQ(next_sub.status, 202) << next_sub.body;
  const std::string next = json::parse(next_sub.body)["job"];
  EXPECT_EQ(json::parse(call("GET", "/api/jobs/" + next).body)["state"], "queued");

  json status = poll_job(get, id, [](const json& s) { return s.value("steps_done", 0) >= 1 || (s["state"] != "queued" && s["state"] != "running"); });
  ASSERT_EQ(status["state"], "running") << status.dump().substr(0, 300);
  const Reply cancel = call("DELETE", "/api/jobs/" + id);
  EXPECT_EQ(cancel.status, 202) << cancel.body;
  const json cancel_status = json::parse(cancel.body);
  EXPECT_EQ(cancel_status["id"], id);
  EXPECT_EQ(cancel_status["state"], "running");  // until its next step boundary
  EXPECT_GE(cancel_status["steps_done"].get<size_t>(), 1u);
  EXPECT_EQ(cancel_status["steps"], json::array());  // the count, not the documents
  status = poll_job(get, id, [](const json& s) { return s["state"] != "running"; });
  ASSERT_EQ(status["state"], "cancelled") << status.dump().substr(0, 300);
  EXPECT_FALSE(status.contains("result"));
  // Stopped early (the answer has ~200 tokens), with every finished step readable.
  const size_t done = status["steps_done"].get<size_t>();
  EXPECT_GE(done, 1u);
  EXPECT_LT(done, 100u);
  ASSERT_EQ(status["steps"].size(), done);
  for (size_t t = 0; t < done; ++t) EXPECT_EQ(status["steps"][t]["step"], t);
  const json tail = json::parse(call("GET", "/api/jobs/" + id, "", {{"from", std::to_string(done - 1)}}).body);
  ASSERT_EQ(tail["steps"].size(), 1u);
  EXPECT_EQ(tail["steps"][0], status["steps"][done - 1]);
  // No more steps come: the job stopped at that boundary.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(json::parse(call("GET", "/api/jobs/" + id).body)["steps_done"], done);

  // The job queued behind it runs and gives its answer.
  const json after = poll_job(get, next, [](const json& s) { return s["state"] == "done" || s["state"] == "failed"; });
  ASSERT_EQ(after["state"], "done") << after.dump().substr(0, 300);
  EXPECT_EQ(after["result"], post_ok("predict", {{"prompt", "Lily and Tom"}}));

  // Finished jobs (cancelled or done): 409 in both forms; unknown: 404; other methods: 405.
  expect_error(call("DELETE", "/api/jobs/" + id), 409, "has finished (cancelled)");
  expect_error(call("POST", "/api/jobs/" + next + "/cancel"), 409, "has finished (done)");
  expect_error(call("DELETE", "/api/jobs/0123456789abcdef"), 404, "no job");
  expect_error(call("POST", "/api/jobs/0123456789abcdef/cancel", "{}"), 404, "no job");
  expect_error(call("GET", "/api/jobs/" + id + "/cancel"), 405, "use POST");
  expect_error(call("PUT", "/api/jobs/" + id), 405, "DELETE cancels");
}

// A queued job cancelled (POST .../cancel, for clients that cannot send DELETE) leaves the queue at
// once: 200 with "state": "cancelled", and its work never runs (no steps ever appear).
TEST_F(ServerApi, CancelRemovesAQueuedJobBeforeItRuns) {
  const auto get = [](const std::string& m, const std::string& p) { return call(m, p); };
  const json body = {{"prompt", kPrompt}, {"continuation", long_continuation()}, {"top", 3}};
  const std::string first = json::parse(call("POST", "/api/explain", body.dump(), {{"async", "1"}}).body)["job"];
  ASSERT_EQ(poll_job(get, first, [](const json& s) { return s["state"] != "queued"; })["state"], "running");
  const std::string queued = json::parse(call("POST", "/api/explain", body.dump(), {{"async", "1"}}).body)["job"];
  const std::string third = json::parse(call("POST", "/api/predict", json{{"prompt", kPrompt}}.dump(), {{"async", "1"}}).body)["job"];
  EXPECT_EQ(json::parse(call("GET", "/api/jobs/" + third).body)["queue_position"], 1);
  expect_error(call("POST", "/api/jobs/" + queued + "/cancel", "{\"now\": true}"), 400, "takes no fields");
  const Reply r = call("POST", "/api/jobs/" + queued + "/cancel");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["state"], "cancelled");
  // The one behind it moved up.
  const json third_status = json::parse(call("GET", "/api/jobs/" + third).body);
  if (third_status["state"] == "queued") {
    EXPECT_EQ(third_status["queue_position"], 0);
  }
  // The first one, cancelled too, and the third runs; the cancelled queued job never got a step.
  EXPECT_EQ(call("DELETE", "/api/jobs/" + first).status, 202);
  EXPECT_EQ(poll_job(get, first, [](const json& s) { return s["state"] != "running"; })["state"], "cancelled");
  EXPECT_EQ(poll_job(get, third, [](const json& s) { return s["state"] == "done"; })["state"], "done");
  const json never = json::parse(call("GET", "/api/jobs/" + queued).body);
  EXPECT_EQ(never["state"], "cancelled");
  EXPECT_FALSE(never.contains("steps_done")) << never.dump().substr(0, 300);
}

// The cancel a leaving page sends (explorer.js on pagehide: navigator.sendBeacon, which can set no
// header): POST /api/jobs/ID/cancel with an empty body, no Content-Type and no Authorization. It is
// honoured on a server with --token, for a queued job (200, cancelled at once) and a running one
// (202, then cancelled); everything else still needs the token (a GET of the job's status, the
// DELETE, a cancel with a body, a POST elsewhere with an empty body), a body without the JSON type
// still gets 415 on a server without a token, and the Host check still applies.
TEST_F(ServerApi, ALeavingPagesBeaconCancelsItsJobWithoutTokenOrJsonType) {
  server::ApiOptions o;
  o.n_threads = 1;
  o.token = "s3cret-token";
  Api guarded(model_, o);
  const auto with = [&](const std::string& method, const std::string& path, const std::string& body,
                        std::map<std::string, std::string> headers) {
    headers.emplace("host", "127.0.0.1:8080");
    return guarded.handle(Request{method, path, {}, body, std::move(headers)});
  };
  const std::map<std::string, std::string> authorized = {{"authorization", "Bearer s3cret-token"}, {"content-type", "application/json"}};
  const auto get = [&](const std::string& m, const std::string& p) { return with(m, p, "", authorized); };
  const auto submit = [&](const json& body) {
    const Reply r = guarded.handle(Request{"POST", "/api/explain", {{"async", "1"}}, body.dump(),
                                           {{"host", "127.0.0.1:8080"}, {"authorization", "Bearer s3cret-token"}, {"content-type", "application/json"}}});
    EXPECT_EQ(r.status, 202) << r.body;
    return json::parse(r.body)["job"].get<std::string>();
  };
  const json body = {{"prompt", kPrompt}, {"continuation", long_continuation()}, {"top", 3}};
  const std::string running = submit(body);
  const std::string queued = submit(body);
  // The first one mid-answer (a step explained), the second waiting behind it.
  ASSERT_EQ(poll_job(get, running, [](const json& s) {
              return s.value("steps_done", 0) >= 1 || (s["state"] != "queued" && s["state"] != "running");
            })["state"],
            "running");

  // Without the token, nothing but the beacon's own request passes.
  expect_error(with("GET", "/api/jobs/" + queued, "", {}), 401, "token");
  expect_error(with("DELETE", "/api/jobs/" + queued, "", {}), 401, "token");
  expect_error(with("POST", "/api/jobs/" + queued + "/cancel", "{}", {{"content-type", "application/json"}}), 401, "token");
  expect_error(with("POST", "/api/jobs/" + queued + "/cancel", "{}", {{"content-type", "text/plain"}}), 401, "token");
  expect_error(with("POST", "/api/predict", "", {}), 401, "token");
  expect_error(with("POST", "/api/jobs/" + queued, "", {}), 401, "token");
  expect_error(with("POST", "/api/jobs/" + queued + "/cancel", "", {{"host", "attacker.example"}}), 403, "not a name of this server");
  EXPECT_EQ(json::parse(get("GET", "/api/jobs/" + queued).body)["state"], "queued");

  // The beacon: the queued job leaves the queue at once, the running one stops at its next step.
  const Reply q = with("POST", "/api/jobs/" + queued + "/cancel", "", {});
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(json::parse(q.body)["state"], "cancelled");
  const Reply r = with("POST", "/api/jobs/" + running + "/cancel", "", {});
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(json::parse(r.body)["steps"], json::array());  // the count, never the steps' documents
  EXPECT_FALSE(json::parse(r.body).contains("result"));
  const json stopped = poll_job(get, running, [](const json& s) { return s["state"] != "running"; });
  EXPECT_EQ(stopped["state"], "cancelled");
  EXPECT_LT(stopped.value("steps_done", 0), 100);
  EXPECT_EQ(json::parse(get("GET", "/api/jobs/" + queued).body)["state"], "cancelled");
  // Again (the page's second try, or a reload after a finished job): 409; a guessed id: 404.
  expect_error(with("POST", "/api/jobs/" + running + "/cancel", "", {}), 409, "has finished (cancelled)");
  expect_error(with("POST", "/api/jobs/0123456789abcdef0123456789abcdef/cancel", "", {}), 404, "no job");

  // Without a token the same request passes too, and a body sent as text/plain still gets 415.
  const std::string job = json::parse(call("POST", "/api/explain", body.dump(), {{"async", "1"}}).body)["job"];
  expect_error(api_->handle(Request{"POST", "/api/jobs/" + job + "/cancel", {}, "{}", {{"host", "127.0.0.1:8080"}, {"content-type", "text/plain"}}}),
               415, "application/json");
  const Reply plain = api_->handle(Request{"POST", "/api/jobs/" + job + "/cancel", {}, "", {{"host", "127.0.0.1:8080"}}});
  EXPECT_TRUE(plain.status == 200 || plain.status == 202) << plain.body;
  const auto fixture_get = [](const std::string& m, const std::string& p) { return call(m, p); };
  EXPECT_EQ(poll_job(fixture_get, job, [](const json& s) { return s["state"] != "queued" && s["state"] != "running"; })["state"], "cancelled");
}

TEST_F(ServerApi, HeadGivesEveryPositionWithTokenViews) {
  const Direct d = direct(kPrompt);
  const json j = post_ok("head", {{"prompt", kPrompt}, {"layer", 1}, {"head", 2}, {"k", 4}});
  ASSERT_EQ(j["positions"].size(), d.tokens.size());
  EXPECT_EQ(j["label"], "L1H2");
  EXPECT_DOUBLE_EQ(j["score"].get<double>(), d.ex.head.at({1, 2}));
  for (size_t p = 0; p < d.tokens.size(); ++p) {
    EXPECT_DOUBLE_EQ(j["positions"][p]["score"].get<double>(), d.ex.head_position.at({1, 2, static_cast<int64_t>(p)}));
    EXPECT_DOUBLE_EQ(j["positions"][p]["attn"].get<double>(), d.ex.attn_weight.at({1, 2, static_cast<int64_t>(p)}));
    EXPECT_EQ(j["positions"][p]["value"].size(), 4u);
  }
}

TEST_F(ServerApi, NeuronsGiveProjectionQueryNeuronsAndAblation) {
  const Direct d = direct(kPrompt);
  const json f = post_ok("neuron", {{"prompt", kPrompt}, {"layer", 3}, {"neuron", 7}, {"via_head", {4, 1}}});
  EXPECT_EQ(f["label"], "L3N7");
  EXPECT_DOUBLE_EQ(f["score"].get<double>(), d.ex.ffn_neuron.at({3, 7}));
  EXPECT_DOUBLE_EQ(f["coef"].get<double>(), d.ex.ffn_coef.at({3, 7}));
  EXPECT_EQ(f["raw"]["top"].size(), 10u);
  EXPECT_EQ(f["hidden"]["head"], "L4H1");
  const Intervention iv{{{3, 7}}, {}, {}, -1};
  const AblationResult a = ablate(*model_, d.tokens, d.ex.target, iv, d.eo.position, 1);
  EXPECT_DOUBLE_EQ(f["ablation"]["after"]["prob"].get<double>(), a.after.prob);
  EXPECT_EQ(f["ablation"]["level"], "parameter");

  const json at = post_ok("neuron", {{"prompt", kPrompt}, {"layer", 2}, {"head", 1}, {"dim", 3}, {"pos", 1}});
  EXPECT_EQ(at["label"], "L2H1D3@1");
  EXPECT_DOUBLE_EQ(at["score"].get<double>(), d.ex.attn_neuron.at({2, 1, 3, 1}));
  ASSERT_FALSE(at["query_ffn_neurons"].empty());
  const ScoreArray q = reslens::query_ffn_neurons(*model_, d.run, 2, 1, 3, 1, d.ex.attn_neuron.at({2, 1, 3, 1}));
  const json& q0 = at["query_ffn_neurons"][0];
  EXPECT_DOUBLE_EQ(q0["score"].get<double>(), q.at({q0["layer"].get<int64_t>(), q0["neuron"].get<int64_t>()}));
  EXPECT_EQ(at["ablation"]["level"], "activation");
}

TEST_F(ServerApi, AblateMatchesTheLibrary) {
  const Direct d = direct(kPrompt);
  const json j = post_ok("ablate", {{"prompt", kPrompt}, {"heads", {{1, 0}, {2, 3}}}, {"ffn", {{4, 10}}}});
  Intervention iv;
  iv.heads = {{1, 0}, {2, 3}};
  iv.ffn_neurons = {{4, 10}};
  const AblationResult a = ablate(*model_, d.tokens, d.ex.target, iv, d.eo.position, 1);
  EXPECT_EQ(j["target"]["id"], d.ex.target);
  EXPECT_DOUBLE_EQ(j["before"]["prob"].get<double>(), a.before.prob);
  EXPECT_DOUBLE_EQ(j["after"]["prob"].get<double>(), a.after.prob);
  EXPECT_EQ(j["after"]["rank"], a.after.rank);
  const json act = post_ok("ablate", {{"prompt", kPrompt}, {"level", "activation"}, {"attn", {{1, 1, 2, 0}}}});
  EXPECT_EQ(act["level"], "activation");
}

TEST_F(ServerApi, BadRequestsGet4xxAndTheApiKeepsAnswering) {
  const auto& c = model_->config();
  expect_error(call("POST", "/api/explain", "{\"prompt\": "), 400, "malformed JSON");
  expect_error(call("POST", "/api/explain", ""), 400, "JSON object");
  expect_error(call("POST", "/api/explain", "[1, 2]"), 400, "JSON object");
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "colour": "red"})"), 400, "unknown field 'colour'");
  expect_error(call("POST", "/api/explain", R"({"prompt": 5})"), 400, "'prompt' must be a string");
  expect_error(call("POST", "/api/explain", R"({})"), 400, "'prompt' is required");
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "top": 0})"), 400, "out of range");
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "position": 40})"), 400, "out of range");
  // 2^64 - 1 is not -1 (nlohmann would wrap it): out of range, named.
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "position": 18446744073709551615})"), 400,
               "'position' = 18446744073709551615 is out of range");
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "target": 999999999})"), 400, "out of range");
  expect_error(call("POST", "/api/explain", R"({"prompt": "hi", "target": [1]})"), 400, "token id");
  expect_error(call("POST", "/api/head", json{{"prompt", "hi"}, {"layer", c.n_layers}, {"head", 0}}.dump()), 400,
               "'layer'");
  expect_error(call("POST", "/api/head", json{{"prompt", "hi"}, {"layer", 0}, {"head", -1}}.dump()), 400, "'head'");
  expect_error(call("POST", "/api/neuron", json{{"prompt", "hi"}, {"layer", 0}, {"neuron", c.d_mlp}}.dump()), 400,
               "'neuron'");
  expect_error(call("POST", "/api/neuron", R"({"prompt": "Once upon", "layer": 0, "head": 0, "dim": 0, "pos": 9})"), 400,
               "after the explained position");
  expect_error(call("POST", "/api/neuron", R"({"prompt": "hi", "layer": 0, "neuron": 1, "head": 0})"), 400, "give");
  expect_error(call("POST", "/api/ablate", R"({"prompt": "hi"})"), 400, "nothing to ablate");
  expect_error(call("POST", "/api/ablate", R"({"prompt": "hi", "ffn": [[0]]})"), 400, "ffn[0]");
  expect_error(call("POST", "/api/ablate", R"({"prompt": "hi", "attn": [[0, 0, 0, 0]]})"), 400, "activation");
  expect_error(call("POST", "/api/ablate", R"({"prompt": "hi", "heads": [[0, 99]]})"), 400, "out of range");
  expect_error(call("POST", "/api/predict", std::string(70 * 1024, ' ')), 413, "limit");
  expect_error(call("GET", "/api/explain"), 405, "POST");
  expect_error(call("POST", "/api/info"), 405, "GET");
  expect_error(call("DELETE", "/"), 405, "GET");
  expect_error(call("GET", "/etc/passwd"), 404, "not found");
  expect_error(call("GET", "/api/../../etc/passwd"), 404, "not found");
  expect_error(call("POST", "/api/nothing", "{}"), 404, "not found");
  expect_error(call("POST", "/api/predict", json{{"prompt", [] { std::string s; for (int i = 0; i < 700; ++i) s += " a"; return s; }()}}.dump()), 400, "at most");
  // Still serving.
  EXPECT_EQ(post_ok("predict", {{"prompt", "hi"}})["top"].size(), 10u);
}

TEST_F(ServerApi, ServesOnlyItsOwnPage) {
  const Reply r = call("GET", "/");
  if (r.status == 503) GTEST_SKIP() << r.body;  // a build without the web page
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("id=\"reslens-config\""), std::string::npos);
  EXPECT_EQ(call("GET", "/index.html").body, r.body);
}

TEST_F(ServerApi, ConcurrentCallersGetTheSingleRequestAnswers) {
  const std::vector<std::pair<std::string, json>> requests = {
      {"predict", {{"prompt", "Lily and Tom"}}},
      {"explain", {{"prompt", "Lily and Tom"}, {"top", 5}}},
      {"explain", {{"prompt", kPrompt}, {"position", 2}, {"top", 5}}},
      {"head", {{"prompt", "Lily and Tom"}, {"layer", 0}, {"head", 1}}},
      {"neuron", {{"prompt", kPrompt}, {"layer", 1}, {"neuron", 5}}},
      {"ablate", {{"prompt", kPrompt}, {"heads", {{0, 0}}}}},
  };
  std::vector<std::string> expected;
  for (const auto& [ep, body] : requests) expected.push_back(call("POST", "/api/" + ep, body.dump()).body);
  constexpr int kThreads = 8, kEach = 6;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const size_t k = static_cast<size_t>(t * 7 + i * 3) % requests.size();
        const Reply r = call("POST", "/api/" + requests[k].first, requests[k].second.dump());
        got[static_cast<size_t>(t)].push_back(r.status == 200 && r.body == expected[k] ? "ok" : r.body.substr(0, 200));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& g : got) {
    ASSERT_EQ(g.size(), static_cast<size_t>(kEach));
    for (const auto& s : g) EXPECT_EQ(s, "ok");
  }
}

// The queue itself, with work injected: a job cancelled while queued never runs its work; a running
// job that checks stop_requested() between its steps stops at the next boundary, keeps the parts it
// added and ends cancelled, and the next job runs.
namespace {
using server::Job;
using server::JobQueue;

// Waits (up to ~10 s) until `job` is in `state`.
bool wait_for(const Job& job, Job::State state) {
  for (int i = 0; i < 10000 && job.snapshot().state != state; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return job.snapshot().state == state;
}
}  // namespace

TEST(JobQueueCancel, AQueuedJobIsRemovedAndItsWorkNeverRuns) {
  JobQueue q(8, 16);
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  const auto blocker = q.submit("block", [open](Job&) {
    open.wait();
    return Reply{200, "application/json", "{}"};
  });
  ASSERT_TRUE(wait_for(*blocker, Job::State::kRunning));
  std::atomic<bool> ran{false};
  const auto queued = q.submit("queued", [&ran](Job&) {
    ran = true;
    return Reply{200, "application/json", "{}"};
  });
  EXPECT_EQ(q.ahead_of(*queued), 0u);
  EXPECT_EQ(q.cancel(queued->id()), JobQueue::CancelResult::kCancelled);
  EXPECT_EQ(queued->snapshot().state, Job::State::kCancelled);  // at once, while the blocker still runs
  EXPECT_EQ(q.pending(), 0u);
  EXPECT_EQ(queued->future().get().status, 409);  // a synchronous waiter is answered too
  gate.set_value();
  EXPECT_EQ(blocker->future().get().status, 200);
  const auto after = q.submit("after", [](Job&) { return Reply{200, "application/json", "{}"}; });
  after->future().wait();  // the worker has gone past where the cancelled job stood
  EXPECT_FALSE(ran);
  EXPECT_EQ(q.cancel(queued->id()), JobQueue::CancelResult::kFinished);
  EXPECT_EQ(q.cancel(blocker->id()), JobQueue::CancelResult::kFinished);
  EXPECT_EQ(q.cancel("no-such-job"), JobQueue::CancelResult::kUnknown);
  EXPECT_EQ(q.find(queued->id()), queued);  // kept among the finished, readable
}

TEST(JobQueueCancel, ARunningJobStopsAtItsNextStepAndKeepsItsParts) {
  JobQueue q(8, 16);
  std::promise<void> at_step_2, go_on;
  std::shared_future<void> resume = go_on.get_future().share();
  std::atomic<int> steps{0};
  const auto job = q.submit("steps", [&](Job& j) {
    for (int t = 0; t < 100; ++t) {
      j.add_part("{\"step\":" + std::to_string(t) + "}");
      ++steps;
      if (t == 2) {  // the test cancels while step 2's part is the last
        at_step_2.set_value();
        resume.wait();
      }
      if (j.stop_requested()) return Reply{409, "application/json", R"({"error": "stopped"})"};
    }
    return Reply{200, "application/json", "{}"};
  });
  std::atomic<bool> next_ran{false};
  const auto next = q.submit("next", [&](Job&) {
    next_ran = true;
    return Reply{200, "application/json", "{}"};
  });
  at_step_2.get_future().wait();
  EXPECT_EQ(q.cancel(job->id()), JobQueue::CancelResult::kStopping);
  EXPECT_EQ(job->snapshot().state, Job::State::kRunning);  // until its step boundary
  EXPECT_TRUE(job->stop_requested());
  EXPECT_EQ(q.cancel(job->id()), JobQueue::CancelResult::kStopping);  // asking again changes nothing
  go_on.set_value();
  EXPECT_EQ(job->future().get().status, 409);
  EXPECT_EQ(job->snapshot().state, Job::State::kCancelled);
  EXPECT_EQ(steps, 3);
  const auto [parts, n] = job->parts_from(1);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(parts, (std::vector<std::string>{"{\"step\":1}", "{\"step\":2}"}));
  EXPECT_EQ(next->future().get().status, 200);
  EXPECT_TRUE(next_ran);
  EXPECT_FALSE(next->stop_requested());
}

// A stop asked for while the work finishes its last step still ends the job cancelled (the client
// was answered 202), and the work's own result is not reported.
TEST(JobQueueCancel, AStopAskedForBeforeTheEndWinsOverTheResult) {
  JobQueue q(8, 16);
  std::promise<void> started, finish;
  std::shared_future<void> may_finish = finish.get_future().share();
  const auto job = q.submit("one", [&](Job&) {
    started.set_value();
    may_finish.wait();  // no step boundary checks at all
    return Reply{200, "application/json", R"({"answer": 1})"};
  });
  started.get_future().wait();
  EXPECT_EQ(q.cancel(job->id()), JobQueue::CancelResult::kStopping);
  finish.set_value();
  const Reply r = job->future().get();
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(job->snapshot().state, Job::State::kCancelled);
  EXPECT_EQ(r.body.find("answer"), std::string::npos);
}

}  // namespace
}  // namespace reslens
