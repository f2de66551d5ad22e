// Classifier: maps a request's features to a latency class with the configured rules (DESIGN.md section 1).
// Order: a class_hint other than UNSPECIFIED when honor_class_hint; else the first matching rule; else the
// RPC's default. Immutable after construction; Classify is thread-safe (counters are atomics).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inferd/config.h"
#include "inferd/request_types.h"

namespace inferd::classify {

enum class Rpc : int32_t { kGenerate = 0, kGenerateStream = 1, kRecommend = 2 };
inline constexpr int kNumRpcs = 3;
const char* RpcName(Rpc rpc);  // "generate" | "generate_stream" | "recommend"

// What rules look at, as the request sent it. Fields an RPC lacks are ignored for it.
struct RequestFeatures {
  Rpc rpc = Rpc::kGenerate;
  std::optional<RequestClass> hint;  // nullopt = UNSPECIFIED
  std::string model;                 // "" when the request names none
  int64_t max_tokens = 0;            // Generate
  int64_t prompt_tokens = 0;         // Generate prompt / Recommend context; valid only if needs_token_counts()
  int64_t candidates = 0;            // Recommend
  int64_t candidate_tokens = 0;      // Recommend; valid only if needs_token_counts()
  int64_t latency_budget_ms = 0;
};

struct Decision {
  RequestClass cls = RequestClass::kComplex;
  // Index into ClassifierStats::decisions: one per rule in order, then "class_hint", then one default per RPC.
  int32_t source = 0;
};

struct ClassifierStats {
  struct Entry {
    std::string name;    // the rule's name, "class_hint", or "default:<rpc>"
    uint64_t count = 0;  // decisions made by it since start
  };
  std::vector<Entry> decisions;
};

// Problems of classification config, each "classification.<path>: <reason>" with the rule's index and
// name: contradictory rules (an empty range, no RPC left that has the fields it ranges over, a class_hint
// list that honor_class_hint makes unmatchable) and rules unreachable because an earlier rule matches
// everything they match (checked rule against rule; a rule covered only by several earlier ones together
// is not detected). Empty when valid.
std::vector<std::string> CheckRules(const ClassificationConfig& config);

class Classifier {
 public:
  // Throws std::invalid_argument with CheckRules' first problem, or for an unknown class/RPC/hint name.
  explicit Classifier(const ClassificationConfig& config);
  ~Classifier();

  Decision Classify(const RequestFeatures& features) const;
  // Whether any rule ranges over prompt_tokens or candidate_tokens (the caller must then count them).
  bool needs_token_counts() const { return needs_token_counts_; }
  const std::string& SourceName(int32_t source) const;
  ClassifierStats stats() const;

  struct Rule;  // normalized form of ClassRuleConfig

 private:
  std::vector<Rule> rules_;
  bool honor_class_hint_ = true;
  RequestClass defaults_[kNumRpcs] = {};
  bool needs_token_counts_ = false;
  std::vector<std::string> names_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
};

}  // namespace inferd::classify
