// The threaded Engine: concurrent submitters, streaming readers, cancel, drain, shutdown.
#include "inferd/engine.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>
#include <vector>

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

std::vector<TokenId> ReadAll(RequestStream& stream) {
  std::vector<TokenId> got;
  TokenDelta d;
  while (stream.Read(&d, milliseconds(5000)) == RequestStream::ReadResult::kDelta) {
    got.insert(got.end(), d.token_ids.begin(), d.token_ids.end());
  }
  return got;
}

// Records the nice value of the thread each step runs on (the engine thread).
class NiceRecordingExecutor : public Executor {
 public:
  KvCacheLayout CacheLayout() const override { return inner_.CacheLayout(); }
  Status InitializeCache(int32_t num_blocks, int32_t block_size) override {
    return inner_.InitializeCache(num_blocks, block_size);
  }
  StatusOr<StepResult> Execute(const ForwardBatch& batch) override {
    errno = 0;
    nice_.store(::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid))));
    return inner_.Execute(batch);
  }
  int nice() const { return nice_.load(); }

 private:
  FakeExecutor inner_;
  std::atomic<int> nice_{-100};
};

TEST(EngineTest, RestartThreadServesAtTheRestartingThreadsPriority) {
  errno = 0;
  const int base = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)));
  ASSERT_LT(base, 19) << "the test thread already runs at nice 19";
  NiceRecordingExecutor* exec = nullptr;
  std::unique_ptr<Engine> engine;
  // Created on a thread at nice 19: its engine thread inherits that.
  std::thread low([&] {
    ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19), 0);
    EngineOptions opts;
    opts.kv_cache.num_blocks_override = 64;
    auto owned = std::make_unique<NiceRecordingExecutor>();
    exec = owned.get();
    auto e = Engine::Create(opts, std::move(owned), engine::FakeTextStreamFactory());
    ASSERT_TRUE(e.ok());
    engine = std::move(e).value();
  });
  low.join();
  ASSERT_NE(engine, nullptr);
  auto generate = [&](int salt) {
    GenerateRequest req;
    req.prompt = Prompt(12, salt);
    req.max_tokens = 4;
    SubmitResult r = engine->Submit(req);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(ReadAll(*r.stream), FakeExecutor::ReferenceGenerate(req.prompt, 4, 1000));
    EXPECT_TRUE(r.stream->Wait().status.ok());
  };
  generate(1);
  EXPECT_EQ(exec->nice(), 19);
  engine->RestartThread();
  generate(2);
  EXPECT_EQ(exec->nice(), base);
}

TEST(EngineTest, RestartThreadKeepsRunningWork) {
  engine::FakeExecutorOptions fx;
  fx.step_delay = std::chrono::microseconds(300);
  auto engine = MakeEngine({}, fx);
  GenerateRequest req;
  req.prompt = Prompt(16, 3);
  req.max_tokens = 40;
  req.ignore_eos = true;
  SubmitResult r = engine->Submit(req);
  ASSERT_TRUE(r.status.ok());
  TokenDelta d;
  ASSERT_EQ(r.stream->Read(&d, milliseconds(5000)), RequestStream::ReadResult::kDelta);
  engine->RestartThread();  // mid-request
  std::vector<TokenId> got = d.token_ids;
  const std::vector<TokenId> rest = ReadAll(*r.stream);
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(got, FakeExecutor::ReferenceGenerate(req.prompt, 40, 1000));
  EXPECT_TRUE(r.stream->Wait().status.ok());
}

// Records how many sequences each step's batch carries.
class BatchSizeRecordingExecutor : public Executor {
 public:
  KvCacheLayout CacheLayout() const override { return inner_.CacheLayout(); }
  Status InitializeCache(int32_t num_blocks, int32_t block_size) override {
    return inner_.InitializeCache(num_blocks, block_size);
  }
  StatusOr<StepResult> Execute(const ForwardBatch& batch) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_.push_back(batch.chunks.size());
    }
    return inner_.Execute(batch);
  }
  std::vector<size_t> sizes() {
    std::lock_guard<std::mutex> lock(mu_);
    return sizes_;
  }

 private:
  FakeExecutor inner_;
  std::mutex mu_;
  std::vector<size_t> sizes_;
};

TEST(EngineTest, AGroupSubmittedUnderAnIntakeHoldStartsInOneStep) {
  EngineOptions opts;
  opts.kv_cache.num_blocks_override = 256;
  auto owned = std::make_unique<BatchSizeRecordingExecutor>();
  BatchSizeRecordingExecutor* exec = owned.get();
  auto created = Engine::Create(opts, std::move(owned), engine::FakeTextStreamFactory());
  ASSERT_TRUE(created.ok());
  std::unique_ptr<Engine> engine = std::move(created).value();
  engine->HoldIntake(true);
  std::vector<SubmitResult> runs;
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest req;
    req.prompt = Prompt(8, 10 + i);
    req.max_tokens = 3;
    req.ignore_eos = true;
    reqs.push_back(req);
    runs.push_back(engine->Submit(req));
    ASSERT_TRUE(runs.back().status.ok()) << runs.back().status.ToString();
    std::this_thread::sleep_for(milliseconds(5));  // without the hold the engine would start the first alone
  }
  EXPECT_TRUE(exec->sizes().empty()) << "a step ran while the intake was held";
  engine->HoldIntake(false);
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(ReadAll(*runs[i].stream), FakeExecutor::ReferenceGenerate(reqs[i].prompt, 3, 1000));
    EXPECT_TRUE(runs[i].stream->Wait().status.ok());
  }
  const std::vector<size_t> sizes = exec->sizes();
  ASSERT_FALSE(sizes.empty());
  EXPECT_EQ(sizes.front(), 6u) << "the first step did not carry the whole group";
}

}  // namespace
}  // namespace inferd
