#include "daemon/warmup.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace inferd::daemon {
namespace {

int32_t CeilDiv(int64_t a, int64_t b) {
  return static_cast<int32_t>((a + b - 1) / b);
}

// Blocks one sequence of `tokens` positions holds.
int64_t BlocksFor(int32_t tokens, int32_t block_size) {
  return CeilDiv(tokens, block_size);
}

WarmupClass PlanPrefill(const ModelPoolConfig& c, const WarmupModel& m) {
  WarmupClass out{"prefill", {}, {}};
  const int32_t chunk = c.scheduler.prefill_chunk_tokens;
  constexpr int32_t kMaxTokens = 2;
  const int32_t room = std::max(1, m.max_model_len - kMaxTokens - 1);
  // A full chunk and a remainder chunk that attends to the cached first one.
  const int32_t long_len = std::min(chunk + 8, room);
  const int64_t blocks = BlocksFor(long_len + kMaxTokens, m.block_size);
  int32_t together = std::max(1, c.scheduler.max_batched_tokens / chunk);
  together = std::min<int64_t>({together, c.scheduler.max_running, std::max<int64_t>(1, m.kv_num_blocks / blocks)});
  out.labels.push_back("prefill " + std::to_string(together) + " x " + std::to_string(long_len) +
                       " tokens (chunks of " + std::to_string(chunk) + ")");
  out.groups.push_back({std::vector<int32_t>(static_cast<size_t>(together), long_len),
                        std::vector<int32_t>(static_cast<size_t>(together), kMaxTokens), 0});
  const int32_t short_len = std::min({16, m.gemv_max_rows, room});
  out.labels.push_back("prefill " + std::to_string(short_len) + " tokens");
  out.groups.push_back({{short_len}, {kMaxTokens}, 0});
  return out;
}

WarmupClass PlanDecode(const ModelPoolConfig& c, const WarmupModel& m) {
  WarmupClass out{"decode", {}, {}};
  const int32_t budget = c.scheduler.max_batched_tokens;
  int32_t cap = std::min(c.scheduler.max_running, budget);
  // Every prompt fits in the first step's token budget, so all cap sequences start decoding together.
  const auto prompt_for = [&](int32_t n) { return std::max(1, std::min({8, budget / n, m.max_model_len / 4})); };
  std::vector<int32_t> buckets;  // descending
  auto plan_buckets = [&] {
    buckets.clear();
    for (int32_t b = 1; b < cap; b *= 2) buckets.push_back(b);
    buckets.push_back(cap);
    if (m.gemv_max_rows + 1 < cap) buckets.push_back(m.gemv_max_rows + 1);
    std::sort(buckets.rbegin(), buckets.rend());
    buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  };
  // Sequence j decodes once per bucket above j, so after the prefill step the decode steps run exactly
  // buckets[0], buckets[1], ... sequences; sequence 0 one step more, in case it was scheduled a step ahead of
  // the others (the engine starts stepping at the first submit).
  auto max_tokens_of = [&](int32_t j) {
    int32_t steps = 0;
    for (int32_t b : buckets) steps += b > j ? 1 : 0;
    return 1 + steps + (j == 0 ? 1 : 0);
  };
  for (;;) {
    plan_buckets();
    int64_t blocks = 0;
    for (int32_t j = 0; j < cap; ++j) blocks += BlocksFor(prompt_for(cap) + max_tokens_of(j), m.block_size);
    const bool fits = prompt_for(cap) + max_tokens_of(0) <= m.max_model_len;
    if ((blocks <= m.kv_num_blocks && fits) || cap == 1) break;
    cap = cap / 2;
  }
  if (BlocksFor(prompt_for(cap) + max_tokens_of(0), m.block_size) > m.kv_num_blocks) return out;
  WarmupGroup g;
  for (int32_t j = 0; j < cap; ++j) {
    g.prompt_lengths.push_back(prompt_for(cap));
    g.max_tokens.push_back(max_tokens_of(j));
  }
  std::string sizes;
  for (int32_t b : buckets) sizes += (sizes.empty() ? "" : ", ") + std::to_string(b);
  out.labels.push_back("decode batches " + sizes);
  out.groups.push_back(std::move(g));
  return out;
}

WarmupClass PlanRecommend(const ModelPoolConfig& c, const WarmupModel& m) {
  WarmupClass out{"recommend", {}, {}};
  std::vector<int32_t> counts;
  for (int32_t n : {1, 8, 32}) counts.push_back(std::min(n, c.limits.max_candidates));
  counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
  const int32_t context = std::max(1, std::min(48, m.max_model_len - 8));
  for (int32_t n : counts) {
    // Context blocks once, plus about two blocks of each candidate's own (its tokens and the shared tail).
    if (BlocksFor(context, m.block_size) + 2LL * n > m.kv_num_blocks) continue;
    out.labels.push_back("recommend " + std::to_string(n) + " candidates");
    out.groups.push_back({{context}, {}, n});
  }
  return out;
}

}  // namespace

std::vector<WarmupClass> PlanWarmup(const ModelPoolConfig& config, const WarmupModel& model) {
  std::vector<WarmupClass> plan;
  if (!config.warmup.enabled) return plan;
  for (const std::string& name : config.warmup.classes) {
    if (name == "prefill") plan.push_back(PlanPrefill(config, model));
    if (name == "decode") plan.push_back(PlanDecode(config, model));
    if (name == "recommend") plan.push_back(PlanRecommend(config, model));
  }
  return plan;
}

WarmupReport RunWarmup(Engine& engine, const std::vector<WarmupClass>& plan, int32_t vocab_size,
                       const std::function<void()>& before_group) {
  const auto start = std::chrono::steady_clock::now();
  int32_t salt = 0;
  auto tokens = [&](int32_t n) {
    ++salt;
    std::vector<TokenId> ids(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      ids[static_cast<size_t>(i)] = static_cast<TokenId>((i * 7919LL + salt * 104729LL) % vocab_size);
    }
    return ids;
  };
  WarmupReport report;
  for (const WarmupClass& k : plan) report.classes.push_back({k.name, 0.0, 0});
  for (int32_t round = 0; round < kWarmupRounds; ++round) {
    for (size_t ci = 0; ci < plan.size(); ++ci) {
      const WarmupClass& k = plan[ci];
      const auto class_start = std::chrono::steady_clock::now();
      for (size_t gi = 0; gi < k.groups.size(); ++gi) {
        const WarmupGroup& g = k.groups[gi];
        if (before_group) before_group();
        std::vector<SubmitResult> runs;
        engine.HoldIntake(true);  // the group starts in one step whatever the submitting thread's scheduling
        if (g.candidates > 0) {
          RecommendRequest rec;
          rec.context = tokens(g.prompt_lengths.at(0));
          for (int32_t i = 0; i < g.candidates; ++i) rec.candidates.push_back(tokens(4 + i % 3));
          rec.deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
          runs.push_back(engine.Submit(std::move(rec)));
        } else {
          for (size_t i = 0; i < g.prompt_lengths.size(); ++i) {
            GenerateRequest r;
            r.prompt = tokens(g.prompt_lengths[i]);
            r.max_tokens = g.max_tokens.at(i);
            r.ignore_eos = true;
            runs.push_back(engine.Submit(std::move(r)));
          }
        }
        engine.HoldIntake(false);
        for (SubmitResult& s : runs) {
          if (!s.status.ok()) throw std::runtime_error("warm-up " + k.labels[gi] + ": refused: " + s.status.ToString());
          const RequestOutcome& o = s.stream->Wait();
          if (!o.status.ok()) throw std::runtime_error("warm-up " + k.labels[gi] + ": failed: " + o.status.ToString());
        }
        report.classes[ci].requests += static_cast<int32_t>(runs.size());
      }
      report.classes[ci].seconds +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - class_start).count();
    }
  }
  report.total_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace inferd::daemon
