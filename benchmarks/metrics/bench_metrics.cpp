// bench_metrics: see RESULTS.md beside this file for the command and the numbers.
#include <benchmark/benchmark.h>

#include <memory>
#include <random>

#include "metrics/atomic_metrics.h"
#include "metrics/engine_collector.h"
#include "metrics/metrics_server.h"
#include "metrics/serving_collector.h"

namespace inferd::metrics {
namespace {

// One histogram and one counter shared by every benchmark thread: ->Threads(2) makes them contend.
AtomicHistogram g_histogram(kLatencyBuckets);
AtomicCounter g_counter;

void BM_HistogramObserve(benchmark::State& state) {
  // Values spread over the realtime and complex ranges, so the bucket search is not always the first edge.
  const double values[8] = {0.004, 0.03, 0.07, 0.2, 1.5, 4.0, 30.0, 0.0009};
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    g_histogram.Observe(values[i++ & 7]);
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->UseRealTime();

void BM_CounterAdd(benchmark::State& state) {
  for (auto _ : state) g_counter.Add(1);
}
BENCHMARK(BM_CounterAdd)->Threads(1)->Threads(2)->UseRealTime();

// A decode step of `running` sequences in which `finished` requests ended, each after 256 tokens.
EngineStats DecodeStep(int running, int finished) {
  EngineStats s;
  s.running_requests = {running / 4, running - running / 4};
  s.waiting_requests = {2, 10};
  s.kv_usage = 0.6;
  s.kv_num_blocks = 4096;
  s.decode_tokens = running;
  s.batch_seqs = running;
  s.step_seconds = 0.012;
  for (int f = 0; f < finished; ++f) {
    FinishedRequestStats r;
    r.cls = f % 2 ? RequestClass::kComplex : RequestClass::kRealtime;
    r.finish_reason = FinishReason::kMaxTokens;
    r.e2e_seconds = 3.1;
    r.queue_seconds = 0.02;
    r.ttft_seconds = 0.15;
    r.inter_token_seconds.assign(255, 0.011);
    r.prompt_tokens = 300;
    r.generated_tokens = 256;
    s.finished.push_back(std::move(r));
  }
  return s;
}

// EngineMetrics::Record as the engine thread calls it after a step. Arg 0: running sequences; arg 1:
// requests that finished in the step.
void BM_RecordDecodeStep(benchmark::State& state) {
  EngineMetrics m("bench");
  m.set_recording(true);
  const EngineStats s = DecodeStep(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) m.Record(s);
}
BENCHMARK(BM_RecordDecodeStep)->Args({64, 0})->Args({64, 1})->Args({64, 8});

// GET /metrics as the server renders it: 4 models x 2 classes in the engine collector, 4 pools in the
// serving collector (every RPC method with 3 codes), process and host series; every histogram populated.
void BM_Scrape(benchmark::State& state) {
  MetricsServer server("127.0.0.1:0");
  auto engine = std::make_shared<EngineCollector>();
  std::mt19937 rng(7);
  std::lognormal_distribution<double> latency(-2.0, 1.5);
  for (int i = 0; i < 4; ++i) {
    auto m = engine->AddModel("model-" + std::to_string(i));
    m->set_recording(true);
    for (int step = 0; step < 200; ++step) {
      EngineStats s = DecodeStep(32, 2);
      s.prefill_tokens = step % 3 == 0 ? 256 : 0;
      s.step_seconds = latency(rng) / 10;
      for (auto& f : s.finished) {
        f.e2e_seconds = latency(rng);
        f.queue_seconds = latency(rng) / 20;
        f.ttft_seconds = latency(rng) / 5;
        for (double& itl : f.inter_token_seconds) itl = latency(rng) / 30;
      }
      m->Record(s);
    }
  }
  server.Add(engine);
  std::vector<std::string> pools = {"model-0", "model-1", "model-2", "model-3"};
  auto rpc = [pools] {
    RpcStats r;
    r.pool_names = pools;
    r.rpcs.resize(pools.size() + 1);
    r.classified.resize(pools.size());
    for (size_t p = 0; p <= pools.size(); ++p) {
      for (size_t c = 0; c < 3; ++c) {
        for (size_t m = 0; m < kNumRpcMethods; ++m) {
          r.rpcs[p][c][m][0] = 1000 + p;
          r.rpcs[p][c][m][4] = 3;
          r.rpcs[p][c][m][8] = 2;
        }
      }
    }
    return r;
  };
  auto business = [pools] {
    BusinessStats b;
    b.pool_names = pools;
    b.per_class.resize(pools.size());
    for (auto& per : b.per_class) {
      for (auto& m : per) {
        m.impressions = 100000;
        m.clicks = 5000;
        m.conversions = 800;
        m.quality_count = 1000;
        m.quality_sum = 700;
        m.quality_buckets.fill(100);
      }
    }
    return b;
  };
  server.Add(std::make_shared<ServingCollector>(rpc, business));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = server.Render();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Scrape)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace inferd::metrics

BENCHMARK_MAIN();
