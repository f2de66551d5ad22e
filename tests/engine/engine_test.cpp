// The threaded Engine: concurrent submitters, streaming readers, cancel, drain, shutdown.
#include "inferd/engine.h"

#include <gtest/gtest.h>

#include <thread>

#include "engine/fake_executor.h"

namespace inferd {
namespace {

using engine::FakeExecutor;
using std::chrono::milliseconds;

std::vector<TokenId> Prompt(int n, int salt) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * 5 + salt * 31 + 7) % 983;
  return v;
}

std::unique_ptr<Engine> MakeEngine(EngineOptions opts = {}, engine::FakeExecutorOptions fx = {}) {
  opts.kv_cache.num_blocks_override = 256;
  auto e = Engine::Create(opts, std::make_unique<FakeExecutor>(fx), engine::FakeTextStreamFactory());
  EXPECT_TRUE(e.ok());
  return std::move(e).value();
}

TEST(EngineTest, ConcurrentSubmittersGetReferenceOutputs) {
  // Declared before the engine: its loop thread calls the stats callback until the engine is destroyed.
  std::atomic<int> stats_steps{0};
  auto engine = MakeEngine();
  engine->SetStatsCallback([&](const EngineStats&) { stats_steps.fetch_add(1); });
  constexpr int kThreads = 4, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        GenerateRequest req;
        req.prompt = Prompt(10 + i, t * 100 + i);
        req.max_tokens = 8;
        req.cls = i % 2 ? RequestClass::kRealtime : RequestClass::kComplex;
        SubmitResult r = engine->Submit(req);
        ASSERT_TRUE(r.status.ok()) << r.status.ToString();
        std::vector<TokenId> got;
        TokenDelta d;
        RequestStream::ReadResult rr;
        while ((rr = r.stream->Read(&d, milliseconds(5000))) == RequestStream::ReadResult::kDelta) {
          got.insert(got.end(), d.token_ids.begin(), d.token_ids.end());
        }
        ASSERT_EQ(rr, RequestStream::ReadResult::kFinished);
        EXPECT_EQ(got, FakeExecutor::ReferenceGenerate(req.prompt, 8, 1000));
        if (r.stream->Wait().status.ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_GT(stats_steps.load(), 0);
}

TEST(EngineTest, CancelFromAnotherThread) {
  engine::FakeExecutorOptions fx;
  fx.step_delay = std::chrono::microseconds(500);
  auto engine = MakeEngine({}, fx);
  GenerateRequest req;
  req.prompt = Prompt(20, 1);
  req.max_tokens = 100000;
  req.ignore_eos = true;
  SubmitResult r = engine->Submit(req);
  ASSERT_TRUE(r.status.ok());
  TokenDelta d;
  ASSERT_EQ(r.stream->Read(&d, milliseconds(5000)), RequestStream::ReadResult::kDelta);
  engine->Cancel(r.stream->id());
  const RequestOutcome& o = r.stream->Wait();
  EXPECT_EQ(o.status.code(), StatusCode::kCancelled);
  for (int i = 0; i < 200 && engine->LastStats().kv_free_blocks != engine->num_blocks(); ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_EQ(engine->LastStats().kv_free_blocks, engine->num_blocks());
}

TEST(EngineTest, DrainFinishesInFlightThenRefuses) {
  auto engine = MakeEngine();
  GenerateRequest req;
  req.prompt = Prompt(20, 2);
  req.max_tokens = 20;
  SubmitResult r = engine->Submit(req);
  ASSERT_TRUE(r.status.ok());
  engine->Drain(milliseconds(5000));
  EXPECT_TRUE(r.stream->finished());
  EXPECT_TRUE(r.stream->Wait().status.ok());
  EXPECT_EQ(engine->Submit(req).status.code(), StatusCode::kUnavailable);
}

TEST(EngineTest, DestructionCancelsUnfinished) {
  engine::FakeExecutorOptions fx;
  fx.step_delay = std::chrono::microseconds(200);
  std::shared_ptr<RequestStream> stream;
  {
    auto engine = MakeEngine({}, fx);
    GenerateRequest req;
    req.prompt = Prompt(20, 3);
    req.ignore_eos = true;
    req.max_tokens = 1000000;
    stream = engine->Submit(req).stream;
    ASSERT_NE(stream, nullptr);
  }
  EXPECT_EQ(stream->Wait().status.code(), StatusCode::kCancelled);
}

}  // namespace
}  // namespace inferd
