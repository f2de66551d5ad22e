#include "classify/classifier.h"

#include <limits>
#include <stdexcept>

namespace inferd::classify {

// Every condition as a closed interval or a bit set; absent conditions are the full range or set.
struct Classifier::Rule {
  std::string name;
  uint32_t rpc_mask = 0;   // bit Rpc
  uint32_t hint_mask = 0;  // bit 0 unspecified, 1 realtime, 2 complex
  bool any_model = true;
  std::vector<std::string> models;
  struct Range {
    int64_t lo = std::numeric_limits<int64_t>::min();
    int64_t hi = std::numeric_limits<int64_t>::max();
    bool set = false;
    bool Contains(int64_t v) const { return v >= lo && v <= hi; }
    bool Covers(const Range& o) const { return lo <= o.lo && hi >= o.hi; }
  };
  Range max_tokens, prompt_tokens, candidates, candidate_tokens, latency_budget_ms;
  RequestClass cls = RequestClass::kRealtime;
};

namespace {

constexpr uint32_t kAllRpcs = 0b111;
constexpr uint32_t kGenerateRpcs =
    (1u << static_cast<int>(Rpc::kGenerate)) | (1u << static_cast<int>(Rpc::kGenerateStream));
constexpr uint32_t kRecommendRpcs = 1u << static_cast<int>(Rpc::kRecommend);
constexpr uint32_t kAllHints = 0b111;
constexpr uint32_t kUnspecifiedHint = 0b001;

std::optional<RequestClass> ParseClass(const std::string& s) {
  if (s == "realtime") return RequestClass::kRealtime;
  if (s == "complex") return RequestClass::kComplex;
  return std::nullopt;
}

uint32_t HintBit(std::optional<RequestClass> hint) {
  if (!hint) return 0b001;
  return *hint == RequestClass::kRealtime ? 0b010 : 0b100;
}

// Normalizes one rule; appends problems (without the rule's path) to `errors`.
Classifier::Rule Normalize(const ClassRuleConfig& c, bool honor_hint, std::vector<std::string>* errors) {
  Classifier::Rule r;
  r.name = c.name;
  if (c.name.empty()) errors->push_back("name: must not be empty");
  if (auto cls = ParseClass(c.cls)) {
    r.cls = *cls;
  } else {
    errors->push_back("class: unknown class '" + c.cls + "' (realtime, complex)");
  }
  r.rpc_mask = c.match.rpc.empty() ? kAllRpcs : 0;
  for (const std::string& name : c.match.rpc) {
    if (name == "generate") {
      r.rpc_mask |= 1u << static_cast<int>(Rpc::kGenerate);
    } else if (name == "generate_stream") {
      r.rpc_mask |= 1u << static_cast<int>(Rpc::kGenerateStream);
    } else if (name == "recommend") {
      r.rpc_mask |= kRecommendRpcs;
    } else {
      errors->push_back("match.rpc: unknown RPC '" + name + "' (generate, generate_stream, recommend)");
    }
  }
  r.hint_mask = c.match.class_hint.empty() ? kAllHints : 0;
  for (const std::string& name : c.match.class_hint) {
    if (name == "unspecified") {
      r.hint_mask |= 0b001;
    } else if (name == "realtime") {
      r.hint_mask |= 0b010;
    } else if (name == "complex") {
      r.hint_mask |= 0b100;
    } else {
      errors->push_back("match.class_hint: unknown value '" + name + "' (unspecified, realtime, complex)");
    }
  }
  if (honor_hint && !c.match.class_hint.empty() && (r.hint_mask & kUnspecifiedHint) == 0) {
    errors->push_back(
        "match.class_hint: unreachable: with honor_class_hint a hint other than unspecified decides before any "
        "rule");
  }
  if (honor_hint) r.hint_mask &= kUnspecifiedHint;
  r.any_model = c.match.model.empty();
  r.models = c.match.model;

  auto range = [&](const RangeConfig& in, const char* field, Classifier::Rule::Range* out) {
    if (!in.min && !in.max) return;
    out->set = true;
    if (in.min) out->lo = *in.min;
    if (in.max) out->hi = *in.max;
    if (out->lo > out->hi) {
      errors->push_back(std::string("match.") + field + ": contradictory: min " + std::to_string(out->lo) + " > max " +
                        std::to_string(out->hi));
    }
  };
  range(c.match.max_tokens, "max_tokens", &r.max_tokens);
  range(c.match.prompt_tokens, "prompt_tokens", &r.prompt_tokens);
  range(c.match.candidates, "candidates", &r.candidates);
  range(c.match.candidate_tokens, "candidate_tokens", &r.candidate_tokens);
  range(c.match.latency_budget_ms, "latency_budget_ms", &r.latency_budget_ms);

  const uint32_t asked = r.rpc_mask;
  if (r.max_tokens.set) r.rpc_mask &= kGenerateRpcs;
  if (r.candidates.set || r.candidate_tokens.set) r.rpc_mask &= kRecommendRpcs;
  if (asked != 0 && r.rpc_mask == 0) {
    errors->push_back(
        "match: contradictory: matches no RPC (max_tokens applies to generate and generate_stream only, "
        "candidates and candidate_tokens to recommend only)");
  }
  return r;
}

bool ModelsCover(const Classifier::Rule& a, const Classifier::Rule& b) {
  if (a.any_model) return true;
  if (b.any_model) return false;
  for (const std::string& m : b.models) {
    bool found = false;
    for (const std::string& n : a.models) found = found || n == m;
    if (!found) return false;
  }
  return true;
}

// Whether every request `b` matches is matched by `a`.
bool Covers(const Classifier::Rule& a, const Classifier::Rule& b) {
  return (b.rpc_mask & ~a.rpc_mask) == 0 && (b.hint_mask & ~a.hint_mask) == 0 && ModelsCover(a, b) &&
         a.max_tokens.Covers(b.max_tokens) && a.prompt_tokens.Covers(b.prompt_tokens) &&
         a.candidates.Covers(b.candidates) && a.candidate_tokens.Covers(b.candidate_tokens) &&
         a.latency_budget_ms.Covers(b.latency_budget_ms);
}

std::string RulePath(size_t i, const std::string& name) {
  return "classification.rules[" + std::to_string(i) + "] (" + name + ")";
}

}  // namespace

const char* RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kGenerate:
      return "generate";
    case Rpc::kGenerateStream:
      return "generate_stream";
    case Rpc::kRecommend:
      return "recommend";
  }
  return "?";
}

std::vector<std::string> CheckRules(const ClassificationConfig& config) {
  std::vector<std::string> errors;
  const std::pair<const char*, const std::string*> defaults[] = {
      {"generate_default", &config.generate_default},
      {"generate_stream_default", &config.generate_stream_default},
      {"recommend_default", &config.recommend_default}};
  for (const auto& [key, value] : defaults) {
    if (!ParseClass(*value)) {
      errors.push_back(std::string("classification.") + key + ": unknown class '" + *value + "' (realtime, complex)");
    }
  }
  std::vector<Classifier::Rule> rules;
  std::vector<bool> valid;
  for (size_t i = 0; i < config.rules.size(); ++i) {
    std::vector<std::string> own;
    rules.push_back(Normalize(config.rules[i], config.honor_class_hint, &own));
    valid.push_back(own.empty());
    for (const std::string& e : own) errors.push_back(RulePath(i, config.rules[i].name) + "." + e);
    for (size_t j = 0; j < i; ++j) {
      if (config.rules[j].name == config.rules[i].name && !config.rules[i].name.empty()) {
        errors.push_back(RulePath(i, config.rules[i].name) + ".name: duplicate of rules[" + std::to_string(j) + "]");
      }
    }
    if (!own.empty()) continue;
    for (size_t j = 0; j < i; ++j) {
      if (valid[j] && Covers(rules[j], rules[i])) {
        errors.push_back(RulePath(i, config.rules[i].name) + ": unreachable: rules[" + std::to_string(j) + "] (" +
                         config.rules[j].name + ") matches every request it matches");
        break;
      }
    }
  }
  return errors;
}

Classifier::Classifier(const ClassificationConfig& config) : honor_class_hint_(config.honor_class_hint) {
  std::vector<std::string> errors = CheckRules(config);
  if (!errors.empty()) throw std::invalid_argument(errors.front());
  for (const ClassRuleConfig& c : config.rules) {
    std::vector<std::string> ignored;
    rules_.push_back(Normalize(c, honor_class_hint_, &ignored));
    const Rule& r = rules_.back();
    needs_token_counts_ = needs_token_counts_ || r.prompt_tokens.set || r.candidate_tokens.set;
    names_.push_back(r.name);
  }
  defaults_[static_cast<int>(Rpc::kGenerate)] = *ParseClass(config.generate_default);
  defaults_[static_cast<int>(Rpc::kGenerateStream)] = *ParseClass(config.generate_stream_default);
  defaults_[static_cast<int>(Rpc::kRecommend)] = *ParseClass(config.recommend_default);
  names_.push_back("class_hint");
  for (int i = 0; i < kNumRpcs; ++i) names_.push_back(std::string("default:") + RpcName(static_cast<Rpc>(i)));
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) counts_[i].store(0);
}

Classifier::~Classifier() = default;

Decision Classifier::Classify(const RequestFeatures& f) const {
  const auto n_rules = static_cast<int32_t>(rules_.size());
  Decision d;
  if (honor_class_hint_ && f.hint) {
    d = {*f.hint, n_rules};
  } else {
    d = {defaults_[static_cast<int>(f.rpc)], n_rules + 1 + static_cast<int32_t>(f.rpc)};
    const uint32_t rpc_bit = 1u << static_cast<int>(f.rpc);
    const bool generate = f.rpc != Rpc::kRecommend;
    for (int32_t i = 0; i < n_rules; ++i) {
      const Rule& r = rules_[static_cast<size_t>(i)];
      if ((r.rpc_mask & rpc_bit) == 0 || (r.hint_mask & HintBit(f.hint)) == 0) continue;
      if (!r.any_model) {
        bool found = false;
        for (const std::string& m : r.models) found = found || m == f.model;
        if (!found) continue;
      }
      if (generate && !r.max_tokens.Contains(f.max_tokens)) continue;
      if (!generate && (!r.candidates.Contains(f.candidates) || !r.candidate_tokens.Contains(f.candidate_tokens))) {
        continue;
      }
      if (!r.prompt_tokens.Contains(f.prompt_tokens) || !r.latency_budget_ms.Contains(f.latency_budget_ms)) continue;
      d = {r.cls, i};
      break;
    }
  }
  counts_[static_cast<size_t>(d.source)].fetch_add(1, std::memory_order_relaxed);
  return d;
}

const std::string& Classifier::SourceName(int32_t source) const {
  return names_.at(static_cast<size_t>(source));
}

ClassifierStats Classifier::stats() const {
  ClassifierStats s;
  for (size_t i = 0; i < names_.size(); ++i) s.decisions.push_back({names_[i], counts_[i].load()});
  return s;
}

}  // namespace inferd::classify
