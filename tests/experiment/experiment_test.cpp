// The experiment module: dataset parsing and its problems, shards, the count scaling, the portable
// generator, one sentence's evaluation on a real model (filter, interventions, thread and order
// independence), the exact JSON round trip, aggregation arithmetic and the writers, and the shipped
// cloze dataset.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "common/test_paths.h"
#include "experiment/evaluate.h"
#include "core/rng.h"
#include "reslens/token_names.h"
#include "reslens/reslens.h"

namespace reslens {
namespace {

using nlohmann::json;

// stories260K: ' Lily' is its top prediction after the first prompt, ' Tim' second after the
// second (above ' Lily'), ' Timmy' is below ' Tim' there, "park" is three tokens (' p' 'ar' 'k'),
// " dog" is two (' d' 'og') and far from the top 10 after "Once upon a".
constexpr const char* kDataset =
    R"({"prompt": "Once upon a time, there was a little girl named Lily. One day,", "target": " Lily", "type": "name"}
{"prompt": "Once upon a time, there was a little boy named Tim. One day,", "target": " Tim", "type": "name"}
{"prompt": "Once upon a", "target": " time", "type": "word"}
{"prompt": "One day, Lily and her mom went to the", "target": "park", "type": "word", "extra": 1}
{"prompt": "Tom had a red ball. He liked to play with his", "target": " friend", "type": "word"}
{"prompt": "Once upon a", "target": " dog", "type": "word", "competitors": []}
{"prompt": "Once upon a time, there was a little boy named Tim. One day,", "target": " Timmy", "type": "name"}
)";

const Model& stories() {
  static const auto m = Model::load(test::shared_path("models/stories260K/stories260K.gguf"));
  return *m;
}

const Dataset& dataset() {
  static const Dataset d = parse_dataset(kDataset, "test.jsonl");
  return d;
}

// The whole test dataset evaluated once (single-threaded), shared by the tests below.
const std::vector<SentenceResult>& results() {
  static const std::vector<SentenceResult> r = [] {
    ExperimentOptions o;
    o.n_threads = 1;
    return run_experiment(stories(), dataset().sentences, o);
  }();
  return r;
}

std::string lines(const std::vector<SentenceResult>& rs) {
  std::string s;
  for (const auto& r : rs) s += sentence_result_json(r) + "\n";
  return s;
}

// ---- dataset ----

TEST(ExperimentDataset, ParsesSentencesAndFillsCompetitorsFromTheType) {
  const Dataset& d = dataset();
  ASSERT_EQ(d.sentences.size(), 7u);
  EXPECT_TRUE(d.skipped.empty());
  EXPECT_EQ(d.sentences[3].line, 4);
  EXPECT_EQ(d.sentences[3].index, 3);
  EXPECT_EQ(d.sentences[3].target, "park");
  // name: the other name targets, in first-seen order; the own target is not a competitor.
  EXPECT_EQ(d.sentences[0].competitors, (std::vector<std::string>{" Tim", " Timmy"}));
  EXPECT_FALSE(d.sentences[0].competitors_given);
  // An explicit (even empty) list is kept as given.
  EXPECT_TRUE(d.sentences[5].competitors_given);
  EXPECT_TRUE(d.sentences[5].competitors.empty());
  // " time" appears once as a word target; the two "Once upon a" lines do not compete with themselves.
  EXPECT_EQ(d.sentences[2].competitors, (std::vector<std::string>{"park", " friend", " dog"}));
}

TEST(ExperimentDataset, ReportsMalformedLinesWithTheirNumbers) {
  const std::string text = std::string("\n") +                        // 1: blank, ignored
                           "{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"t\"}\r\n" +  // 2: ok (CRLF)
                           "not json\n" +                              // 3
                           "[1, 2]\n" +                                // 4
                           "{\"target\": \"b\", \"type\": \"t\"}\n" +  // 5: no prompt
                           "{\"prompt\": \"a\", \"target\": \"\", \"type\": \"t\"}\n" +  // 6: empty target
                           "{\"prompt\": \"a\", \"target\": \"b\", \"type\": 3}\n" +     // 7: type not a string
                           "{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"t\", \"competitors\": \"x\"}\n" +  // 8
                           "{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"t\", \"competitors\": [1]}\n" +  // 9
                           "{\"prompt\": \"\xff\", \"target\": \"b\", \"type\": \"t\"}\n" +  // 10: invalid UTF-8
                           "{\"prompt\": \"c\", \"target\": \"d\", \"type\": \"t\"}";        // 11: ok, no newline
  const Dataset d = parse_dataset(text, "bad.jsonl");
  ASSERT_EQ(d.sentences.size(), 2u);
  EXPECT_EQ(d.sentences[1].line, 11);
  EXPECT_EQ(d.sentences[1].index, 1);
  std::vector<int64_t> bad;
  for (const auto& p : d.skipped) bad.push_back(p.line);
  EXPECT_EQ(bad, (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_NE(d.skipped[0].message.find("not valid JSON"), std::string::npos) << d.skipped[0].message;
  EXPECT_NE(d.skipped[2].message.find("\"prompt\""), std::string::npos) << d.skipped[2].message;
  EXPECT_EQ(d.n_lines, 11);
  try {
    parse_dataset(text, "bad.jsonl", /*strict=*/true);
    FAIL() << "strict parsing accepted a malformed line";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:3:"), std::string::npos) << e.what();
  }
}

TEST(ExperimentDataset, EmptyDatasetsAreErrors) {
  EXPECT_THROW(parse_dataset("", "empty.jsonl"), FormatError);
  EXPECT_THROW(parse_dataset("\n  \n", "blank.jsonl"), FormatError);
  try {
    parse_dataset("oops\n", "junk.jsonl");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("no sentences"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("line 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_dataset("/nonexistent/data.jsonl"), IoError);
}

TEST(ExperimentDataset, TheTypeAllIsReservedForTheAggregateRow) {
  // The summaries' first row, "all", aggregates every type: a type of that name would be mixed up
  // with it in summary.json / .csv / .md. The dataset is refused (not the line skipped), strict or
  // not, naming the file, the line and the type.
  const std::string text = "{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"city\"}\n"
                           "{\"prompt\": \"c\", \"target\": \"d\", \"type\": \"all\"}\n";
  for (const bool strict : {false, true}) {
    try {
      parse_dataset(text, "facts.jsonl", strict);
      FAIL() << "a dataset with the type \"all\" was accepted";
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("facts.jsonl:2:"), std::string::npos) << msg;
      EXPECT_NE(msg.find("the type \"all\" is reserved"), std::string::npos) << msg;
    }
  }
  // Other spellings are ordinary types.
  const Dataset d = parse_dataset("{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"All\"}\n"
                                  "{\"prompt\": \"a\", \"target\": \"b\", \"type\": \"all types\"}\n", "ok.jsonl");
  EXPECT_EQ(d.sentences.size(), 2u);
}

TEST(ExperimentDataset, FingerprintFollowsTheBytes) {
  const Dataset a = parse_dataset(kDataset, "a");
  const Dataset b = parse_dataset(std::string(kDataset) + "\n", "b");
  EXPECT_EQ(a.fingerprint, dataset().fingerprint);
  EXPECT_NE(a.fingerprint, b.fingerprint);
}

TEST(ExperimentDataset, Shards) {
  const Shard s = parse_shard("2/4");
  EXPECT_EQ(s.index, 2);
  EXPECT_EQ(s.count, 4);
  EXPECT_TRUE(s.contains(1));
  EXPECT_TRUE(s.contains(5));
  EXPECT_FALSE(s.contains(2));
  EXPECT_EQ(s.str(), "2/4");
  EXPECT_NO_THROW(parse_shard("1/1"));
  for (const char* bad : {"3/2", "0/4", "1/0", "a/b", "1", "1/2/3", "-1/2", "", "/", "1/", " 1/2", "99999999999/1"}) {
    EXPECT_THROW(parse_shard(bad), InvalidArgument) << bad;
  }
}

// ---- counts, generator ----

TEST(ExperimentCounts, CapsEachCountAtAFractionOfItsKind) {
  ModelConfig tiny;  // TinyStories-656K
  tiny.n_layers = 2, tiny.d_mlp = 384, tiny.n_heads = 8, tiny.d_head = 16;
  const ExperimentCounts k = experiment_counts(tiny, {});
  EXPECT_EQ(k.ffn_neurons, 768);
  EXPECT_EQ(k.attn_neurons, 256);
  EXPECT_EQ(k.ffn_top, 10);
  EXPECT_EQ(k.attn_top, 12);  // floor(0.05 * 256)
  EXPECT_EQ(k.attn_ffn_top, 38);
  EXPECT_EQ(k.query_top, 38);
  EXPECT_EQ(k.shared_set, 38);
  EXPECT_NE(k.rule.find("0.05"), std::string::npos);
  ModelConfig large;  // GPT2-large keeps the paper's counts
  large.n_layers = 36, large.d_mlp = 5120, large.n_heads = 20, large.d_head = 64;
  const ExperimentCounts g = experiment_counts(large, {});
  EXPECT_EQ(g.ffn_top, 10);
  EXPECT_EQ(g.attn_top, 200);
  EXPECT_EQ(g.attn_ffn_top, 100);
  EXPECT_EQ(g.query_top, 1000);
  EXPECT_EQ(g.shared_set, 300);
  ModelConfig one;  // never below one neuron
  one.n_layers = 1, one.d_mlp = 4, one.n_heads = 1, one.d_head = 2;
  EXPECT_EQ(experiment_counts(one, {}).ffn_top, 1);
  ExperimentOptions bad;
  bad.max_fraction = 0;
  EXPECT_THROW(experiment_counts(tiny, bad), InvalidArgument);
  bad.max_fraction = 0.5;
  bad.ffn_top = 0;
  EXPECT_THROW(experiment_counts(tiny, bad), InvalidArgument);
}

TEST(ExperimentRng, IsSplitMix64AndPortable) {
  // Published splitmix64 outputs for seed 0 (the generator's reference sequence).
  Rng r(0);
  EXPECT_EQ(r.next(), 0xe220a8397b1dcdafull);
  EXPECT_EQ(r.next(), 0x6e789e6aa1b965f4ull);
  EXPECT_EQ(r.next(), 0x06c45d188009454full);
  // Streams: the same (seed, index, stream) draws the same neurons; others draw others.
  Rng a(7, 3, 1), b(7, 3, 1), c(7, 4, 1);
  const auto da = a.distinct(20, 768), db = b.distinct(20, 768), dc = c.distinct(20, 768);
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
  EXPECT_EQ(std::set<int64_t>(da.begin(), da.end()).size(), 20u);
  for (const int64_t v : da) EXPECT_TRUE(v >= 0 && v < 768);
  // The whole range can be drawn.
  Rng e(1);
  EXPECT_EQ(e.distinct(5, 5).size(), 5u);
}

// ---- one sentence, on a real model ----

TEST(ExperimentSentence, FilterKeepsAndDropsAsThePaperSays) {
  const auto& r = results();
  ASSERT_EQ(r.size(), 7u);
  EXPECT_EQ(r[0].status, SentenceStatus::kKept) << r[0].detail;
  EXPECT_EQ(r[0].before.rank, 1);
  EXPECT_EQ(r[0].target_token, " Lily");
  EXPECT_EQ(r[0].n_competitors, 2);
  EXPECT_EQ(r[1].status, SentenceStatus::kKept) << r[1].detail;  // rank 2, above ' Lily' and ' Timmy'
  EXPECT_EQ(r[1].before.rank, 2);
  EXPECT_EQ(r[2].status, SentenceStatus::kKept) << r[2].detail;
  EXPECT_EQ(r[3].status, SentenceStatus::kKept) << r[3].detail;  // "park": its first token ' p' is top 1
  EXPECT_EQ(r[3].target_n_tokens, 3);
  EXPECT_EQ(r[3].target_token, " p");
  EXPECT_EQ(r[5].status, SentenceStatus::kNotInTopK);
  EXPECT_EQ(r[5].target_n_tokens, 2);
  EXPECT_GT(r[5].before.rank, 10);
  EXPECT_EQ(r[6].status, SentenceStatus::kBelowCompetitor);
  EXPECT_NE(r[6].detail.find("' Tim'"), std::string::npos) << r[6].detail;
  EXPECT_TRUE(r[6].interventions.empty());
}

TEST(ExperimentSentence, KeptSentencesCarryEveryInterventionAndScore) {
  const SentenceResult& r = results()[0];
  const ModelConfig& c = stories().config();  // L5, N172, H8, dh8: 860 FFN, 320 attention neurons
  const ExperimentCounts k = experiment_counts(c, {});
  std::vector<std::string> names;
  for (const auto& o : r.interventions) names.push_back(o.name);
  EXPECT_EQ(names, (std::vector<std::string>{"ffn_top", "ffn_random", "attn_ffn_top", "attn_ffn_random", "query_top",
                                             "query_random", "score:log_prob_increase", "score:log_prob",
                                             "score:prob_increase", "score:norm", "score:coef", "score:rank",
                                             "score:m_norm", "score:m_rank"}));
  const auto& o = r.interventions;
  EXPECT_EQ(o[0].n_ffn, k.ffn_top);
  EXPECT_EQ(o[1].n_ffn, k.ffn_top);
  EXPECT_EQ(o[2].n_attn, k.attn_top);
  EXPECT_EQ(o[2].n_ffn, k.attn_ffn_top);
  EXPECT_EQ(o[3].n_attn, o[2].n_attn);
  EXPECT_EQ(o[3].n_ffn, o[2].n_ffn);
  EXPECT_EQ(o[5].n_ffn, o[4].n_ffn);
  EXPECT_LE(o[4].n_ffn, k.query_top);
  // The top neurons by log-probability increase are the same set whichever way they are named.
  EXPECT_EQ(o[6].after.log_prob, o[0].after.log_prob);
  // Zeroing the top neurons hurts the target more than random ones.
  EXPECT_LT(o[0].after.log_prob, r.before.log_prob);
  EXPECT_LT(o[2].after.log_prob, o[3].after.log_prob);
  EXPECT_EQ(static_cast<int64_t>(r.attn_layer.size()), c.n_layers);
  EXPECT_EQ(static_cast<int64_t>(r.head.size()), c.n_layers * c.n_heads);
  EXPECT_EQ(static_cast<int64_t>(r.value_set.size()), k.shared_set);
  EXPECT_LE(static_cast<int64_t>(r.query_set.size()), k.shared_set);
  EXPECT_GE(r.attn_neuron_pos_sum, r.attn_neuron_sum);
  EXPECT_GE(r.ffn_neuron_pos_sum, r.ffn_neuron_sum);
}

TEST(ExperimentSentence, InterventionsMatchAblateAndExplain) {
  // The top-10 FFN intervention is explain()'s top-10 FFN neurons zeroed through ablate().
  const ExperimentSentence& s = dataset().sentences[0];
  const SentenceResult& r = results()[0];
  const std::vector<int32_t> tokens = stories().tokenizer().encode(s.prompt, true);
  RunOptions ro;
  ro.capture = explain_capture();
  ro.all_logits = true;
  ro.n_threads = 1;
  const RunResult run_result = run(stories(), tokens, ro);
  ExplainOptions eo;
  eo.target = r.target_id;
  const Explanation ex = explain(stories(), run_result, tokens, eo);
  std::vector<size_t> idx(ex.ffn_neuron.values.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const double va = ex.ffn_neuron.values[a], vb = ex.ffn_neuron.values[b];
    return va > vb || (va == vb && a > b);
  });
  Intervention iv;
  const auto N = static_cast<size_t>(stories().config().d_mlp);
  for (size_t i = 0; i < 10; ++i) iv.ffn_neurons.push_back({static_cast<int>(idx[i] / N), static_cast<int>(idx[i] % N)});
  const AblationResult a = ablate(stories(), tokens, r.target_id, iv);
  EXPECT_EQ(a.before.log_prob, r.before.log_prob);
  EXPECT_EQ(a.after.log_prob, r.interventions[0].after.log_prob);
  EXPECT_EQ(a.after.rank, r.interventions[0].after.rank);
  for (size_t l = 0; l < r.attn_layer.size(); ++l) EXPECT_EQ(r.attn_layer[l], ex.attn_layer[l]);
}

TEST(ExperimentSentence, ResultsDoNotDependOnThreadsOrOrder) {
  ExperimentOptions o;
  o.n_threads = 3;
  int calls = 0, progress_calls = 0;
  int64_t last_done = 0;
  const auto threaded = run_experiment(
      stories(), dataset().sentences, o, [&](const SentenceResult&) { ++calls; },
      [&](const ExperimentProgress& p) {
        ++progress_calls;
        EXPECT_EQ(p.done, last_done + 1);
        EXPECT_EQ(p.total, 7);
        last_done = p.done;
      });
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(progress_calls, 7);
  EXPECT_EQ(lines(threaded), lines(results()));
  // One sentence alone gives the same result as within the dataset.
  EXPECT_EQ(sentence_result_json(evaluate_sentence(stories(), dataset().sentences[4], {})), sentence_result_json(results()[4]));
}

TEST(ExperimentSentence, SeedChangesOnlyTheRandomBaselines) {
  ExperimentOptions o;
  o.n_threads = 1;
  o.seed = 99;
  const SentenceResult r = evaluate_sentence(stories(), dataset().sentences[0], o);
  const SentenceResult& base = results()[0];
  for (size_t i = 0; i < r.interventions.size(); ++i) {
    if (r.interventions[i].name.find("random") != std::string::npos) continue;
    EXPECT_EQ(r.interventions[i].after.log_prob, base.interventions[i].after.log_prob) << r.interventions[i].name;
  }
  bool differs = false;
  for (size_t i = 0; i < r.interventions.size(); ++i) differs |= r.interventions[i].after.log_prob != base.interventions[i].after.log_prob;
  EXPECT_TRUE(differs);
}

TEST(ExperimentSentence, OwnProblemsBecomeErrorsNotCrashes) {
  ExperimentSentence s;
  for (int i = 0; i < 2100; ++i) s.prompt += " a";  // past stories260K's 2048-token context
  s.target = " Lily";
  s.type = "name";
  s.index = 42;
  const SentenceResult r = evaluate_sentence(stories(), s, {});
  EXPECT_EQ(r.status, SentenceStatus::kError);
  EXPECT_FALSE(r.detail.empty());
  EXPECT_EQ(r.index, 42);
  // An exception from a callback is not a sentence's problem: it stops the run.
  ExperimentOptions o;
  o.n_threads = 2;
  EXPECT_THROW(run_experiment(stories(), dataset().sentences, o, [](const SentenceResult&) { throw IoError("disk full"); }),
               IoError);
}

TEST(ExperimentSentence, ResolvesTargetsLikeTheCli) {
  const TokenResolver tr(stories().tokenizer());
  const auto lily = tr.resolve("Lily");  // 'Lily' does not exist; ' Lily' does
  ASSERT_EQ(lily.candidates.size(), 1u);
  EXPECT_EQ(stories().tokenizer().token_text(lily.candidates[0]), " Lily");
  EXPECT_EQ(lily.n_tokens, 1);
  const auto park = tr.resolve("park");
  EXPECT_EQ(park.n_tokens, 3);
  const auto dog = tr.resolve(" dog");  // encodes as '▁' '▁do' 'g': the lone space is skipped
  EXPECT_EQ(stories().tokenizer().token_text(dog.candidates[0]), " do");
  EXPECT_EQ(dog.n_tokens, 2);
  const auto seven = tr.resolve("7");  // a number is text, not token id 7
  EXPECT_NE(seven.candidates[0], 7);
}

TEST(ExperimentSentence, GptLayoutOnTheKnowledgeModel) {
  // GPT-2 (LayerNorm, biases, Conv1D weights) on a spread of the held-out facts, every type.
  const auto model = Model::load(std::string(RESLENS_SOURCE_DIR) + "/models/knowledge-gpt2");
  const Dataset d = read_dataset(std::string(RESLENS_SOURCE_DIR) + "/data/knowledge.jsonl");
  std::vector<ExperimentSentence> some;
  for (size_t i = 0; i < d.sentences.size(); i += 160) some.push_back(d.sentences[i]);
  ExperimentOptions o;
  o.n_threads = 1;
  const auto one = run_experiment(*model, some, o);
  o.n_threads = 2;
  EXPECT_EQ(lines(run_experiment(*model, some, o)), lines(one));
  const ModelConfig& c = model->config();
  int kept = 0;
  for (const SentenceResult& r : one) {
    if (r.status != SentenceStatus::kKept) continue;
    ++kept;
    ASSERT_EQ(r.interventions.size(), 14u);
    // The stored neuron lists reproduce each number through ablate().
    const InterventionOutcome& both = r.interventions[2];
    Intervention iv;
    for (const int64_t f : both.ffn) iv.ffn_neurons.push_back({static_cast<int>(f / c.d_mlp), static_cast<int>(f % c.d_mlp)});
    for (const int64_t a : both.attn) {
      iv.attn_neurons.push_back({static_cast<int>(a / c.d_head / c.n_heads), static_cast<int>(a / c.d_head % c.n_heads),
                                 static_cast<int>(a % c.d_head), -1});
    }
    const bool bos = model->tokenizer().add_bos_default() && model->tokenizer().bos_id() >= 0;
    const AblationResult ab = ablate(*model, model->tokenizer().encode(r.prompt, bos), r.target_id, iv, -1, 1);
    EXPECT_EQ(ab.after.log_prob, both.after.log_prob) << r.prompt;
    EXPECT_EQ(ab.before.log_prob, r.before.log_prob) << r.prompt;
    EXPECT_LT(both.after.log_prob, r.interventions[3].after.log_prob) << r.prompt;  // top beats random
  }
  EXPECT_GE(kept, 4);
}

// ---- JSON ----

TEST(ExperimentJson, SentenceResultsRoundTripExactly) {
  for (const SentenceResult& r : results()) {
    const std::string j = sentence_result_json(r);
    EXPECT_EQ(j.find('\n'), std::string::npos);
    const SentenceResult back = parse_sentence_result(j);
    EXPECT_EQ(sentence_result_json(back), j);
    if (r.status == SentenceStatus::kKept) {
      EXPECT_EQ(back.attn_layer, r.attn_layer);
      EXPECT_EQ(back.interventions[0].after.prob, r.interventions[0].after.prob);
    }
  }
  SentenceResult odd;
  odd.before.log_prob = -std::numeric_limits<double>::infinity();
  EXPECT_TRUE(std::isnan(parse_sentence_result(sentence_result_json(odd)).before.log_prob));
  EXPECT_THROW(parse_sentence_result("{\"index\": 1"), FormatError);
  EXPECT_THROW(parse_sentence_result("{\"index\": 1}"), FormatError);
}

TEST(ExperimentJson, InfoRoundTripsAndMismatchesAreNamed) {
  ExperimentOptions o;
  o.seed = 18446744073709551615ull;  // 64 bits survive
  o.add_bos = false;
  const ExperimentInfo i = experiment_info(stories(), dataset(), o);
  const ExperimentInfo back = parse_experiment_info(experiment_info_json(i));
  EXPECT_EQ(experiment_info_json(back), experiment_info_json(i));
  EXPECT_EQ(back.options.seed, o.seed);
  EXPECT_EQ(experiment_info_mismatch(i, back), "");
  ExperimentOptions other = o;
  other.n_threads = 5;  // not a difference
  other.shard = parse_shard("2/3");
  EXPECT_EQ(experiment_info_mismatch(i, experiment_info(stories(), dataset(), other)), "");
  other.seed = 1;
  other.max_fraction = 0.1;
  EXPECT_EQ(experiment_info_mismatch(i, experiment_info(stories(), dataset(), other)), "neuron counts, seed");
  EXPECT_THROW(parse_experiment_info("{}"), FormatError);
}

// ---- aggregation and writers ----

SentenceResult fake(int64_t index, const std::string& type, double rr, double after_rr, std::vector<int64_t> values) {
  SentenceResult r;
  r.index = index;
  r.type = type;
  r.status = SentenceStatus::kKept;
  r.target_n_tokens = 1;
  r.before = {rr / 2, std::log(rr / 2), rr, static_cast<int64_t>(1 / rr), 0};
  for (const char* n : {"ffn_top", "ffn_random", "attn_ffn_top", "attn_ffn_random", "query_top", "query_random"}) {
    r.interventions.push_back({n, 10, 0, {after_rr / 2, std::log(after_rr / 2), after_rr, 1, 0}, {}, {}});
  }
  r.attn_layer = {1.0 * static_cast<double>(index), 0.5};
  r.ffn_layer = {0.25, -1.0};
  r.head = {1, 2, 3, 4};
  r.value_set = std::move(values);
  return r;
}

ExperimentInfo fake_info() {
  ExperimentInfo i;
  i.n_layers = 2;
  i.n_heads = 2;
  i.options.baselines = false;
  i.counts.ffn_top = 10;
  return i;
}

TEST(ExperimentSummary, MeansDecreasesAndSharedRates) {
  std::vector<SentenceResult> rs = {fake(0, "a", 1.0, 0.5, {1, 2, 3, 4}), fake(1, "a", 0.5, 0.25, {1, 2, 5, 6}),
                                    fake(2, "a", 0.5, 0.5, {1, 7, 8, 9}), fake(3, "b", 1.0, 0.0, {1, 2})};
  rs.push_back(SentenceResult{});
  rs.back().index = 4;
  rs.back().type = "b";
  rs.back().status = SentenceStatus::kNotInTopK;
  rs.back().target_n_tokens = 2;
  const ExperimentSummary s = summarize(fake_info(), rs);
  ASSERT_EQ(s.types.size(), 3u);
  const TypeSummary& all = s.types[0];
  EXPECT_EQ(all.type, "all");
  EXPECT_EQ(all.n_sentences, 5);
  EXPECT_EQ(all.n_kept, 4);
  EXPECT_EQ(all.n_not_in_top_k, 1);
  EXPECT_EQ(all.n_multi_token_targets, 1);
  EXPECT_DOUBLE_EQ(all.before.mrr, 0.75);
  ASSERT_EQ(all.interventions.size(), 6u);
  EXPECT_DOUBLE_EQ(all.interventions[0].after.mrr, 0.3125);
  EXPECT_DOUBLE_EQ(all.interventions[0].mrr_decrease, (0.75 - 0.3125) / 0.75 * 100);
  const TypeSummary& a = s.types[1];
  EXPECT_EQ(a.type, "a");
  EXPECT_DOUBLE_EQ(a.before.mrr, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(a.attn_layer[0], 1.0);
  EXPECT_DOUBLE_EQ(a.attn_layer_sum, 1.5);
  EXPECT_EQ(a.top_layers.front().label, "L0 attn");
  EXPECT_EQ(a.top_heads.front().label, "L1H1");
  // Type a: neuron 1 is in 3 of 3 sets, 2 in 2 of 3 (> half), the rest in one.
  // Rates: {1,2,3,4} 2/4, {1,2,5,6} 2/4, {1,7,8,9} 1/4 -> mean 5/12. Type b: one sentence, 2/2.
  EXPECT_DOUBLE_EQ(a.value_shared_rate, 5.0 / 12.0);
  EXPECT_DOUBLE_EQ(s.types[2].value_shared_rate, 1.0);
  EXPECT_DOUBLE_EQ(all.value_shared_rate, (5.0 / 12.0 * 3 + 1.0) / 4);
  EXPECT_TRUE(std::isnan(all.query_shared_rate));  // no query sets at all
  // Order of the input does not matter; the same index twice is an error.
  std::vector<SentenceResult> reversed(rs.rbegin(), rs.rend());
  EXPECT_EQ(summary_json(summarize(fake_info(), reversed)), summary_json(s));
  rs.push_back(rs.front());
  EXPECT_THROW(summarize(fake_info(), rs), InvalidArgument);
}

TEST(ExperimentSummary, WritersStateTheScalingAndParse) {
  const ExperimentInfo info = experiment_info(stories(), dataset(), {});
  const ExperimentSummary s = summarize(info, results());
  const json j = json::parse(summary_json(s));
  EXPECT_EQ(j["types"][0]["type"], "all");
  EXPECT_EQ(j["types"][0]["sentences"]["kept"], 5);
  EXPECT_EQ(j["settings"]["counts"]["rule"], info.counts.rule);
  EXPECT_EQ(j["types"][0]["interventions"].size(), 14u);
  const std::string csv = summary_csv(s);
  EXPECT_EQ(csv.rfind("table,type,row,column,value\n", 0), 0u);
  EXPECT_NE(csv.find("settings,all,scaling,rule,\"each count"), std::string::npos);  // quoted: it has commas
  EXPECT_NE(csv.find("metrics,name,ffn_top,mrr,"), std::string::npos);
  const std::string md = summary_markdown(s);
  EXPECT_NE(md.find(info.counts.rule), std::string::npos);
  EXPECT_NE(md.find("| original |"), std::string::npos);
  EXPECT_NE(md.find("### word"), std::string::npos);
  // Shards summarized together give the summary of the whole.
  ExperimentOptions o;
  o.shard = parse_shard("1/2");
  const ExperimentResult first = experiment(stories(), dataset(), o);
  o.shard = parse_shard("2/2");
  const ExperimentResult second = experiment(stories(), dataset(), o);
  EXPECT_EQ(first.sentences.size(), 4u);
  std::vector<SentenceResult> both = first.sentences;
  both.insert(both.end(), second.sentences.begin(), second.sentences.end());
  EXPECT_EQ(summary_json(summarize(info, both)), summary_json(s));
}

// ---- the shipped cloze dataset ----

TEST(ExperimentCloze, TargetsAreOneTokenAndEnoughPassTheFilter) {
  const Dataset d = read_dataset(std::string(RESLENS_SOURCE_DIR) + "/data/tinystories-cloze.jsonl", /*strict=*/true);
  const auto model = Model::load(test::shared_path("models/TinyStories-656K"));
  const TokenResolver tr(model->tokenizer());
  std::map<std::string, int> kept;
  int total_kept = 0;
  for (const ExperimentSentence& s : d.sentences) {
    const auto sc = experiment_impl::screen(*model, tr, s, {}, /*capture=*/false);
    EXPECT_EQ(sc.result.target_n_tokens, 1) << s.target;
    EXPECT_EQ(sc.result.target_token, s.target);
    if (sc.result.status == SentenceStatus::kKept) ++kept[s.type], ++total_kept;
  }
  EXPECT_GE(total_kept, 100);
  for (const char* t : {"name", "object", "animal", "place"}) EXPECT_GE(kept[t], 10) << t;
}

}  // namespace
}  // namespace reslens
