// The JSON API of `reslens serve` (see api.h and docs/report.md).
#include "server/api.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string_view>

#include "report/html_page.h"
#include "reslens/error.h"
#include "reslens/explain.h"
#include "reslens/explain_request.h"
#include "reslens/explain_target.h"
#include "reslens/graph.h"
#include "reslens/report.h"
#include "reslens/token_names.h"
#include "reslens/run.h"

namespace reslens::server {

using nlohmann::json;

Reply error_reply(int status, const std::string& message) {
  return {status, "application/json", json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace)};
}

namespace {

Reply json_reply(const json& j, int status = 200) {
  return {status, "application/json", j.dump(-1, ' ', false, json::error_handler_t::replace)};
}

/// A request the client got wrong (4xx), thrown while parsing and answered at once.
struct HttpError : std::runtime_error {
  int status;
  HttpError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};
[[noreturn]] void bad(const std::string& message) { throw HttpError(400, message); }

// ---------------------------------------------------------------------------------------------
// Reading request bodies: every field is known, typed and in range, or the request is refused.

class Body {
 public:
  Body(const json& j, std::initializer_list<const char*> allowed) : j_(j) {
    if (!j.is_object()) bad("the request body must be a JSON object");
    std::set<std::string> ok(allowed.begin(), allowed.end());
    for (const auto& [key, value] : j.items()) {
      if (!ok.count(key)) {
        std::string list;
        for (const auto& a : ok) list += (list.empty() ? "" : ", ") + a;
        bad("unknown field '" + key + "' (this endpoint takes: " + list + ")");
      }
    }
  }
  bool has(const char* name) const { return j_.contains(name) && !j_.at(name).is_null(); }
  const json& at(const char* name) const { return j_.at(name); }

  std::string text(const char* name, size_t max_bytes) const {
    if (!has(name)) bad(std::string("'") + name + "' is required");
    const json& v = j_.at(name);
    if (!v.is_string()) bad(std::string("'") + name + "' must be a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_bytes) bad(std::string("'") + name + "' is longer than " + std::to_string(max_bytes) + " bytes");
    return s;
  }
  int64_t integer(const char* name, int64_t lo, int64_t hi, std::optional<int64_t> dflt = std::nullopt) const {
    if (!has(name)) {
      if (dflt) return *dflt;
      bad(std::string("'") + name + "' is required");
    }
    return check_int(j_.at(name), name, lo, hi);
  }
  bool flag(const char* name, bool dflt) const {
    if (!has(name)) return dflt;
    if (!j_.at(name).is_boolean()) bad(std::string("'") + name + "' must be true or false");
    return j_.at(name).get<bool>();
  }
  static int64_t check_int(const json& v, const std::string& name, int64_t lo, int64_t hi) {
    if (!v.is_number_integer()) bad("'" + name + "' must be an integer");
    // An unsigned number past int64's range would wrap (18446744073709551615 read as -1): out of range.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      bad("'" + name + "' = " + v.dump() + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    }
    const auto x = v.get<int64_t>();
    if (x < lo || x > hi) {
      bad("'" + name + "' = " + std::to_string(x) + " is out of range (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    }
    return x;
  }

 private:
  const json& j_;
};

// A token named in a request: an id (a JSON integer), or a text (a string) resolved by the library's
// rule (reslens/explain_request.h).
std::optional<TokenName> token_name(const Body& b, const char* name, int64_t vocab) {
  if (!b.has(name)) return std::nullopt;
  const json& v = b.at(name);
  TokenName t;
  if (v.is_number_integer()) {
    t.id = static_cast<int32_t>(Body::check_int(v, name, 0, vocab - 1));
  } else if (v.is_string()) {
    t.text = v.get<std::string>();
    if (t.text.empty()) bad(std::string("'") + name + "' is empty: name a token (text or id)");
    if (t.text.size() > 256) bad(std::string("'") + name + "' is longer than 256 bytes");
  } else {
    bad(std::string("'") + name + "' must be a token id (integer) or a token's text (string)");
  }
  return t;
}

/// How an explanation's scores are computed: explain's precision and speed knobs (docs/explain.md,
/// "Precision and speed knobs"), named as Python's keywords, defaults as ExplainOptions'.
struct ScoreKnobs {
  ScoreMethod method = ScoreMethod::kAuto;
  double bound_tol = ExplainOptions{}.bound_tol;
  bool projection_cache = true, projection_sketch = true;
  int extended_head = ExplainOptions{}.extended_head;
  void apply(ExplainOptions& o) const {
    o.method = method;
    o.bound_tol = bound_tol;
    o.projection_cache = projection_cache;
    o.projection_sketch = projection_sketch;
    o.extended_head = extended_head;
  }
};

/// The explanation a request refers to: a prompt and, optionally, position, target and foil, and
/// how its scores are computed.
struct Context {
  std::string prompt;
  int64_t position = -1;
  std::optional<TokenName> target, foil;
  ScoreKnobs knobs;
};

constexpr size_t kMaxPromptBytes = 16 * 1024;
// The fields of Context, which every endpoint that explains accepts (the knobs: those whose answer
// comes from an explanation; /api/ablate takes prompt, position and target only).
#define RESLENS_KNOB_FIELDS "method", "bound_tol", "projection_cache", "projection_sketch", "extended_head"
#define RESLENS_CONTEXT_FIELDS "prompt", "position", "target", "foil", RESLENS_KNOB_FIELDS

// The knobs checked by the library's rule (parse_score_method, check_bound_tol), as the CLI's
// --method/--bound-tol and Python's keywords are, so a value refused at one front door is refused at
// all; a field of the wrong JSON type is refused here, naming it.
ScoreKnobs score_knobs(const Body& b) {
  ScoreKnobs k;
  try {
    if (b.has("method")) {
      const json& v = b.at("method");
      if (!v.is_string()) bad("'method' must be \"auto\", \"full\" or \"bounded\", not " + v.dump());
      k.method = parse_score_method(v.get_ref<const std::string&>());
    }
    if (b.has("bound_tol")) {
      const json& v = b.at("bound_tol");
      if (!v.is_number()) bad("'bound_tol' must be a positive finite number, not " + v.dump());
      k.bound_tol = v.get<double>();
      check_bound_tol(k.bound_tol);  // 0 or negative (JSON has no nan or inf; 1e999 fails to parse)
    }
    if (b.has("extended_head")) {
      const json& v = b.at("extended_head");
      if (!v.is_number_integer()) bad("'extended_head' must be -1 (auto), 0 (none) or a number of tokens, not " + v.dump());
      const auto n = v.get<int64_t>();
      check_extended_head(n);
      k.extended_head = static_cast<int>(n);
    }
  } catch (const InvalidArgument& e) {
    bad(e.what());
  }
  k.projection_cache = b.flag("projection_cache", k.projection_cache);
  k.projection_sketch = b.flag("projection_sketch", k.projection_sketch);
  return k;
}

Context context(const Body& b, const ModelConfig& c, size_t max_tokens) {
  Context x;
  x.prompt = b.text("prompt", kMaxPromptBytes);
  x.position = b.integer("position", -static_cast<int64_t>(max_tokens), static_cast<int64_t>(max_tokens) - 1, -1);
  x.target = token_name(b, "target", c.d_vocab);
  x.foil = token_name(b, "foil", c.d_vocab);
  x.knobs = score_knobs(b);
  return x;
}

json tokens_json(const Model& m, const std::vector<int32_t>& ids, const std::vector<double>* values = nullptr) {
  json a = json::array();
  const Tokenizer& tok = m.tokenizer();
  for (size_t i = 0; i < ids.size(); ++i) {
    json t = {{"id", ids[i]}, {"text", tok.token_text(ids[i])}};
    if (values != nullptr) t["value"] = (*values)[i];
    a.push_back(std::move(t));
  }
  return a;
}

json token_list_json(const Model& m, const TokenList& t) {
  return {{"top", tokens_json(m, t.top, &t.top_values)}, {"bottom", tokens_json(m, t.bottom, &t.bottom_values)}};
}

json stats_json(const TargetStats& s) {
  return {{"prob", s.prob}, {"log_prob", s.log_prob}, {"rank", s.rank}, {"rr", s.rr}, {"top1", s.top1}};
}

// 1 + how many entries score strictly higher.
int64_t rank_of(const std::vector<double>& values, double v) {
  return 1 + std::count_if(values.begin(), values.end(), [&](double x) { return x > v; });
}

std::string strip_json_exception(const std::string& what) {
  const auto p = what.find("] ");
  return what.rfind("[json.exception", 0) == 0 && p != std::string::npos ? what.substr(p + 2) : what;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The worker's side: runs and explanations are cached (a click on a head or a neuron reuses the
// explanation the page shows). Used only by the worker thread, so it needs no lock.

namespace {
struct Prepared {
  std::vector<int32_t> tokens;
  std::shared_ptr<const RunResult> run;
  ExplainOptions eo;
  std::vector<std::string> notes;
  std::shared_ptr<const Explanation> ex;  ///< when asked for
};
}  // namespace

class Engine {
 public:
  Engine(const Model& m, int threads, size_t max_tokens, const ApiOptions& o)
      : m_(m), threads_(threads), max_tokens_(max_tokens), chat_(o.chat), chat_system_(o.chat_system) {}

  Prepared prepare(const Context& x, Job& job, bool explained) {
    job.set_stage("tokenizing");
    Prepared p;
    p.tokens = tokenize(x.prompt);
    // OutOfRange: 400 (the body check bounds the position by the token limit, so it fits an int)
    const int P = resolve_position(static_cast<int>(std::clamp<int64_t>(x.position, INT_MIN, INT_MAX)), p.tokens.size());
    // The library's naming rule (reslens/explain_request.h), as every front door uses it; a bad
    // name fails before the model runs.
    std::optional<TokenCandidates> target, foil;
    if (x.target) target = token_candidates(m_, *x.target, "target");
    if (x.foil) foil = token_candidates(m_, *x.foil, "foil");
    job.set_stage("forward pass");
    p.run = run_for(p.tokens);
    const std::span<const float> logits = logits_at(m_, *p.run, P, p.tokens.size());
    p.eo.position = P;
    p.eo.n_threads = threads_;
    x.knobs.apply(p.eo);
    p.eo.target = target ? pick_token(m_, *target, logits, "target", p.notes) : -1;
    p.eo.foil = foil ? pick_token(m_, *foil, logits, "foil", p.notes) : -1;
    if (explained) {
      job.set_stage("attribution");
      // A client that cancels the job (DELETE /api/jobs/ID) stops the explain at its next phase; one
      // that polls it (?async=1) sees the phase and its layers ("attribution: ffn 12/33").
      p.ex = explanation_for(p, [&job] { return job.stop_requested(); }, [&job](const ExplainProgress& e) {
        std::string stage = "attribution: " + std::string(e.phase);
        if (e.total > 1) stage += " " + std::to_string(e.done) + "/" + std::to_string(e.total);
        job.set_stage(std::move(stage));
      });
    }
    return p;
  }

  const Model& model() const { return m_; }
  int threads() const { return threads_; }

  /// Whether the context's target or foil is a text of several tokens: /api/explain then explains
  /// the whole sequence, as `reslens explain --target " New Delhi"` does (explain_answer()).
  bool names_a_sequence(const Context& x) const {
    auto several = [&](const std::optional<TokenName>& n, const char* what) {
      return n.has_value() && !token_sequence(m_, *n, what).rest.empty();
    };
    return several(x.target, "target") || several(x.foil, "foil");
  }

  /// A whole answer (issue 19): the model's own of up to `generate` tokens, the `continuation`
  /// given (tokenized with the prompt's text, as `explain --continuation` does), or (neither) the
  /// context's target and foil sequences, every token explained at its position by the library's
  /// explain_generated() / explain_target().
  ExplainedTarget explain_answer(const Context& x, int64_t generate, const GenerateOptions& sampling,
                                 const std::optional<std::string>& continuation, const ReportOptions& ro, Job& job) {
    job.set_stage("tokenizing");
    ExplainRequest req;
    req.tokens = tokenize(x.prompt);
    req.position = static_cast<int>(std::clamp<int64_t>(x.position, INT_MIN, INT_MAX));
    req.options.n_threads = threads_;
    x.knobs.apply(req.options);
    // A client polling the job (?async=1) sees the steps advance.
    req.on_step = [&job](int done, int total) {
      job.set_stage("explained " + std::to_string(done) + " of " + std::to_string(total) + " tokens");
    };
    // ... and reads each step's document as soon as it is explained (GET /api/jobs/ID "steps").
    req.on_step_explained = [&](const TeacherForcedPass& pass, size_t t) {
      std::string line = target_step_line(m_, pass, t, "target", static_cast<int>(t), ro);
      line.pop_back();  // the newline
      job.add_part(std::move(line));
    };
    // A client that cancels the job (DELETE /api/jobs/ID) stops it at the next step boundary; the
    // steps streamed so far stay readable.
    req.should_stop = [&job] { return job.stop_requested(); };
    if (generate == 0 && !continuation) {  // a target or foil of several tokens (names_a_sequence)
      req.target = x.target;
      req.foil = x.foil;
      size_t longest = 1;
      if (x.target) longest = std::max(longest, 1 + token_sequence(m_, *x.target, "target").rest.size());
      if (x.foil) longest = std::max(longest, 1 + token_sequence(m_, *x.foil, "foil").rest.size());
      check_length(req.tokens.size() + longest - 1);
      job.set_stage("explaining " + std::to_string(longest) + " tokens");
      return explain_target(m_, req);
    }
    if (continuation) {
      const Tokenizer& tok = m_.tokenizer();
      const std::string text = (chat_ ? format_chat(*chat_, x.prompt, chat_system_) : x.prompt) + *continuation;
      req.target_tokens = continuation_tokens(m_, req.tokens, tok.encode(text, tok.add_bos_default()), *continuation);
      check_length(req.tokens.size() + req.target_tokens.size() - 1);
      job.set_stage("explaining " + std::to_string(req.target_tokens.size()) + " tokens");
      return explain_target(m_, req);
    }
    check_length(req.tokens.size() + static_cast<size_t>(generate) - 1);
    job.set_stage("generating and explaining up to " + std::to_string(generate) + " tokens");
    GenerateOptions go = sampling;
    go.max_tokens = generate;
    return explain_generated(m_, req, go);
  }

 private:
  // The server's token limit holds for the teacher-forced pass of an answer too.
  void check_length(size_t n) const {
    if (n > max_tokens_) {
      throw HttpError(400, "the prompt and the answer need " + std::to_string(n) + " positions; this server takes at most " +
                               std::to_string(max_tokens_));
    }
  }

  std::vector<int32_t> tokenize(const std::string& prompt) const {
    const Tokenizer& tok = m_.tokenizer();
    const std::string text = chat_ ? format_chat(*chat_, prompt, chat_system_) : prompt;
    std::vector<int32_t> ids = tok.encode(text, tok.add_bos_default());
    if (ids.empty()) throw HttpError(400, "the prompt has no tokens: type some text");
    if (ids.size() > max_tokens_) {
      throw HttpError(400, "the prompt is " + std::to_string(ids.size()) + " tokens; this server takes at most " +
                               std::to_string(max_tokens_));
    }
    return ids;
  }

  std::shared_ptr<const RunResult> run_for(const std::vector<int32_t>& tokens) {
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (runs_[i].tokens == tokens) {
        auto hit = runs_[i];
        runs_.erase(runs_.begin() + static_cast<std::ptrdiff_t>(i));
        runs_.push_front(hit);
        return hit.run;
      }
    }
    RunOptions ro;
    ro.capture = explain_capture();
    ro.all_logits = true;
    ro.n_threads = threads_;
    auto r = std::make_shared<const RunResult>(reslens::run(m_, tokens, ro));
    runs_.push_front({tokens, r});
    if (runs_.size() > kRuns) runs_.pop_back();
    return r;
  }

  std::shared_ptr<const Explanation> explanation_for(const Prepared& p, const std::function<bool()>& should_stop,
                                                     const ExplainProgressFn& on_progress = {}) {
    for (size_t i = 0; i < explains_.size(); ++i) {
      const auto& e = explains_[i];
      // The knobs too: a page that asks for the full method must not get a bounded explanation's scores.
      if (e.tokens == p.tokens && e.position == p.eo.position && e.target == p.eo.target && e.foil == p.eo.foil &&
          same_knobs(e.options, p.eo)) {
        auto hit = explains_[i];
        explains_.erase(explains_.begin() + static_cast<std::ptrdiff_t>(i));
        explains_.push_front(hit);
        return hit.ex;
      }
    }
    auto ex = std::make_shared<const Explanation>(explain(m_, *p.run, p.tokens, p.eo, should_stop, on_progress));
    explains_.push_front({p.tokens, p.eo.position, p.eo.target, p.eo.foil, p.eo, ex});
    if (explains_.size() > kExplains) explains_.pop_back();
    return ex;
  }

  struct RunEntry {
    std::vector<int32_t> tokens;
    std::shared_ptr<const RunResult> run;
  };
  struct ExplainEntry {
    std::vector<int32_t> tokens;
    int position;
    int32_t target, foil;
    ExplainOptions options;  ///< as explained: its knobs are part of the key
    std::shared_ptr<const Explanation> ex;
  };
  static bool same_knobs(const ExplainOptions& a, const ExplainOptions& b) {
    return a.method == b.method && a.bound_tol == b.bound_tol && a.projection_cache == b.projection_cache &&
           a.projection_sketch == b.projection_sketch && a.extended_head == b.extended_head;
  }
  static constexpr size_t kRuns = 2, kExplains = 4;

  const Model& m_;
  const int threads_;
  const size_t max_tokens_;
  const std::optional<ChatTemplate> chat_;
  const std::string chat_system_;
  std::deque<RunEntry> runs_;          ///< most recent first
  std::deque<ExplainEntry> explains_;  ///< most recent first
};

namespace {

// ---------------------------------------------------------------------------------------------
// The endpoints' work, run on the worker. Each returns the reply's JSON.

json do_predict(Engine& e, const Context& x, int64_t top_k, Job& job) {
  Prepared p = e.prepare(x, job, false);
  const Model& m = e.model();
  const int64_t V = m.config().d_vocab;
  const float* logits = p.run->logits.row(static_cast<int64_t>(p.tokens.size()) - 1);
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  std::vector<int32_t> idx(static_cast<size_t>(V));
  for (int32_t i = 0; i < static_cast<int32_t>(V); ++i) idx[static_cast<size_t>(i)] = i;
  const auto k = static_cast<std::ptrdiff_t>(std::min<int64_t>(top_k, V));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  json top = json::array();
  for (std::ptrdiff_t i = 0; i < k; ++i) {
    const int32_t id = idx[static_cast<size_t>(i)];
    top.push_back({{"id", id}, {"text", m.tokenizer().token_text(id)}, {"logit", logits[id]},
                   {"prob", std::exp(static_cast<double>(logits[id]) - mx) / sum}});
  }
  return {{"tokens", tokens_json(m, p.tokens)}, {"top", top}};
}

json do_explain(Engine& e, const Context& x, int64_t top, Job& job) {
  Prepared p = e.prepare(x, job, true);
  job.set_stage("vocabulary views");
  ReportOptions ro;
  ro.top = static_cast<int>(top);
  json j = json::parse(explain_json(e.model(), *p.run, p.tokens, *p.ex, p.eo, ro));
  if (!p.notes.empty()) j["notes"] = p.notes;
  return j;
}

// POST /api/graph: the prediction's circuit, graph_json()'s document for the same prompt, position
// and target as /api/explain (docs/graph.md), with the target's naming notes when there are any.
json do_graph(Engine& e, const Context& x, const GraphOptions& go, Job& job) {
  Prepared p = e.prepare(x, job, false);  // tokens, position and the target resolved as for /api/explain
  job.set_stage("circuit");
  ExplainRequest req;
  req.tokens = p.tokens;
  req.position = p.eo.position;
  if (p.eo.target >= 0) req.target = TokenName{p.eo.target, ""};
  req.options.n_threads = e.threads();
  x.knobs.apply(req.options);  // the circuit's scores computed as the request asks
  json j = json::parse(graph_json(e.model(), graph(e.model(), req, go)));
  if (!p.notes.empty()) j["notes"] = p.notes;
  return j;
}

// POST /api/explain with "generate" or "continuation": the target document of the whole answer
// (docs/explain-target-schema.json), with the notes.
struct AnswerRequest {
  int64_t generate = 0;
  GenerateOptions sampling;
  std::optional<std::string> continuation;
};

json do_explain_answer(Engine& e, const Context& x, const AnswerRequest& a, int64_t top, Job& job) {
  ReportOptions ro;
  ro.top = static_cast<int>(top);
  const ExplainedTarget done = e.explain_answer(x, a.generate, a.sampling, a.continuation, ro, job);
  job.set_stage("vocabulary views");
  json j = json::parse(target_json(e.model(), done, ro));
  if (!done.notes.empty()) j["notes"] = done.notes;
  return j;
}

struct HeadRequest {
  Context x;
  int layer = 0, head = 0, k = 10;
};

json do_head(Engine& e, const HeadRequest& r, Job& job) {
  Prepared p = e.prepare(r.x, job, true);
  job.set_stage("token views");
  const Model& m = e.model();
  json positions = json::array();
  for (const PositionView& v : head_position_views(m, *p.run, *p.ex, p.eo, r.layer, r.head, r.k)) {
    auto texts = [&](const std::vector<int32_t>& ids) {
      json a = json::array();
      for (int32_t id : ids) a.push_back(m.tokenizer().token_text(id));
      return a;
    };
    positions.push_back({{"pos", v.position}, {"token", m.tokenizer().token_text(p.tokens[static_cast<size_t>(v.position)])},
                         {"score", v.imp}, {"attn", v.attn}, {"layer_input", texts(v.layer_input_top)},
                         {"key", texts(v.key_top)}, {"value", texts(v.value_top)}});
  }
  const double score = p.ex->head.at({r.layer, r.head});
  return {{"layer", r.layer}, {"head", r.head}, {"label", label_head(r.layer, r.head)}, {"score", score},
          {"rank", rank_of(p.ex->head.values, score)}, {"positions", positions}};
}

struct NeuronRequest {
  Context x;
  bool attn = false;
  int layer = 0, neuron = 0, head = 0, dim = 0, pos = 0, k = 10;
  int via_layer = -1, via_head = -1;
  bool ablate = true;
};

json do_neuron(Engine& e, const NeuronRequest& r, Job& job) {
  Prepared p = e.prepare(r.x, job, true);
  const Model& m = e.model();
  const Explanation& ex = *p.ex;
  job.set_stage("vocabulary projection");
  json j;
  Intervention iv;
  if (r.attn) {
    if (r.pos > ex.position) {
      throw HttpError(400, "'pos' = " + std::to_string(r.pos) + " is after the explained position " +
                               std::to_string(ex.position) + " (source positions are 0.." + std::to_string(ex.position) + ")");
    }
    const double score = ex.attn_neuron.at({r.layer, r.head, r.dim, r.pos});
    const NeuronView nv = attn_neuron_view(m, *p.run, ex, p.eo, r.layer, r.head, r.dim, r.pos, r.k);
    j = {{"kind", "attn"}, {"layer", r.layer}, {"head", r.head}, {"dim", r.dim}, {"pos", r.pos},
         {"label", label_attn_neuron(r.layer, r.head, r.dim, r.pos)}, {"score", score},
         {"rank", rank_of(ex.attn_neuron.values, score)}, {"coef", nv.coef},
         {"raw", token_list_json(m, nv.raw)}, {"promoted", token_list_json(m, nv.signed_)}};
    job.set_stage("query neurons");
    const ScoreArray q = reslens::query_ffn_neurons(m, *p.run, r.layer, r.head, r.dim, r.pos, score);
    std::vector<int64_t> order(static_cast<size_t>(q.size()));
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    const auto n = static_cast<std::ptrdiff_t>(std::min<size_t>(20, order.size()));
    std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int64_t a, int64_t b) {
      return q.values[static_cast<size_t>(a)] > q.values[static_cast<size_t>(b)] ||
             (q.values[static_cast<size_t>(a)] == q.values[static_cast<size_t>(b)] && a < b);
    });
    const int64_t N = m.config().d_mlp;
    json qn = json::array();
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const int64_t idx = order[static_cast<size_t>(i)];
      qn.push_back({{"layer", idx / N}, {"neuron", idx % N}, {"label", label_ffn_neuron(idx / N, idx % N)},
                    {"score", q.values[static_cast<size_t>(idx)]}});
    }
    j["query_ffn_neurons"] = qn;
    iv.attn_neurons.push_back({r.layer, r.head, r.dim, r.pos});
    iv.position = ex.position;  // activation level: only this source position's share at P
  } else {
    const double score = ex.ffn_neuron.at({r.layer, r.neuron});
    const NeuronView nv = ffn_neuron_view(m, *p.run, ex, p.eo, r.layer, r.neuron, r.k);
    j = {{"kind", "ffn"}, {"layer", r.layer}, {"neuron", r.neuron}, {"label", label_ffn_neuron(r.layer, r.neuron)},
         {"score", score}, {"rank", rank_of(ex.ffn_neuron.values, score)}, {"coef", nv.coef},
         {"query_score", ex.query_ffn_neuron.at({r.layer, r.neuron})},
         {"raw", token_list_json(m, nv.raw)}, {"promoted", token_list_json(m, nv.signed_)}};
    if (r.via_layer >= 0) {
      const TokenList h = hidden_view(m, *p.run, p.eo, r.layer, r.neuron, r.via_layer, r.via_head, r.k);
      j["hidden"] = token_list_json(m, h);
      j["hidden"]["head"] = label_head(r.via_layer, r.via_head);
    }
    iv.ffn_neurons.push_back({r.layer, r.neuron});  // parameter level: fc2_k zeroed everywhere
  }
  if (r.ablate) {
    job.set_stage("ablation");
    const AblationResult a = ablate(m, p.tokens, ex.target, iv, ex.position, e.threads());
    j["ablation"] = {{"level", r.attn ? "activation" : "parameter"}, {"target", ex.target},
                     {"before", stats_json(a.before)}, {"after", stats_json(a.after)}};
  }
  return j;
}

struct AblateRequest {
  Context x;
  bool activation = false;
  Intervention iv;
};

json do_ablate(Engine& e, const AblateRequest& r, Job& job) {
  Prepared p = e.prepare(r.x, job, false);
  const Model& m = e.model();
  int32_t w = p.eo.target;
  if (w < 0) w = target_stats(std::span<const float>(p.run->logits.row(p.eo.position), static_cast<size_t>(m.config().d_vocab)), 0).top1;
  Intervention iv = r.iv;
  for (const auto& a : iv.attn_neurons) {
    if (a.source_pos > p.eo.position) {
      throw HttpError(400, "an attention neuron's source position " + std::to_string(a.source_pos) +
                               " is after the measured position " + std::to_string(p.eo.position));
    }
  }
  if (r.activation) iv.position = p.eo.position;
  job.set_stage("ablation");
  const AblationResult a = ablate(m, p.tokens, w, iv, p.eo.position, e.threads());
  json j = {{"target", {{"id", w}, {"text", m.tokenizer().token_text(w)}}}, {"position", p.eo.position},
            {"level", r.activation ? "activation" : "parameter"}, {"before", stats_json(a.before)},
            {"after", stats_json(a.after)}};
  if (!p.notes.empty()) j["notes"] = p.notes;
  return j;
}

// Turns whatever the work throws into a reply: the client's mistakes are 4xx, the rest 500.
template <class F>
Reply guarded(F&& f) {
  try {
    return json_reply(f());
  } catch (const HttpError& e) {
    return error_reply(e.status, e.what());
  } catch (const InvalidArgument& e) {
    return error_reply(400, e.what());
  } catch (const OutOfRange& e) {
    return error_reply(400, e.what());
  } catch (const UnsupportedError& e) {
    return error_reply(422, e.what());
  } catch (const Cancelled& e) {  // a client cancelled the job (the job ends "cancelled" either way)
    return error_reply(409, e.what());
  } catch (const std::bad_alloc&) {
    return error_reply(503, "out of memory");
  } catch (const std::exception& e) {
    return error_reply(500, std::string("internal error: ") + e.what());
  }
}

// POST /api/predict
JobQueue::Work predict_work(Engine* eng, const json& body, const ModelConfig&, size_t) {
  const Body b(body, {"prompt", "top_k"});
  Context x;
  x.prompt = b.text("prompt", kMaxPromptBytes);
  const int64_t k = b.integer("top_k", 1, 100, 10);
  return [eng, x, k](Job& job) { return guarded([&] { return do_predict(*eng, x, k, job); }); };
}

// POST /api/explain
JobQueue::Work explain_work(Engine* eng, const json& body, const ModelConfig& c, size_t max_tokens) {
  const Body b(body, {RESLENS_CONTEXT_FIELDS, "top", "generate", "continuation", "temperature", "seed"});
  const Context x = context(b, c, max_tokens);
  const int64_t top = b.integer("top", 1, 1000, 20);
  if (b.has("generate") || b.has("continuation")) {  // a whole answer, every token explained
    if (b.has("generate") && b.has("continuation")) bad("give 'generate' or 'continuation', not both");
    if (x.target || x.foil) bad("'generate' and 'continuation' name the answer: give no 'target' or 'foil' with them");
    AnswerRequest a;
    if (b.has("continuation")) {
      a.continuation = b.text("continuation", kMaxPromptBytes);
    } else {
      a.generate = b.integer("generate", 1, static_cast<int64_t>(max_tokens));
      if (b.has("temperature")) {
        const json& t = b.at("temperature");
        if (!t.is_number() || !(t.get<double>() >= 0) || !std::isfinite(t.get<double>())) {
          bad("'temperature' must be a number >= 0 (0 = greedy)");
        }
        a.sampling.temperature = t.get<double>();
      }
      a.sampling.seed = static_cast<uint64_t>(b.integer("seed", 0, std::numeric_limits<int64_t>::max(), 0));
    }
    return [eng, x, a, top](Job& job) { return guarded([&] { return do_explain_answer(*eng, x, a, top, job); }); };
  }
  if (b.has("temperature") || b.has("seed")) bad("'temperature' and 'seed' sample a generated answer: they need 'generate'");
  return [eng, x, top](Job& job) {
    return guarded([&] {
      // A target or foil of several tokens: the sequence's document, every step streamed as an answer's.
      if (eng->names_a_sequence(x)) return do_explain_answer(*eng, x, AnswerRequest{}, top, job);
      return do_explain(*eng, x, top, job);
    });
  };
}

// POST /api/graph: the context of /api/explain (no foil: the circuit is of the target alone) and
// the pruning shares, each checked here so a bad one is a 400 before anything runs.
JobQueue::Work graph_work(Engine* eng, const json& body, const ModelConfig& c, size_t max_tokens) {
  const Body b(body, {"prompt", "position", "target", "node_threshold", "edge_threshold", "top_values", "top_heads",
                      "top_queries", RESLENS_KNOB_FIELDS});
  const Context x = context(b, c, max_tokens);
  GraphOptions go;
  for (const auto& [name, share] : {std::pair<const char*, double*>{"node_threshold", &go.node_threshold},
                                    std::pair<const char*, double*>{"edge_threshold", &go.edge_threshold}}) {
    if (!b.has(name)) continue;
    const json& v = b.at(name);
    if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= 1)) {
      bad(std::string("'") + name + "' = " + v.dump() + " must be a number in [0, 1]");
    }
    *share = v.get<double>();
  }
  go.top_values = static_cast<int>(b.integer("top_values", 0, 1000, go.top_values));
  go.top_heads = static_cast<int>(b.integer("top_heads", 0, 1000, go.top_heads));
  go.top_queries = static_cast<int>(b.integer("top_queries", 0, 1000, go.top_queries));
  return [eng, x, go](Job& job) { return guarded([&] { return do_graph(*eng, x, go, job); }); };
}

// POST /api/head
JobQueue::Work head_work(Engine* eng, const json& body, const ModelConfig& c, size_t max_tokens) {
  const Body b(body, {RESLENS_CONTEXT_FIELDS, "layer", "head", "k"});
  HeadRequest r;
  r.x = context(b, c, max_tokens);
  r.layer = static_cast<int>(b.integer("layer", 0, c.n_layers - 1));
  r.head = static_cast<int>(b.integer("head", 0, c.n_heads - 1));
  r.k = static_cast<int>(b.integer("k", 1, 50, 10));
  return [eng, r](Job& job) { return guarded([&] { return do_head(*eng, r, job); }); };
}

// POST /api/neuron
JobQueue::Work neuron_work(Engine* eng, const json& body, const ModelConfig& c, size_t max_tokens) {
  const Body b(body, {RESLENS_CONTEXT_FIELDS, "layer", "neuron", "head", "dim", "pos", "via_head", "k", "ablate"});
  NeuronRequest r;
  r.x = context(b, c, max_tokens);
  r.layer = static_cast<int>(b.integer("layer", 0, c.n_layers - 1));
  r.attn = b.has("head") || b.has("dim") || b.has("pos");
  if (r.attn) {
    if (b.has("neuron")) bad("give 'neuron' for an FFN neuron, or 'head', 'dim' and 'pos' for an attention neuron");
    if (b.has("via_head")) bad("'via_head' is for FFN neurons");
    r.head = static_cast<int>(b.integer("head", 0, c.n_heads - 1));
    r.dim = static_cast<int>(b.integer("dim", 0, c.d_head - 1));
    r.pos = static_cast<int>(b.integer("pos", 0, static_cast<int64_t>(max_tokens) - 1));
  } else {
    r.neuron = static_cast<int>(b.integer("neuron", 0, c.d_mlp - 1));
    if (b.has("via_head")) {
      const json& v = b.at("via_head");
      if (!v.is_array() || v.size() != 2) bad("'via_head' must be [layer, head]");
      r.via_layer = static_cast<int>(Body::check_int(v[0], "via_head[0]", 0, c.n_layers - 1));
      r.via_head = static_cast<int>(Body::check_int(v[1], "via_head[1]", 0, c.n_heads - 1));
    }
  }
  r.k = static_cast<int>(b.integer("k", 1, 50, 10));
  r.ablate = b.flag("ablate", true);
  return [eng, r](Job& job) { return guarded([&] { return do_neuron(*eng, r, job); }); };
}

// POST /api/ablate
JobQueue::Work ablate_work(Engine* eng, const json& body, const ModelConfig& c, size_t max_tokens) {
  const Body b(body, {"prompt", "position", "target", "level", "ffn", "heads", "attn"});
  AblateRequest r;
  r.x = context(b, c, max_tokens);
  if (b.has("level")) {
    const json& lv = b.at("level");
    if (!lv.is_string() || (lv != "parameter" && lv != "activation")) bad("'level' must be \"parameter\" or \"activation\"");
    r.activation = lv == "activation";
  }
  const int64_t L = c.n_layers;
  auto items = [&](const char* name, size_t lo, size_t hi) {
    std::vector<std::vector<int64_t>> out;
    if (!b.has(name)) return out;
    const json& a = b.at(name);
    if (!a.is_array()) bad(std::string("'") + name + "' must be an array");
    if (a.size() > 4096) bad(std::string("'") + name + "' has more than 4096 entries");
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string where = std::string(name) + "[" + std::to_string(i) + "]";
      if (!a[i].is_array() || a[i].size() < lo || a[i].size() > hi) {
        bad("'" + where + "' must be an array of " + std::to_string(lo) + (hi > lo ? " or " + std::to_string(hi) : "") + " integers");
      }
      std::vector<int64_t> v;
      for (size_t k = 0; k < a[i].size(); ++k) {
        v.push_back(Body::check_int(a[i][k], where + "[" + std::to_string(k) + "]", 0, INT32_MAX));
      }
      out.push_back(std::move(v));
    }
    return out;
  };
  auto need = [](const std::string& what, int64_t v, int64_t n) {
    if (v >= n) bad(what + " = " + std::to_string(v) + " is out of range (0.." + std::to_string(n - 1) + ")");
    return static_cast<int>(v);
  };
  for (const auto& v : items("ffn", 2, 2)) {
    r.iv.ffn_neurons.push_back({need("ffn layer", v[0], L), need("ffn neuron", v[1], c.d_mlp)});
  }
  for (const auto& v : items("heads", 2, 2)) {
    r.iv.heads.push_back({need("head layer", v[0], L), need("head", v[1], c.n_heads)});
  }
  for (const auto& v : items("attn", 3, 4)) {
    if (v.size() == 4 && !r.activation) bad("an attention neuron with a source position needs \"level\": \"activation\"");
    r.iv.attn_neurons.push_back({need("attn layer", v[0], L), need("attn head", v[1], c.n_heads),
                                 need("attn dim", v[2], c.d_head),
                                 v.size() == 4 ? need("attn source position", v[3], static_cast<int64_t>(max_tokens)) : -1});
  }
  if (r.iv.empty()) bad("nothing to ablate: give 'ffn', 'heads' or 'attn'");
  return [eng, r](Job& job) { return guarded([&] { return do_ablate(*eng, r, job); }); };
}

// Each POST endpoint: its body checked on the caller's thread (4xx at once), its work for the worker.
using WorkParser = JobQueue::Work (*)(Engine*, const json&, const ModelConfig&, size_t max_tokens);
const std::map<std::string, WorkParser> kEndpoints = {{"predict", predict_work}, {"explain", explain_work},
                                                      {"head", head_work},       {"neuron", neuron_work},
                                                      {"ablate", ablate_work},   {"graph", graph_work}};

}  // namespace

// ---------------------------------------------------------------------------------------------

Api::Api(std::shared_ptr<const Model> model, ApiOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  const int64_t n_ctx = model_->config().n_ctx;
  max_tokens_ = n_ctx > 0 ? std::min(options_.max_prompt_tokens, static_cast<size_t>(n_ctx)) : options_.max_prompt_tokens;
  engine_ = std::make_unique<Engine>(*model_, options_.n_threads, max_tokens_, options_);
  jobs_ = std::make_unique<JobQueue>(options_.max_pending_jobs, options_.keep_finished_jobs);
}

Api::~Api() { jobs_.reset(); }

Reply Api::info() const {
  const ModelConfig& c = model_->config();
  return json_reply({{"tool", "reslens 0.1.0"},
                     {"model", {{"path", model_->path().string()}, {"architecture", to_string(c.architecture)},
                                {"n_layers", c.n_layers}, {"n_heads", c.n_heads}, {"d_head", c.d_head},
                                {"d_model", c.d_model}, {"d_mlp", c.d_mlp}, {"d_vocab", c.d_vocab}, {"n_ctx", c.n_ctx}}},
                     {"example_prompt", options_.example_prompt},
                     // The layout every prompt gets (null: none), so a page can say so.
                     {"chat", options_.chat ? json(chat_template_name(*options_.chat)) : json(nullptr)},
                     {"limits", {{"max_body_bytes", options_.max_body_bytes}, {"max_prompt_tokens", max_tokens_},
                                 {"max_pending_jobs", options_.max_pending_jobs}}},
                     {"endpoints", {"GET /api/info", "POST /api/predict", "POST /api/explain", "POST /api/head",
                                    "POST /api/neuron", "POST /api/ablate", "POST /api/graph", "GET /api/jobs/ID",
                                    "DELETE /api/jobs/ID", "POST /api/jobs/ID/cancel"}}});
}

Reply Api::job_status(const std::string& id, const std::map<std::string, std::string>& query) const {
  const std::shared_ptr<Job> job = jobs_->find(id);
  if (!job) return error_reply(404, "no job '" + id + "' (finished jobs are kept for the last " +
                                        std::to_string(options_.keep_finished_jobs) + " requests)");
  const Job::Snapshot s = job->snapshot();
  json head = {{"id", job->id()}, {"kind", job->kind()}, {"state", to_string(s.state)}, {"stage", s.stage},
               {"elapsed_s", std::round(s.elapsed_s * 1000) / 1000}};
  if (s.state == Job::State::kQueued) head["queue_position"] = jobs_->ahead_of(*job);
  if (s.state == Job::State::kFailed) {
    head["status"] = s.reply->status;
    const json err = json::parse(s.reply->body, nullptr, false);
    head["error"] = err.is_object() && err.contains("error") ? err["error"] : json("failed");
  }
  // An answer's steps as they finish (?from=K: those from the K-th on, for a client that has the
  // earlier ones): "steps_done" counts them all, "steps" lists them.
  size_t from = 0;
  if (const auto f = query.find("from"); f != query.end()) {
    const std::string& v = f->second;
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
      return error_reply(400, "from=" + v + ": give the number of steps already read (0 or more)");
    }
    from = static_cast<size_t>(std::stoul(v));
  }
  auto [parts, n_parts] = job->parts_from(from);
  std::string body = head.dump(-1, ' ', false, json::error_handler_t::replace);
  if (n_parts > 0) {  // the documents as they are, without parsing them again
    body.pop_back();
    body += ",\"steps_done\":" + std::to_string(n_parts) + ",\"steps\":[";
    for (size_t i = 0; i < parts.size(); ++i) body += (i ? "," : "") + parts[i];
    body += "]}";
  }
  if (s.state == Job::State::kDone) {  // the result as it is, without parsing it again
    body.pop_back();
    body += ",\"result\":" + s.reply->body + "}";
  }
  return {200, "application/json", body};
}

Reply Api::cancel_job(const std::string& id, const Request& request) {
  // The POST form takes no fields: an empty body or {} (anything else is a client's mistake).
  if (request.method == "POST" && !request.body.empty()) {
    const json body = json::parse(request.body, nullptr, false);
    if (!body.is_object() || !body.empty()) return error_reply(400, "POST /api/jobs/ID/cancel takes no fields: send {} or nothing");
  }
  // The job's status without its steps' documents, which a client cancelling does not want (GET
  // .../ID?from=K still reads them); "steps_done" says how many there are.
  const auto brief_status = [&] {
    const std::shared_ptr<Job> job = jobs_->find(id);
    const size_t n_parts = job ? job->parts_from(std::numeric_limits<size_t>::max()).second : 0;
    return job_status(id, {{"from", std::to_string(n_parts)}});
  };
  switch (jobs_->cancel(id)) {
    case JobQueue::CancelResult::kUnknown: break;
    case JobQueue::CancelResult::kFinished: {
      const std::shared_ptr<Job> job = jobs_->find(id);
      return error_reply(409, "job '" + id + "' has finished (" + (job ? to_string(job->snapshot().state) : "done") +
                                  "): nothing to cancel");
    }
    case JobQueue::CancelResult::kCancelled: return brief_status();  // ended at once: 200 and its status
    case JobQueue::CancelResult::kStopping: {
      Reply r = brief_status();  // still running: it ends "cancelled" at its next step boundary
      if (r.status == 200) r.status = 202;
      return r;
    }
  }
  return error_reply(404, "no job '" + id + "' (finished jobs are kept for the last " +
                              std::to_string(options_.keep_finished_jobs) + " requests)");
}

Reply Api::post(const std::string& endpoint, const Request& request) {
  json body;
  try {
    body = json::parse(request.body.empty() ? std::string("null") : request.body);
  } catch (const json::exception& e) {
    return error_reply(400, "malformed JSON: " + strip_json_exception(e.what()));
  }
  const auto endpoint_work = kEndpoints.find(endpoint);
  if (endpoint_work == kEndpoints.end()) return error_reply(404, "no endpoint POST /api/" + endpoint);
  JobQueue::Work work;
  try {
    work = endpoint_work->second(engine_.get(), body, model_->config(), max_tokens_);
  } catch (const HttpError& e) {
    return error_reply(e.status, e.what());
  }

  // A model file written to or truncated since the load would show through its memory map (new
  // numbers, or a SIGBUS on a truncated file): each job asks first, and refuses naming the file.
  work = [model = model_, inner = std::move(work)](Job& job) {
    const std::filesystem::path changed = model->changed_file();
    if (!changed.empty()) {
      return error_reply(503, "the model file " + changed.string() +
                                  " changed on disk since the server loaded it; restart reslens serve");
    }
    return inner(job);
  };
  const std::shared_ptr<Job> job = jobs_->submit(endpoint, std::move(work));
  if (!job) {
    return error_reply(503, "busy: " + std::to_string(options_.max_pending_jobs) + " requests are waiting; try again shortly");
  }
  const auto async = request.query.find("async");
  if (async != request.query.end() && (async->second == "1" || async->second == "true")) {
    return json_reply({{"job", job->id()}, {"status", "/api/jobs/" + job->id()}}, 202);
  }
  return job->future().get();
}

namespace {

// The host name of a Host header value: "example.com:8080" -> "example.com", "[::1]:80" -> "::1".
std::string host_name(const std::string& host) {
  if (!host.empty() && host[0] == '[') {
    const size_t end = host.find(']');
    return end == std::string::npos ? host : host.substr(1, end - 1);
  }
  const size_t colon = host.find(':');
  return colon == std::string::npos ? host : host.substr(0, colon);
}

// The job id of a path "/api/jobs/ID/cancel", or nothing for any other path.
std::optional<std::string> cancel_path_job(const std::string& path) {
  constexpr std::string_view kPrefix = "/api/jobs/", kSuffix = "/cancel";
  if (path.size() <= kPrefix.size() + kSuffix.size() || path.compare(0, kPrefix.size(), kPrefix) != 0 ||
      path.compare(path.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return std::nullopt;
  }
  return path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
}

// The request a page that is going away sends for each job it still waits for (explorer.js, on
// pagehide): navigator.sendBeacon's POST, which can set no header (no Authorization) and, without a
// body, has no Content-Type. Such a request passes without the token and without a JSON type. Safe
// because all it can do is cancel a job whose id the sender already knows: ids are 128 random bits
// that only go to clients that passed these checks (a page on another origin cannot read any reply,
// there being no CORS headers, and the Host check still applies), and an empty body queues nothing
// and reads nothing but the cancelled job's brief status (kind, stage, steps_done; no steps, no
// result). A body, even {}, takes the ordinary checks.
bool is_beacon_cancel(const Request& request) {
  return request.method == "POST" && request.body.empty() && cancel_path_job(request.path).has_value();
}

bool is_ip_literal(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), buf) == 1 || inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

bool iequals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A comparison whose time does not depend on where the strings differ.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

}  // namespace

std::optional<Reply> Api::refuse(const Request& request) const {
  // DNS rebinding: a page on attacker.example whose name is made to resolve to this machine sends
  // "Host: attacker.example". An IP address or a name of this machine cannot be such a page's origin.
  if (const auto h = request.headers.find("host"); h != request.headers.end()) {
    const std::string name = host_name(h->second);
    const bool ok = is_ip_literal(name) || iequals(name, "localhost") ||
                    std::any_of(options_.host_names.begin(), options_.host_names.end(),
                                [&](const std::string& n) { return iequals(n, name); });
    if (!ok) {
      return error_reply(403, "Host '" + name + "' is not a name of this server (use its IP address or localhost, "
                                                "or start it with --allow-host " + name + ")");
    }
  }
  if (request.path.rfind("/api/", 0) != 0) return std::nullopt;
  if (is_beacon_cancel(request)) return std::nullopt;  // a leaving page's cancel (is_beacon_cancel)
  if (!options_.token.empty()) {
    const auto a = request.headers.find("authorization");
    const std::string given = a == request.headers.end() || a->second.rfind("Bearer ", 0) != 0 ? "" : a->second.substr(7);
    if (!same_secret(given, options_.token)) {
      return error_reply(401, "this server needs its token: send \"Authorization: Bearer TOKEN\" (the page takes it "
                              "from the address reslens serve printed)");
    }
  }
  // A cross-origin page can POST text/plain or a form without asking first; it must ask (and is
  // refused, there being no CORS headers) before it may send application/json.
  if (request.method == "POST") {
    const auto ct = request.headers.find("content-type");
    const std::string type = ct == request.headers.end() ? "" : ct->second.substr(0, ct->second.find(';'));
    if (!iequals(type, "application/json")) {
      return error_reply(415, "POST bodies must be sent as Content-Type: application/json" +
                                  (type.empty() ? std::string() : " (not " + type + ")"));
    }
  }
  return std::nullopt;
}

Reply Api::handle(const Request& request) {
  const std::string& path = request.path;
  if (auto refused = refuse(request)) return *refused;
  if (request.body.size() > options_.max_body_bytes) {
    return error_reply(413, "the request body is " + std::to_string(request.body.size()) + " bytes; the limit is " +
                                std::to_string(options_.max_body_bytes));
  }
  if (path == "/" || path == "/index.html") {
    if (request.method != "GET" && request.method != "HEAD") return error_reply(405, "use GET for " + path);
    if (!report::web_page_available()) return error_reply(503, report::web_page_missing_message() + "; the JSON API under /api/ works");
    return {200, "text/html; charset=utf-8", report::explorer_page()};
  }
  if (path.rfind("/api/", 0) == 0) {
    const std::string rest = path.substr(5);
    if (rest == "info") {
      if (request.method != "GET") return error_reply(405, "use GET for /api/info");
      return info();
    }
    if (rest.rfind("jobs/", 0) == 0) {
      const std::string id = rest.substr(5);
      if (const auto cancelled = cancel_path_job(path)) {
        if (request.method != "POST") return error_reply(405, "use POST for /api/jobs/ID/cancel (or DELETE /api/jobs/ID)");
        return cancel_job(*cancelled, request);
      }
      if (request.method == "DELETE") return cancel_job(id, request);
      if (request.method != "GET") return error_reply(405, "use GET for /api/jobs/ID (DELETE cancels the job)");
      return job_status(id, request.query);
    }
    if (kEndpoints.count(rest)) {
      if (request.method != "POST") return error_reply(405, "use POST for /api/" + rest);
      return post(rest, request);
    }
  }
  return error_reply(404, "not found: " + path + " (the API is under /api/; GET /api/info lists it)");
}

}  // namespace reslens::server
