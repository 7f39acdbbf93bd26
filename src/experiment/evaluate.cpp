// One sentence of the experiment: filter (spec §5.2), attribute (explain()), intervene (spec A7:
// parameter level, per sentence), compare the §3.3 scores. Every model call is single-threaded so a
// sentence's numbers are the same whatever the runner's thread count.
#include "experiment/evaluate.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "experiment/selection.h"
#include "reslens/error.h"

namespace reslens::experiment_impl {

namespace {


// Streams of the random generator, one per kind of random baseline (see core/rng.h).
enum Stream : uint64_t { kRandomFfn = 1, kRandomAttnFfn = 2, kRandomQuery = 3 };

TargetStats run_zeroed(const Model& model, std::span<const int32_t> tokens, int32_t w, const Intervention& iv) {
  RunOptions o;
  o.n_threads = 1;
  o.intervention = &iv;
  const RunResult r = run(model, tokens, o);  // logits of the last position only
  return target_stats({r.logits.row(0), static_cast<size_t>(model.config().d_vocab)}, w);
}

double sum(const std::vector<double>& v, bool positive_only) {
  double s = 0;
  for (const double x : v) s += positive_only ? std::max(0.0, x) : x;
  return s;
}

// Filters the sentence on the real logits at the last position. Returns false (status set) when
// it is dropped.
bool passes_filter(const TokenResolver& resolver, const ExperimentSentence& s, const ExperimentOptions& o,
                   std::span<const float> logits, SentenceResult& r) {
  if (r.before.rank > o.filter_top_k) {
    r.status = SentenceStatus::kNotInTopK;
    r.detail = "target rank " + std::to_string(r.before.rank) + " > " + std::to_string(o.filter_top_k);
    return false;
  }
  const float lw = logits[static_cast<size_t>(r.target_id)];
  int32_t best = -1;
  std::string best_text;
  for (const std::string& c : s.competitors) {
    if (c == s.target) continue;
    const int32_t id = TokenResolver::pick(resolver.resolve(c), logits);  // the stronger spelling
    if (id == r.target_id) continue;  // the same first token: nothing to compare
    ++r.n_competitors;
    if (logits[static_cast<size_t>(id)] >= lw &&
        (best < 0 || logits[static_cast<size_t>(id)] > logits[static_cast<size_t>(best)])) {
      best = id;
      best_text = c;
    }
  }
  if (best >= 0) {
    r.status = SentenceStatus::kBelowCompetitor;
    r.detail = "competitor '" + best_text + "' is at least as likely as the target";
    return false;
  }
  return true;
}

// Keeps who the sentence is and drops whatever was computed before the error.
void fail(SentenceResult& r, const std::string& why) {
  SentenceResult e;
  e.index = r.index;
  e.line = r.line;
  e.type = std::move(r.type);
  e.prompt = std::move(r.prompt);
  e.target = std::move(r.target);
  e.status = SentenceStatus::kError;
  e.detail = why;
  r = std::move(e);
}

}  // namespace

Screened screen(const Model& model, const TokenResolver& resolver, const ExperimentSentence& s,
                const ExperimentOptions& o, bool capture) {
  const ModelConfig& c = model.config();
  Screened sc;
  SentenceResult& r = sc.result;
  r.index = s.index;
  r.line = s.line;
  r.type = s.type;
  r.prompt = s.prompt;
  r.target = s.target;
  const Tokenizer& tok = model.tokenizer();
  const bool bos = o.add_bos.value_or(tok.add_bos_default()) && tok.bos_id() >= 0;
  sc.tokens = tok.encode(s.prompt, bos, o.parse_special ? SpecialText::kParse : SpecialText::kPlain);
  r.n_prompt_tokens = static_cast<int64_t>(sc.tokens.size());
  if (sc.tokens.empty()) throw InvalidArgument("the prompt has no tokens");
  RunOptions ro;
  if (capture) {
    ro.capture = explain_capture();
    ro.pattern_rows = {static_cast<int64_t>(sc.tokens.size()) - 1};  // the explained (last) position's row
  }
  ro.all_logits = capture;  // explain() wants every position's logits
  ro.n_threads = 1;
  sc.run = run(model, sc.tokens, ro);
  const int64_t row = capture ? static_cast<int64_t>(sc.tokens.size()) - 1 : 0;
  const std::span<const float> logits(sc.run.logits.row(row), static_cast<size_t>(c.d_vocab));
  const TokenResolver::Resolved target = resolver.resolve(s.target);
  r.target_id = TokenResolver::pick(target, logits);
  r.target_n_tokens = target.n_tokens;
  r.target_token = tok.token_text(r.target_id);
  r.before = target_stats(logits, r.target_id);
  r.status = passes_filter(resolver, s, o, logits, r) ? SentenceStatus::kKept : r.status;
  return sc;
}

SentenceResult evaluate(const Model& model, const TokenResolver& resolver, const ExperimentCounts& k,
                        const ExperimentSentence& s, const ExperimentOptions& o) {
  const ModelConfig& c = model.config();
  SentenceResult r;
  r.index = s.index;
  r.line = s.line;
  r.type = s.type;
  r.prompt = s.prompt;
  r.target = s.target;
  try {
    Screened sc = screen(model, resolver, s, o, true);
    r = std::move(sc.result);
    if (r.status != SentenceStatus::kKept) return r;
    const std::vector<int32_t>& tokens = sc.tokens;
    const RunResult& run_result = sc.run;
    ExplainOptions eo;
    eo.target = r.target_id;
    eo.baselines = o.baselines;
    eo.query_top_n = o.query_value_neurons;
    eo.n_threads = 1;
    const Explanation ex = explain(model, run_result, tokens, eo);

    // Interventions. Sets that coincide (norm and m_norm, logprob_increase and ffn_top) are run once.
    std::map<std::vector<int64_t>, TargetStats> ffn_only;
    auto zero = [&](const std::string& name, const Intervention& iv) {
      InterventionOutcome out{name, static_cast<int64_t>(iv.ffn_neurons.size()),
                              static_cast<int64_t>(iv.attn_neurons.size()), r.before, {}, {}};
      for (const auto& f : iv.ffn_neurons) out.ffn.push_back(int64_t{f.layer} * c.d_mlp + f.neuron);
      for (const auto& a : iv.attn_neurons) out.attn.push_back((int64_t{a.layer} * c.n_heads + a.head) * c.d_head + a.dim);
      if (!iv.empty()) {
        std::vector<int64_t> key = out.ffn;
        std::sort(key.begin(), key.end());
        const bool cacheable = iv.attn_neurons.empty() && iv.heads.empty();
        if (const auto it = ffn_only.find(key); cacheable && it != ffn_only.end()) {
          out.after = it->second;
        } else {
          out.after = run_zeroed(model, tokens, r.target_id, iv);
          if (cacheable) ffn_only[key] = out.after;
        }
      }
      r.interventions.push_back(std::move(out));
    };
    const auto random_ffn = [&](Stream stream, int64_t n_ffn, int64_t n_attn) {
      Rng rng(o.seed, static_cast<uint64_t>(s.index), stream);
      Intervention iv;
      add_random_attn(iv, rng, n_attn, c.n_layers, c.n_heads, c.d_head);
      add_random_ffn(iv, rng, n_ffn, c.n_layers, c.d_mlp);
      return iv;
    };

    Intervention ffn_top;
    add_ffn(ffn_top, top(ex.ffn_neuron.values, k.ffn_top), c.d_mlp);
    zero("ffn_top", ffn_top);
    if (o.random) zero("ffn_random", random_ffn(kRandomFfn, static_cast<int64_t>(ffn_top.ffn_neurons.size()), 0));

    Intervention attn_ffn;
    add_top_attn(attn_ffn, ex.attn_neuron, k.attn_top);
    add_ffn(attn_ffn, top(ex.ffn_neuron.values, k.attn_ffn_top), c.d_mlp);
    zero("attn_ffn_top", attn_ffn);
    if (o.random) {
      zero("attn_ffn_random", random_ffn(kRandomAttnFfn, static_cast<int64_t>(attn_ffn.ffn_neurons.size()),
                                         static_cast<int64_t>(attn_ffn.attn_neurons.size())));
    }

    Intervention query;
    add_ffn(query, top_positive(ex.query_ffn_neuron.values, k.query_top), c.d_mlp);
    zero("query_top", query);
    if (o.random) zero("query_random", random_ffn(kRandomQuery, static_cast<int64_t>(query.ffn_neurons.size()), 0));

    if (o.baselines) {
      for (const char* name : kBaselineScores) {
        Intervention iv;
        add_ffn(iv, top(ex.baselines.at(name).values, k.ffn_top), c.d_mlp);
        zero(std::string("score:") + name, iv);
      }
    }

    r.attn_layer = ex.attn_layer;
    r.ffn_layer = ex.ffn_layer;
    r.head = ex.head.values;
    r.attn_neuron_sum = sum(ex.attn_neuron.values, false);
    r.attn_neuron_pos_sum = sum(ex.attn_neuron.values, true);
    r.ffn_neuron_sum = sum(ex.ffn_neuron.values, false);
    r.ffn_neuron_pos_sum = sum(ex.ffn_neuron.values, true);
    r.value_set = top(ex.ffn_neuron.values, k.shared_set);
    r.query_set = top_positive(ex.query_ffn_neuron.values, k.shared_set);
  } catch (const InvalidArgument& e) {  // the sentence's own problem, e.g. longer than the context
    fail(r, e.what());
  } catch (const OutOfRange& e) {
    fail(r, e.what());
  }
  return r;
}

}  // namespace reslens::experiment_impl

namespace reslens {

const char* to_string(SentenceStatus s) {
  switch (s) {
    case SentenceStatus::kKept: return "kept";
    case SentenceStatus::kNotInTopK: return "not_in_top_k";
    case SentenceStatus::kBelowCompetitor: return "below_competitor";
    case SentenceStatus::kError: return "error";
  }
  return "error";
}

SentenceResult evaluate_sentence(const Model& model, const ExperimentSentence& sentence, const ExperimentOptions& options) {
  const TokenResolver resolver(model.tokenizer());
  return experiment_impl::evaluate(model, resolver, experiment_counts(model.config(), options), sentence, options);
}

}  // namespace reslens
