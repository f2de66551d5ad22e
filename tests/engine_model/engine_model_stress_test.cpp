// Random interleavings of submit / cancel / deadline / step over thousands of short requests on the real
// model (fp32 tiny checkpoints), with a KV pool small enough to preempt. Afterwards the block pool is
// exactly full again (no leaked reference, no lost block), and every request that finished OK produced what
// it produces alone (cancelled ones a prefix of it).
//
// Two drivers: EngineCore stepped by the test (seeded, reproducible to the step; invariants checked after
// every step) and the threaded Engine with concurrent submitters and cancellers (real races).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "engine_model_util.h"

namespace inferd::engine_model {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int32_t kMaxTokens = 4;

// A fixed menu of prompts and candidates, so expected outputs are computed once per distinct prompt.
struct Menu {
  std::vector<std::vector<TokenId>> prompts;     // 1..12 tokens; half share prefixes
  std::vector<std::vector<TokenId>> candidates;  // 1..3 tokens
  std::vector<std::vector<TokenId>> expected;    // per prompt: greedy alone, model EOS stops, kMaxTokens
};

struct Counts {
  int ok = 0, cancelled = 0, deadline = 0, rejected = 0, recommends = 0;
};

class EngineModelStressTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = ModelsDir() + "/" + GetParam();
    if (!fs::exists(dir_ + "/reference.json")) GTEST_SKIP() << dir_ << " not generated";
    const Reference ref = LoadReference(dir_);
    const int32_t vocab = LoadRunner(dir_)->VocabSize();
    for (int i = 0; i < 24; ++i) {
      const int32_t len = 1 + i % 12;
      if (i % 2 == 0) {
        menu_.prompts.push_back(Tokens(len, 700 + i, vocab));
      } else {
        const int32_t shared = std::min(len, 8);  // two full 4-token blocks of the longest reference prompt
        menu_.prompts.push_back(Concat(Slice(ref.prompts.back(), 0, shared), Tokens(len - shared, 700 + i, vocab)));
      }
    }
    for (int i = 0; i < 12; ++i) menu_.candidates.push_back(Tokens(1 + i % 3, 800 + i, vocab));
    EngineConfig alone;
    alone.prefix_caching = false;
    alone.model_eos = true;
    auto engine = MakeEngine(dir_, alone);
    for (const auto& p : menu_.prompts) {
      GenerateRequest r;
      r.prompt = p;
      r.max_tokens = kMaxTokens;
      const Collected c = RunAlone(*engine, r);
      ASSERT_EQ(c.code, StatusCode::kOk);
      menu_.expected.push_back(c.tokens);
    }
    reference_ = std::make_unique<ScoreReference>(dir_);
  }

  // Small pool (preemption), small queues (RESOURCE_EXHAUSTED), small step budget (chunked prefill).
  static EngineConfig StressConfig() {
    EngineConfig c;
    c.block_size = 4;
    c.num_blocks = 32;  // 128 tokens; a request needs up to 4 blocks, 24 running need up to 96
    c.max_num_batched_tokens = 48;
    c.max_prefill_chunk_tokens = 8;
    c.max_running = 24;
    c.max_waiting_realtime = 12;
    c.max_waiting_complex = 32;
    c.model_eos = true;
    return c;
  }

  int NumRequests(int llama, int deepseek) const { return GetParam().rfind("llama", 0) == 0 ? llama : deepseek; }

  struct Pending {
    std::shared_ptr<RequestStream> stream;
    bool is_recommend = false;
    size_t prompt = 0;
    int32_t max_tokens = 0;
    RecommendRequest recommend;
    std::vector<TokenId> head;  // tokens read before the rest is collected
  };

  Pending MakeRequest(std::mt19937_64& rng, GenerateRequest* gen, RecommendRequest* rec, bool* is_recommend,
                      std::optional<TimePoint> deadline) const {
    Pending p;
    p.prompt = rng() % menu_.prompts.size();
    const RequestClass cls = rng() % 3 == 0 ? RequestClass::kRealtime : RequestClass::kComplex;
    *is_recommend = rng() % 4 == 0;
    p.is_recommend = *is_recommend;
    if (*is_recommend) {
      rec->context = menu_.prompts[p.prompt];
      const size_t n = 1 + rng() % 4;
      rec->candidates.clear();
      for (size_t k = 0; k < n; ++k) rec->candidates.push_back(menu_.candidates[rng() % menu_.candidates.size()]);
      rec->top_k = static_cast<int32_t>(rng() % 3);
      rec->rank_by = rng() % 2 ? ScoreBy::kSumLogprob : ScoreBy::kMeanLogprob;
      rec->cls = cls;
      rec->deadline = deadline;
      p.recommend = *rec;
    } else {
      gen->prompt = menu_.prompts[p.prompt];
      gen->max_tokens = 1 + static_cast<int32_t>(rng() % kMaxTokens);
      gen->cls = cls;
      gen->deadline = deadline;
      p.max_tokens = gen->max_tokens;
    }
    return p;
  }

  // Checks one finished request; thread-safe for generates, recommends take mu_ (ScoreReference memo).
  void Check(const Pending& p, Collected c, Counts* counts) {
    ASSERT_TRUE(c.finished);
    c.tokens.insert(c.tokens.begin(), p.head.begin(), p.head.end());
    switch (c.code) {
      case StatusCode::kOk:
        ++counts->ok;
        break;
      case StatusCode::kCancelled:
        ++counts->cancelled;
        break;
      case StatusCode::kDeadlineExceeded:
        ++counts->deadline;
        break;
      default:
        FAIL() << "unexpected outcome " << StatusCodeName(c.code);
    }
    if (p.is_recommend) {
      ++counts->recommends;
      EXPECT_TRUE(c.tokens.empty());
      if (c.code == StatusCode::kOk) {
        std::lock_guard<std::mutex> lock(mu_);
        ExpectRankedMatches(p.recommend, c.ranked, *reference_, "recommend");
      } else {
        EXPECT_TRUE(c.ranked.empty());
      }
      return;
    }
    const auto& full = menu_.expected[p.prompt];
    const std::vector<TokenId> want = Slice(full, 0, static_cast<size_t>(p.max_tokens));
    if (c.code == StatusCode::kOk) {
      EXPECT_EQ(c.tokens, want) << "prompt " << p.prompt;
    } else {
      ASSERT_LE(c.tokens.size(), want.size()) << "prompt " << p.prompt;
      EXPECT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), want.begin())) << "prompt " << p.prompt;
    }
  }

  std::string dir_;
  Menu menu_;
  std::unique_ptr<ScoreReference> reference_;
  std::mutex mu_;
};

// EngineCore driven step by step from one seeded RNG: submits (some with deadlines), cancels of live,
// finished and unknown ids, and steps, in random order. After every step: a core with no work holds no
// block. At the end every block's reference count is zero and no sequence holds a table.
TEST_P(EngineModelStressTest, SteppedRandomInterleavingsLeaveThePoolFull) {
  const int n = NumRequests(4000, 2000);
  TimePoint now{std::chrono::seconds(1000)};
  auto core = MakeCore(dir_, StressConfig(), [&] { return now; });
  const auto& kv = core->scheduler().kv();
  const int32_t num_blocks = core->num_blocks();
  std::mt19937_64 rng(20240611);
  std::vector<Pending> live;
  Counts counts;
  uint64_t preemptions = 0;
  int submitted = 0;
  int64_t steps = 0;
  while (submitted < n || core->HasWork()) {
    // Submits outnumber steps, so requests pile up: full queues, a full pool, preemption.
    const uint64_t action = rng() % 10;
    if (action < 5 && submitted < n) {
      const uint64_t burst = 1 + rng() % 8;
      for (uint64_t b = 0; b < burst && submitted < n; ++b) {
        ++submitted;
        std::optional<TimePoint> deadline;
        if (rng() % 10 == 0) deadline = now + milliseconds(rng() % 40);
        GenerateRequest gen;
        RecommendRequest rec;
        bool is_rec = false;
        Pending p = MakeRequest(rng, &gen, &rec, &is_rec, deadline);
        SubmitResult r = is_rec ? core->Submit(rec) : core->Submit(gen);
        if (!r.status.ok()) {
          ASSERT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.ToString();
          EXPECT_GT(r.retry_after.count(), 0);
          ++counts.rejected;
          continue;
        }
        p.stream = r.stream;
        live.push_back(std::move(p));
      }
    } else if (action == 5 && !live.empty()) {
      core->Cancel(live[rng() % live.size()].stream->id());
    } else if (action == 6 && rng() % 2 == 0) {
      core->Cancel(rng() % 4 == 0 ? static_cast<RequestId>(rng())
                                  : static_cast<RequestId>(1 + rng() % (submitted + 1)));
    } else {
      core->Step();
      ++steps;
      now += milliseconds(2);
      preemptions = core->LastStats().preemptions_total;
      if (!core->HasWork()) {
        ASSERT_EQ(kv.NumFreeBlocks(), num_blocks) << "idle core holds blocks after step " << steps;
        ASSERT_EQ(kv.NumSequences(), 0);
      }
      ASSERT_LE(kv.NumFreeBlocks(), num_blocks);
    }
    for (size_t i = 0; i < live.size();) {
      if (!live[i].stream->finished()) {
        ++i;
        continue;
      }
      Check(live[i], CollectFinished(*live[i].stream), &counts);
      live[i] = std::move(live.back());
      live.pop_back();
    }
    ASSERT_LT(steps, 200000) << "no progress";
  }
  EXPECT_TRUE(live.empty());
  EXPECT_EQ(kv.NumFreeBlocks(), num_blocks);
  EXPECT_EQ(kv.NumSequences(), 0);
  for (BlockId b = 0; b < num_blocks; ++b) ASSERT_EQ(kv.pool().RefCount(b), 0) << "block " << b;
  EXPECT_EQ(core->scheduler().NumRequests(), 0);
  std::printf(
      "[%s stepped] %d submitted in %lld steps: ok %d, cancelled %d, deadline %d, rejected %d, "
      "recommends %d, preemptions %llu\n",
      GetParam().c_str(), n, static_cast<long long>(steps), counts.ok, counts.cancelled, counts.deadline,
      counts.rejected, counts.recommends, static_cast<unsigned long long>(preemptions));
  EXPECT_GT(counts.ok, n / 4);
  EXPECT_GT(counts.cancelled, 0);
  EXPECT_GT(counts.deadline, 0);
  EXPECT_GT(counts.rejected, 0);
  EXPECT_GT(preemptions, 0u);
}

// The threaded Engine: four submitter threads, each keeping a few requests in flight and cancelling some
// at once, some after a random pause, some after their first delta; unknown ids are cancelled too.
TEST_P(EngineModelStressTest, ThreadedSubmitAndCancelLeaveThePoolFull) {
  const int per_thread = NumRequests(1000, 400);
  constexpr int kThreads = 4;
  auto engine = MakeEngine(dir_, StressConfig());
  std::atomic<uint64_t> preemptions{0};
  engine->SetStatsCallback([&](const EngineStats& s) { preemptions.store(s.preemptions_total); });
  std::vector<Counts> counts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + static_cast<uint64_t>(t));
      std::deque<std::pair<Pending, int>> window;  // (request, cancel mode)
      auto finish_one = [&] {
        auto [p, mode] = std::move(window.front());
        window.pop_front();
        if (mode == 2) {
          std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
          engine->Cancel(p.stream->id());
        } else if (mode == 3) {
          TokenDelta d;
          if (p.stream->Read(&d, std::chrono::seconds(60)) == RequestStream::ReadResult::kDelta) {
            p.head = d.token_ids;
          }
          engine->Cancel(p.stream->id());
        }
        Collected c = Collect(*p.stream);
        ASSERT_TRUE(c.finished) << "stream did not finish";
        Check(p, std::move(c), &counts[t]);
      };
      for (int i = 0; i < per_thread; ++i) {
        GenerateRequest gen;
        RecommendRequest rec;
        bool is_rec = false;
        std::optional<TimePoint> deadline;
        if (rng() % 20 == 0) deadline = Clock::now() + milliseconds(rng() % 20);
        Pending p = MakeRequest(rng, &gen, &rec, &is_rec, deadline);
        SubmitResult r = is_rec ? engine->Submit(rec) : engine->Submit(gen);
        if (!r.status.ok()) {
          ASSERT_EQ(r.status.code(), StatusCode::kResourceExhausted) << r.status.ToString();
          ++counts[t].rejected;
          if (!window.empty()) finish_one();
          continue;
        }
        p.stream = r.stream;
        const uint64_t roll = rng() % 20;
        const int mode = roll < 12 ? 0 : roll < 14 ? 1 : roll < 17 ? 2 : 3;
        if (mode == 1) engine->Cancel(p.stream->id());
        if (rng() % 50 == 0) engine->Cancel(static_cast<RequestId>(rng()));
        window.emplace_back(std::move(p), mode);
        if (window.size() >= 6) finish_one();
      }
      while (!window.empty()) finish_one();
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_TRUE(WaitPoolFull(*engine)) << "free " << engine->LastStats().kv_free_blocks << " of " << engine->num_blocks();
  Counts total;
  for (const Counts& c : counts) {
    total.ok += c.ok;
    total.cancelled += c.cancelled;
    total.deadline += c.deadline;
    total.rejected += c.rejected;
    total.recommends += c.recommends;
  }
  std::printf(
      "[%s threaded] %d submitted: ok %d, cancelled %d, deadline %d, rejected %d, recommends %d, "
      "preemptions %llu\n",
      GetParam().c_str(), kThreads * per_thread, total.ok, total.cancelled, total.deadline, total.rejected,
      total.recommends, static_cast<unsigned long long>(preemptions.load()));
  EXPECT_GT(total.ok, kThreads * per_thread / 4);
  EXPECT_GT(total.cancelled, 0);
}

INSTANTIATE_TEST_SUITE_P(Variants, EngineModelStressTest, ::testing::Values("llama_gqa", "deepseek_v3_noaux"));

}  // namespace
}  // namespace inferd::engine_model
