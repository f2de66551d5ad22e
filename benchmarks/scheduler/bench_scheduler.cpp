// Scheduling cost per step in steady state: N sequences decoding, each finishing after 512 tokens and
// replaced by a new 128-token prompt (so admission, prefix lookup, chunked prefill and block growth are
// all in the loop). The executor is a stub: the numbers are the scheduler's own cost.
#include <benchmark/benchmark.h>

#include <vector>

#include "scheduler/scheduler.h"

namespace inferd::scheduler {
namespace {

std::vector<TokenId> Prompt(int n, int salt) {
  std::vector<TokenId> v(n);
  for (int i = 0; i < n; ++i) v[i] = (i * 7 + salt * 13 + 1) % 997;
  return v;
}

StepResult StubExecute(const ForwardBatch& batch) {
  StepResult r;
  r.results.resize(batch.chunks.size());
  for (size_t i = 0; i < batch.chunks.size(); ++i) {
    const auto& c = batch.chunks[i];
    r.results[i].seq_id = c.seq_id;
    if (c.sample) {
      r.results[i].sampled = true;
      r.results[i].token.token = static_cast<TokenId>((c.seq_id * 31 + c.start_pos) % 997);
      r.results[i].token.logprob = -1.0f;
    }
  }
  return r;
}

void BM_ScheduleAndUpdate(benchmark::State& state) {
  const int num_running = static_cast<int>(state.range(0));
  const bool prefix_caching = state.range(1) != 0;
  SchedulerOptions opts;
  opts.max_running = num_running;
  opts.max_num_batched_tokens = 2048;
  opts.max_prefill_chunk_tokens = 512;
  opts.max_waiting_complex = 4 * num_running;
  opts.max_model_len = 4096;
  constexpr int kPrompt = 128, kGen = 512, kBlock = 16;
  const int num_blocks = num_running * (kPrompt + kGen) / kBlock + 256;
  Scheduler sched(opts, num_blocks, kBlock, prefix_caching);
  TimePoint now{std::chrono::seconds(1)};
  RequestId next = 1;
  auto add = [&] {
    RequestSpec spec;
    spec.id = next;
    spec.cls = next % 4 == 0 ? RequestClass::kRealtime : RequestClass::kComplex;
    // Half the prompts share a 64-token system prefix.
    spec.prompt = Prompt(kPrompt, static_cast<int>(next));
    if (next % 2 == 0) {
      auto shared = Prompt(64, 0);
      std::copy(shared.begin(), shared.end(), spec.prompt.begin());
    }
    spec.max_tokens = kGen - static_cast<int>(next % 64);  // staggered finishes
    spec.arrival = now;
    ++next;
    return sched.AddRequest(std::move(spec)).ok();
  };
  for (int i = 0; i < num_running; ++i) add();
  // Warm up to steady state: everyone decoding.
  for (int i = 0; i < 200; ++i) {
    SchedulerOutput out = sched.Schedule(now);
    sched.Update(out, StubExecute(out.batch));
    now += std::chrono::milliseconds(20);
    for (const auto& ev : sched.TakeEvents()) {
      if (ev.type == RequestEvent::Type::kFinished) add();
    }
  }
  int64_t tokens = 0, seqs = 0;
  for (auto _ : state) {
    SchedulerOutput out = sched.Schedule(now);
    StepResult result = StubExecute(out.batch);
    sched.Update(out, result);
    now += std::chrono::milliseconds(20);
    for (const auto& ev : sched.TakeEvents()) {
      if (ev.type == RequestEvent::Type::kFinished) add();
    }
    tokens += out.num_decode_tokens + out.num_prefill_tokens;
    seqs += static_cast<int64_t>(out.batch.chunks.size());
    benchmark::DoNotOptimize(out);
  }
  state.counters["seqs_per_step"] = benchmark::Counter(static_cast<double>(seqs), benchmark::Counter::kAvgIterations);
  state.counters["tokens_per_step"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kAvgIterations);
  state.counters["preemptions"] = static_cast<double>(sched.Stats().preemptions_total);
}

BENCHMARK(BM_ScheduleAndUpdate)
    ->ArgNames({"running", "prefix_cache"})
    ->Args({64, 1})
    ->Args({256, 1})
    ->Args({64, 0})
    ->Args({256, 0})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace inferd::scheduler

BENCHMARK_MAIN();
