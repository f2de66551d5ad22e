// The classification policy rule by rule: each matcher, first-match order, defaults, hints, and the
// config checks (contradictory and unreachable rules with their paths). Expected classes are written out
// by hand from the rule text.
#include "classify/classifier.h"

#include <gtest/gtest.h>

namespace inferd::classify {
namespace {

ClassRuleConfig Rule(const std::string& name, const std::string& cls) {
  ClassRuleConfig r;
  r.name = name;
  r.cls = cls;
  return r;
}

ClassificationConfig NoRules() {
  ClassificationConfig c;
  c.rules.clear();
  return c;
}

RequestFeatures Gen(int64_t max_tokens, int64_t budget = 0) {
  RequestFeatures f;
  f.rpc = Rpc::kGenerate;
  f.max_tokens = max_tokens;
  f.latency_budget_ms = budget;
  return f;
}

RequestFeatures Rec(int64_t candidates, int64_t candidate_tokens = 0) {
  RequestFeatures f;
  f.rpc = Rpc::kRecommend;
  f.candidates = candidates;
  f.candidate_tokens = candidate_tokens;
  return f;
}

TEST(ClassifierTest, DefaultConfigIsTheDocumentedSmallGenerateRule) {
  Classifier c{ClassificationConfig{}};
  EXPECT_EQ(c.Classify(Gen(0)).cls, RequestClass::kComplex);   // 0 = server default, not small
  EXPECT_EQ(c.Classify(Gen(16)).cls, RequestClass::kComplex);  // no latency budget
  EXPECT_EQ(c.Classify(Gen(16, 200)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(17, 200)).cls, RequestClass::kComplex);
  RequestFeatures stream = Gen(1, 5);
  stream.rpc = Rpc::kGenerateStream;
  EXPECT_EQ(c.Classify(stream).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Rec(3)).cls, RequestClass::kRealtime);
  RequestFeatures hinted = Gen(16, 200);
  hinted.hint = RequestClass::kComplex;
  EXPECT_EQ(c.Classify(hinted).cls, RequestClass::kComplex);
  RequestFeatures rec_hint = Rec(3);
  rec_hint.hint = RequestClass::kComplex;
  EXPECT_EQ(c.Classify(rec_hint).cls, RequestClass::kComplex);
  EXPECT_FALSE(c.needs_token_counts());
}

TEST(ClassifierTest, DefaultsPerRpc) {
  ClassificationConfig cfg = NoRules();
  cfg.generate_default = "realtime";
  cfg.generate_stream_default = "complex";
  cfg.recommend_default = "complex";
  Classifier c(cfg);
  EXPECT_EQ(c.Classify(Gen(100)).cls, RequestClass::kRealtime);
  RequestFeatures s = Gen(100);
  s.rpc = Rpc::kGenerateStream;
  EXPECT_EQ(c.Classify(s).cls, RequestClass::kComplex);
  EXPECT_EQ(c.Classify(Rec(1)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.SourceName(c.Classify(Rec(1)).source), "default:recommend");
}

TEST(ClassifierTest, RpcMatcher) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("stream-is-realtime", "realtime"));
  cfg.rules[0].match.rpc = {"generate_stream"};
  Classifier c(cfg);
  RequestFeatures s = Gen(100);
  s.rpc = Rpc::kGenerateStream;
  EXPECT_EQ(c.Classify(s).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(100)).cls, RequestClass::kComplex);
}

TEST(ClassifierTest, ClassHintMatcherWhenHintsAreNotHonoured) {
  ClassificationConfig cfg = NoRules();
  cfg.honor_class_hint = false;
  cfg.rules.push_back(Rule("hinted-realtime-stays-complex", "complex"));
  cfg.rules[0].match.class_hint = {"realtime"};
  cfg.generate_default = "realtime";
  Classifier c(cfg);
  RequestFeatures f = Gen(4);
  f.hint = RequestClass::kRealtime;
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kComplex);
  f.hint = RequestClass::kComplex;  // not honoured, no rule: the default
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kRealtime);
  f.hint.reset();
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kRealtime);
}

TEST(ClassifierTest, MaxTokensRangeIsInclusiveAndNeverMatchesRecommend) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("mid", "realtime"));
  cfg.rules[0].match.max_tokens = {4, 8};
  cfg.recommend_default = "complex";
  Classifier c(cfg);
  EXPECT_EQ(c.Classify(Gen(3)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.Classify(Gen(4)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(8)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(9)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.Classify(Rec(5)).cls, RequestClass::kComplex);
}

TEST(ClassifierTest, PromptTokensRangeAppliesToBothRpcsAndAsksForCounts) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("long-prompt", "complex"));
  cfg.rules[0].match.prompt_tokens = {1000, std::nullopt};
  cfg.generate_default = "realtime";
  Classifier c(cfg);
  EXPECT_TRUE(c.needs_token_counts());
  RequestFeatures g = Gen(4);
  g.prompt_tokens = 999;
  EXPECT_EQ(c.Classify(g).cls, RequestClass::kRealtime);
  g.prompt_tokens = 1000;
  EXPECT_EQ(c.Classify(g).cls, RequestClass::kComplex);
  RequestFeatures r = Rec(2);
  r.prompt_tokens = 5000;
  EXPECT_EQ(c.Classify(r).cls, RequestClass::kComplex);
}

TEST(ClassifierTest, CandidateMatchersApplyToRecommendOnly) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("many-candidates", "complex"));
  cfg.rules[0].match.candidates = {100, std::nullopt};
  cfg.rules.push_back(Rule("heavy-candidates", "complex"));
  cfg.rules[1].match.candidate_tokens = {std::nullopt, 10};  // at most 10 tokens in all: complex (odd but testable)
  Classifier c(cfg);
  EXPECT_EQ(c.Classify(Rec(99, 50)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Rec(100, 50)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.SourceName(c.Classify(Rec(100, 50)).source), "many-candidates");
  EXPECT_EQ(c.Classify(Rec(2, 10)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.SourceName(c.Classify(Rec(2, 10)).source), "heavy-candidates");
  EXPECT_EQ(c.Classify(Gen(1)).cls, RequestClass::kComplex);
  EXPECT_EQ(c.SourceName(c.Classify(Gen(1)).source), "default:generate");
}

TEST(ClassifierTest, LatencyBudgetAndModelMatchers) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("tight-budget-on-light", "realtime"));
  cfg.rules[0].match.latency_budget_ms = {1, 50};
  cfg.rules[0].match.model = {"light", ""};
  Classifier c(cfg);
  RequestFeatures f = Gen(100, 50);
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kRealtime);  // "" = names no model
  f.model = "light";
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kRealtime);
  f.model = "full";
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kComplex);
  f.model = "light";
  f.latency_budget_ms = 51;
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kComplex);
  f.latency_budget_ms = 0;
  EXPECT_EQ(c.Classify(f).cls, RequestClass::kComplex);
}

TEST(ClassifierTest, FirstMatchWinsAndDecisionsAreCountedByRule) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("tiny", "realtime"));
  cfg.rules[0].match.max_tokens = {1, 4};
  cfg.rules.push_back(Rule("small", "complex"));
  cfg.rules[1].match.max_tokens = {1, 16};
  Classifier c(cfg);
  EXPECT_EQ(c.Classify(Gen(3)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(4)).cls, RequestClass::kRealtime);
  EXPECT_EQ(c.Classify(Gen(10)).cls, RequestClass::kComplex);
  RequestFeatures hinted = Gen(3);
  hinted.hint = RequestClass::kComplex;
  EXPECT_EQ(c.Classify(hinted).cls, RequestClass::kComplex);
  ClassifierStats s = c.stats();
  ASSERT_EQ(s.decisions.size(), 2u + 1u + 3u);
  EXPECT_EQ(s.decisions[0].name, "tiny");
  EXPECT_EQ(s.decisions[0].count, 2u);
  EXPECT_EQ(s.decisions[1].name, "small");
  EXPECT_EQ(s.decisions[1].count, 1u);
  EXPECT_EQ(s.decisions[2].name, "class_hint");
  EXPECT_EQ(s.decisions[2].count, 1u);
  EXPECT_EQ(s.decisions[3].name, "default:generate");
  EXPECT_EQ(s.decisions[3].count, 0u);
}

bool HasError(const std::vector<std::string>& errors, const std::string& needle) {
  for (const auto& e : errors) {
    if (e.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST(CheckRulesTest, ValidRulesHaveNoProblems) {
  EXPECT_TRUE(CheckRules(ClassificationConfig{}).empty());
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("tiny", "realtime"));
  cfg.rules[0].match.max_tokens = {1, 4};
  cfg.rules.push_back(Rule("small", "complex"));
  cfg.rules[1].match.max_tokens = {1, 16};  // wider than the earlier one: still reachable
  EXPECT_TRUE(CheckRules(cfg).empty());
}

TEST(CheckRulesTest, EmptyRangeIsContradictory) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("backwards", "realtime"));
  cfg.rules[0].match.max_tokens = {10, 5};
  auto errors = CheckRules(cfg);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "classification.rules[0] (backwards).match.max_tokens: contradictory: min 10 > max 5");
}

TEST(CheckRulesTest, FieldsOfDifferentRpcsAreContradictory) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("both", "realtime"));
  cfg.rules[0].match.max_tokens = {1, 4};
  cfg.rules[0].match.candidates = {1, 4};
  cfg.rules.push_back(Rule("recommend-max-tokens", "realtime"));
  cfg.rules[1].match.rpc = {"recommend"};
  cfg.rules[1].match.max_tokens = {1, 4};
  auto errors = CheckRules(cfg);
  EXPECT_TRUE(HasError(errors, "classification.rules[0] (both).match: contradictory: matches no RPC")) << errors[0];
  EXPECT_TRUE(HasError(errors, "classification.rules[1] (recommend-max-tokens).match: contradictory"));
}

TEST(CheckRulesTest, RuleCoveredByAnEarlierOneIsUnreachable) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("small", "complex"));
  cfg.rules[0].match.max_tokens = {1, 16};
  cfg.rules.push_back(Rule("tiny", "realtime"));
  cfg.rules[1].match.max_tokens = {1, 4};
  cfg.rules[1].match.rpc = {"generate"};
  auto errors = CheckRules(cfg);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0],
            "classification.rules[1] (tiny): unreachable: rules[0] (small) matches every request it matches");
}

TEST(CheckRulesTest, CatchAllMakesLaterRulesUnreachable) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("everything", "complex"));
  cfg.rules.push_back(Rule("recommend", "realtime"));
  cfg.rules[1].match.rpc = {"recommend"};
  EXPECT_TRUE(HasError(CheckRules(cfg), "classification.rules[1] (recommend): unreachable"));
}

TEST(CheckRulesTest, ModelListsDecideCoverage) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("light", "realtime"));
  cfg.rules[0].match.model = {"light"};
  cfg.rules.push_back(Rule("light-or-full", "complex"));
  cfg.rules[1].match.model = {"light", "full"};  // not covered: "full" is new
  cfg.rules.push_back(Rule("light-again", "complex"));
  cfg.rules[2].match.model = {"light"};
  auto errors = CheckRules(cfg);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("rules[2] (light-again): unreachable: rules[0] (light)"), std::string::npos) << errors[0];
}

TEST(CheckRulesTest, HintRulesAreUnreachableWhileHintsAreHonoured) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("hinted", "complex"));
  cfg.rules[0].match.class_hint = {"realtime"};
  auto errors = CheckRules(cfg);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("classification.rules[0] (hinted).match.class_hint: unreachable"), std::string::npos);
  cfg.honor_class_hint = false;
  EXPECT_TRUE(CheckRules(cfg).empty());
}

TEST(CheckRulesTest, NamesAndClassesAreChecked) {
  ClassificationConfig cfg = NoRules();
  cfg.rules.push_back(Rule("a", "fast"));
  cfg.rules[0].match.rpc = {"generate"};
  cfg.rules.push_back(Rule("a", "realtime"));
  cfg.rules[1].match.rpc = {"recommend"};
  cfg.rules.push_back(Rule("", "realtime"));
  cfg.rules[2].match.rpc = {"chat"};
  cfg.recommend_default = "slow";
  auto errors = CheckRules(cfg);
  EXPECT_TRUE(HasError(errors, "classification.recommend_default: unknown class 'slow'"));
  EXPECT_TRUE(HasError(errors, "classification.rules[0] (a).class: unknown class 'fast'"));
  EXPECT_TRUE(HasError(errors, "classification.rules[1] (a).name: duplicate of rules[0]"));
  EXPECT_TRUE(HasError(errors, "classification.rules[2] ().name: must not be empty"));
  EXPECT_TRUE(HasError(errors, "classification.rules[2] ().match.rpc: unknown RPC 'chat'"));
  EXPECT_THROW(Classifier{cfg}, std::invalid_argument);
}

}  // namespace
}  // namespace inferd::classify
