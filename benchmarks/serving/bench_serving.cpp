// bench_serving: the serving engine (Engine over ModelExecutor over ModelRunner) on a real-shaped checkpoint.
//
//   bench_serving --model DIR --mode throughput|sampling|latency|overload [--dtype bf16] [--threads 2]
//                 [--repeats 3] [--json FILE]
//     throughput: [--concurrency 1,4,16,64] [--prompt-len 32] [--gen-tokens 16] [--temperature 0]
//     sampling:   throughput's options; greedy and --temperature (default 0.7) rounds alternate
//     latency:    also [--bg-temperature 0] [--best-effort: admit realtime work predicted late] [--scenarios alone/realtime,load/realtime,...]
//     overload:   [--overload-factor 2] [--overload-seconds 20] and latency's options
//     --deadline-ms 100: the realtime class default deadline (SchedulerOptions::realtime_default_deadline)
//     latency:    [--context 64] [--candidates 8,16] [--cand-len 4,8] [--interval-ms 2000] [--count 15]
//                 [--warmup 2] [--bg-streams 24] [--bg-prompt 128] [--bg-tokens 64] [--max-running 16]
//                 [--step-tokens 256] [--complex-max-wait-ms 5000] [--relaxed-max-wait-ms 120000]
//
// Throughput: C greedy Generates (distinct random prompts of --prompt-len tokens, --gen-tokens tokens each,
// EOS ignored) submitted at once. Aggregate decode tokens/s = tokens emitted after the last request's first
// token, divided by the time from that first token to the last finish (pure decode at batch C; prefill
// excluded). End-to-end tokens/s (first submit to last finish, prefill included) is reported beside it.
// One untimed warm-up round per concurrency; the figure is the median over --repeats.
//
// Sampling: the throughput measurement with greedy and sampled (--temperature, no top-k/top-p) rounds
// alternating, so load on the machine hits both alike; reports the median decode tok/s of each and the ratio.
//
// Overload: first the Recommend capacity (closed loop, 4 in flight, 5 s), then open-loop Poisson arrivals at
// --overload-factor x that rate for --overload-seconds of mixed traffic: 90% realtime Recommends (deadline
// --deadline-ms) and 10% complex sampled Generates (--bg-prompt tokens, --bg-tokens tokens, temperature 0.7).
// Reports admitted/refused realtime, admitted realtime p50/p99 against the deadline, the server time of a
// refusal (the Submit call), complex work's share of step time while realtime work was active (by the cost
// model's split of each step), complex queue times against complex_max_wait, and the cost model's per-step
// prediction error.
//
// Latency: Recommend requests (distinct random --context token contexts, a uniform number of candidates in
// [--candidates], each of a uniform length in [--cand-len], top_k 5) issued open-loop every --interval-ms.
// Latency is the engine's own arrival -> finish time (RequestOutcome timings). Scenarios, each on a fresh
// engine (empty prefix cache):
//   alone/realtime                 nothing else runs;
//   load/realtime, load/complex    --bg-streams closed-loop complex Generates (--bg-prompt tokens,
//                                  --bg-tokens tokens each) keep the engine saturated: more streams than
//                                  --max-running slots, so complex work always waits; the step budget is
//                                  --step-tokens tokens;
//   load/realtime/max_wait=Ns      as load/realtime with SchedulerOptions::complex_max_wait raised to
//                                  --relaxed-max-wait-ms (the others use --complex-max-wait-ms, default 5 s).
// "realtime" submits the Recommends as RequestClass::kRealtime (EDF tier, may preempt complex work);
// "complex" submits the same Recommends as kComplex (FCFS behind the background: no priority).
// p50/p99 are nearest-rank percentiles of --count requests per repeat (for --count < 100, p99 is the
// maximum); the reported figure is the median over --repeats. The first --warmup Recommends of each run are
// not counted. With load, measuring starts once the background has complex requests waiting.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "inferd/engine.h"
#include "inferd/model_runner.h"
#include "worker/model_executor.h"

namespace {

using inferd::Clock;
using inferd::TimePoint;
using inferd::TokenId;
using nlohmann::json;
using std::chrono::milliseconds;

struct Options {
  std::string model;
  std::string mode = "throughput";
  std::string dtype = "bf16";
  int threads = 2;
  int repeats = 3;
  std::string json_path;
  // throughput
  std::vector<int> concurrency = {1, 4, 16, 64};
  int prompt_len = 32;
  int gen_tokens = 16;
  float temperature = -1.0f;  // -1: 0 for throughput, 0.7 for sampling
  // overload
  double overload_factor = 2.0;
  int overload_seconds = 20;
  int deadline_ms = 100;
  float bg_temperature = 0.0f;
  bool best_effort = false;  // realtime_refuse_unmeetable = false
  std::string scenarios;  // latency: comma-separated scenario names to run (default: all)
  // latency
  int context = 64;
  int cand_min = 8, cand_max = 16;
  int cand_len_min = 4, cand_len_max = 8;
  int interval_ms = 2000;
  int count = 15;
  int warmup = 2;
  int bg_streams = 24;
  int bg_prompt = 128;
  int bg_tokens = 64;
  int max_running = 16;
  int step_tokens = 256;
  int complex_max_wait_ms = 5000;    // SchedulerOptions default
  int relaxed_max_wait_ms = 120000;  // the fourth scenario's starvation bound
};

[[noreturn]] void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --model DIR --mode throughput|latency [--dtype bf16|fp32] [--threads N] [--repeats N]\n"
               "  [--json FILE] [--concurrency 1,4,16,64] [--prompt-len N] [--gen-tokens N]\n"
               "  [--context N] [--candidates MIN,MAX] [--cand-len MIN,MAX] [--interval-ms N] [--count N]\n"
               "  [--warmup N] [--bg-streams N] [--bg-prompt N] [--bg-tokens N] [--max-running N] [--step-tokens N]\n"
               "  [--complex-max-wait-ms N] [--relaxed-max-wait-ms N] [--temperature T] [--bg-temperature T]\n"
               "  [--overload-factor F] [--overload-seconds N] [--deadline-ms N]\n",
               argv0);
  std::exit(2);
}

std::vector<int> ParseList(const char* s) {
  std::vector<int> v;
  const char* p = s;
  while (*p) {
    char* end = nullptr;
    v.push_back(static_cast<int>(std::strtol(p, &end, 10)));
    if (end == p) break;
    p = *end == ',' ? end + 1 : end;
  }
  return v;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Usage(argv[0]);
      return argv[++i];
    };
    auto pair = [&](int* lo, int* hi) {
      const std::vector<int> v = ParseList(next());
      if (v.size() != 2 || v[0] > v[1] || v[0] < 1) Usage(argv[0]);
      *lo = v[0];
      *hi = v[1];
    };
    if (a == "--model")
      o.model = next();
    else if (a == "--mode")
      o.mode = next();
    else if (a == "--dtype")
      o.dtype = next();
    else if (a == "--threads")
      o.threads = std::atoi(next());
    else if (a == "--repeats")
      o.repeats = std::atoi(next());
    else if (a == "--json")
      o.json_path = next();
    else if (a == "--concurrency")
      o.concurrency = ParseList(next());
    else if (a == "--prompt-len")
      o.prompt_len = std::atoi(next());
    else if (a == "--gen-tokens")
      o.gen_tokens = std::atoi(next());
    else if (a == "--context")
      o.context = std::atoi(next());
    else if (a == "--candidates")
      pair(&o.cand_min, &o.cand_max);
    else if (a == "--cand-len")
      pair(&o.cand_len_min, &o.cand_len_max);
    else if (a == "--interval-ms")
      o.interval_ms = std::atoi(next());
    else if (a == "--count")
      o.count = std::atoi(next());
    else if (a == "--warmup")
      o.warmup = std::atoi(next());
    else if (a == "--bg-streams")
      o.bg_streams = std::atoi(next());
    else if (a == "--bg-prompt")
      o.bg_prompt = std::atoi(next());
    else if (a == "--bg-tokens")
      o.bg_tokens = std::atoi(next());
    else if (a == "--max-running")
      o.max_running = std::atoi(next());
    else if (a == "--step-tokens")
      o.step_tokens = std::atoi(next());
    else if (a == "--complex-max-wait-ms")
      o.complex_max_wait_ms = std::atoi(next());
    else if (a == "--relaxed-max-wait-ms")
      o.relaxed_max_wait_ms = std::atoi(next());
    else if (a == "--temperature")
      o.temperature = static_cast<float>(std::atof(next()));
    else if (a == "--bg-temperature")
      o.bg_temperature = static_cast<float>(std::atof(next()));
    else if (a == "--overload-factor")
      o.overload_factor = std::atof(next());
    else if (a == "--overload-seconds")
      o.overload_seconds = std::atoi(next());
    else if (a == "--best-effort")
      o.best_effort = true;
    else if (a == "--scenarios")
      o.scenarios = next();
    else if (a == "--deadline-ms")
      o.deadline_ms = std::atoi(next());
    else
      Usage(argv[0]);
  }
  if (o.model.empty() ||
      (o.mode != "throughput" && o.mode != "latency" && o.mode != "sampling" && o.mode != "overload") || o.repeats < 1 || o.gen_tokens < 2 ||
      o.count < 1) {
    Usage(argv[0]);
  }
  return o;
}

double Seconds(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Nearest-rank percentile, q in (0, 1].
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<size_t>(rank, 1)) - 1];
}

std::vector<TokenId> RandomTokens(std::mt19937_64& rng, int n, int32_t vocab) {
  std::vector<TokenId> v(static_cast<size_t>(n));
  // Skip the low ids (BOS/EOS and friends in the released vocabularies).
  for (auto& t : v) t = static_cast<TokenId>(16 + rng() % static_cast<uint64_t>(vocab - 16));
  return v;
}

struct Loaded {
  std::unique_ptr<inferd::Engine> engine;
  int32_t vocab = 0;
};

Loaded MakeEngine(const Options& o, int max_running, int step_tokens, int64_t pool_tokens) {
  inferd::worker::ModelRunnerOptions ro;
  ro.dtype = o.dtype;
  ro.num_threads = o.threads;
  ro.kv_num_blocks = 0;
  ro.block_size = 16;
  auto runner = inferd::worker::ModelRunner::Load(o.model, ro);
  if (!runner.ok()) {
    std::fprintf(stderr, "load %s: %s\n", o.model.c_str(), runner.status().ToString().c_str());
    std::exit(1);
  }
  Loaded l;
  l.vocab = runner.value()->VocabSize();
  inferd::EngineOptions eo;
  eo.kv_cache.block_size = 16;
  eo.kv_cache.num_blocks_override = static_cast<int32_t>((pool_tokens + 15) / 16);
  eo.scheduler.max_running = max_running;
  eo.scheduler.max_num_batched_tokens = step_tokens;
  eo.scheduler.max_prefill_chunk_tokens = std::min(step_tokens, 512);
  eo.scheduler.max_waiting_complex = 4096;
  eo.scheduler.max_waiting_realtime = 4096;
  eo.scheduler.eos_token_ids = runner.value()->EosTokenIds();
  eo.scheduler.complex_max_wait = milliseconds(o.complex_max_wait_ms);
  eo.scheduler.realtime_refuse_unmeetable = !o.best_effort;
  eo.scheduler.realtime_default_deadline = milliseconds(o.deadline_ms);
  auto e = inferd::Engine::Create(eo, std::make_unique<inferd::worker::ModelExecutor>(std::move(runner).value()));
  if (!e.ok()) {
    std::fprintf(stderr, "engine: %s\n", e.status().ToString().c_str());
    std::exit(1);
  }
  l.engine = std::move(e).value();
  // The daemon's warm-up (ModelPool::WarmUp), so the step-cost model has seen every kind of step.
  std::mt19937_64 rng(1);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::shared_ptr<inferd::RequestStream>> runs;
    for (int batch : {1, 2, 4, 8}) {
      for (int i = 0; i < batch; ++i) {
        inferd::GenerateRequest r;
        r.prompt = RandomTokens(rng, batch == 1 ? std::min(step_tokens, 512) + 8 : 16 + i, l.vocab);
        r.max_tokens = batch == 1 ? 4 : 3;
        r.ignore_eos = true;
        runs.push_back(l.engine->Submit(std::move(r)).stream);
      }
      for (auto& s : runs) s->Wait();
      runs.clear();
    }
    inferd::RecommendRequest rec;
    rec.context = RandomTokens(rng, 48, l.vocab);
    for (int i = 0; i < 8; ++i) rec.candidates.push_back(RandomTokens(rng, 4 + i % 3, l.vocab));
    rec.deadline = Clock::now() + std::chrono::minutes(10);
    l.engine->Submit(std::move(rec)).stream->Wait();
  }
  return l;
}

// ---- throughput ----

struct RoundResult {
  double decode_tps = 0.0;
  double e2e_tps = 0.0;
  double ttft_s = 0.0;  // slowest first token (prefill of the whole batch)
};

RoundResult ThroughputRound(const Options& o, inferd::Engine& engine, int32_t vocab, int c, std::mt19937_64& rng,
                            float temperature) {
  std::vector<std::shared_ptr<inferd::RequestStream>> streams;
  const TimePoint t0 = Clock::now();
  for (int i = 0; i < c; ++i) {
    inferd::GenerateRequest r;
    r.prompt = RandomTokens(rng, o.prompt_len, vocab);
    r.max_tokens = o.gen_tokens;
    r.ignore_eos = true;
    r.sampling.temperature = temperature;
    r.sampling.seed = static_cast<uint64_t>(i);
    r.sampling.has_seed = true;
    inferd::SubmitResult s = engine.Submit(std::move(r));
    if (!s.status.ok()) {
      std::fprintf(stderr, "submit: %s\n", s.status.ToString().c_str());
      std::exit(1);
    }
    streams.push_back(s.stream);
  }
  std::vector<inferd::RequestOutcome> outs;
  for (auto& s : streams) outs.push_back(s->Wait());
  TimePoint decode_start = t0, last_end = t0;
  for (const auto& out : outs) {
    if (!out.status.ok() || out.timings.token_times.empty()) {
      std::fprintf(stderr, "request failed: %s\n", out.status.ToString().c_str());
      std::exit(1);
    }
    decode_start = std::max(decode_start, out.timings.token_times.front());
    last_end = std::max(last_end, out.timings.end);
  }
  int64_t decode_tokens = 0, total = 0;
  for (const auto& out : outs) {
    total += out.generated_tokens;
    for (TimePoint t : out.timings.token_times) decode_tokens += t > decode_start ? 1 : 0;
  }
  RoundResult r;
  r.decode_tps = static_cast<double>(decode_tokens) / std::max(1e-9, Seconds(decode_start, last_end));
  r.e2e_tps = static_cast<double>(total) / std::max(1e-9, Seconds(t0, last_end));
  r.ttft_s = Seconds(t0, decode_start);
  return r;
}

json RunThroughput(const Options& o) {
  int max_c = 1;
  for (int c : o.concurrency) max_c = std::max(max_c, c);
  const int64_t pool_tokens = int64_t{max_c} * (o.prompt_len + o.gen_tokens + 16) * 2;
  Loaded l = MakeEngine(o, std::max(max_c, 1), std::max(2048, max_c * o.prompt_len), pool_tokens);
  std::mt19937_64 rng(42);
  json rows = json::array();
  std::printf("%-12s %16s %16s %12s\n", "concurrency", "decode tok/s", "e2e tok/s", "prefill s");
  for (int c : o.concurrency) {
    const float temp = std::max(0.0f, o.temperature);
    ThroughputRound(o, *l.engine, l.vocab, c, rng, temp);  // warm-up
    std::vector<double> dec, e2e, ttft;
    for (int r = 0; r < o.repeats; ++r) {
      const RoundResult rr = ThroughputRound(o, *l.engine, l.vocab, c, rng, temp);
      dec.push_back(rr.decode_tps);
      e2e.push_back(rr.e2e_tps);
      ttft.push_back(rr.ttft_s);
    }
    std::printf("%-12d %16.1f %16.1f %12.2f\n", c, Median(dec), Median(e2e), Median(ttft));
    std::fflush(stdout);
    rows.push_back({{"concurrency", c},
                    {"decode_tokens_per_s", Median(dec)},
                    {"e2e_tokens_per_s", Median(e2e)},
                    {"prefill_s", Median(ttft)},
                    {"decode_tokens_per_s_repeats", dec}});
  }
  return rows;
}

json RunSampling(const Options& o) {
  int max_c = 1;
  for (int c : o.concurrency) max_c = std::max(max_c, c);
  const int64_t pool_tokens = int64_t{max_c} * (o.prompt_len + o.gen_tokens + 16) * 2;
  Loaded l = MakeEngine(o, std::max(max_c, 1), std::max(2048, max_c * o.prompt_len), pool_tokens);
  const float temp = o.temperature < 0 ? 0.7f : o.temperature;
  std::mt19937_64 rng(42);
  json rows = json::array();
  std::printf("%-12s %18s %18s %10s\n", "concurrency", "greedy tok/s", "sampled tok/s", "ratio");
  for (int c : o.concurrency) {
    ThroughputRound(o, *l.engine, l.vocab, c, rng, 0.0f);
    ThroughputRound(o, *l.engine, l.vocab, c, rng, temp);
    std::vector<double> greedy, sampled, ratio;
    for (int r = 0; r < o.repeats; ++r) {
      greedy.push_back(ThroughputRound(o, *l.engine, l.vocab, c, rng, 0.0f).decode_tps);
      sampled.push_back(ThroughputRound(o, *l.engine, l.vocab, c, rng, temp).decode_tps);
      ratio.push_back(sampled.back() / greedy.back());
    }
    std::printf("%-12d %18.1f %18.1f %10.3f\n", c, Median(greedy), Median(sampled), Median(ratio));
    std::fflush(stdout);
    rows.push_back({{"concurrency", c},
                    {"temperature", temp},
                    {"greedy_tokens_per_s", Median(greedy)},
                    {"sampled_tokens_per_s", Median(sampled)},
                    {"sampled_over_greedy", Median(ratio)},
                    {"greedy_repeats", greedy},
                    {"sampled_repeats", sampled}});
  }
  return rows;
}

// ---- latency ----

// Closed-loop complex Generates: each of `streams` threads submits one, waits for it, submits the next.
class Background {
 public:
  Background(const Options& o, inferd::Engine& engine, int32_t vocab) {
    for (int t = 0; t < o.bg_streams; ++t) {
      threads_.emplace_back([this, &o, &engine, vocab, t] {
        std::mt19937_64 rng(9000 + static_cast<uint64_t>(t));
        while (!stop_.load()) {
          inferd::GenerateRequest r;
          r.prompt = RandomTokens(rng, o.bg_prompt, vocab);
          r.max_tokens = o.bg_tokens;
          r.ignore_eos = true;
          r.cls = inferd::RequestClass::kComplex;
          r.sampling.temperature = o.bg_temperature;
          inferd::SubmitResult s = engine.Submit(std::move(r));
          if (!s.status.ok()) {
            std::this_thread::sleep_for(milliseconds(10));
            continue;
          }
          // Tokens count as they stream, so a window of the run sees the background's rate.
          inferd::TokenDelta d;
          for (;;) {
            const auto rr = s.stream->Read(&d, milliseconds(50));
            if (rr == inferd::RequestStream::ReadResult::kFinished) break;
            if (rr == inferd::RequestStream::ReadResult::kDelta) {
              tokens_.fetch_add(static_cast<int64_t>(d.token_ids.size()));
            }
            if (stop_.load()) engine.Cancel(s.stream->id());
          }
        }
      });
    }
  }
  // Cancels what is in flight and joins.
  void Stop() {
    stop_.store(true);
    for (auto& th : threads_) th.join();
    threads_.clear();
  }
  ~Background() { Stop(); }
  int64_t tokens() const { return tokens_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> tokens_{0};
  std::vector<std::thread> threads_;
};

struct LatencyRun {
  std::vector<double> latencies_s;
  double mean_queue_s = 0.0;
  int64_t bg_tokens = 0;
  double seconds = 0.0;
  uint64_t preemptions = 0;
};

LatencyRun RunRecommends(const Options& o, bool load, inferd::RequestClass cls, int complex_max_wait_ms,
                         uint64_t seed) {
  const int64_t pool_tokens =
      int64_t{o.bg_streams + 4} * (o.bg_prompt + o.bg_tokens + 16) + int64_t{64} * (o.context + o.cand_len_max + 32);
  Options eo = o;
  eo.complex_max_wait_ms = complex_max_wait_ms;
  Loaded l = MakeEngine(eo, o.max_running, o.step_tokens, pool_tokens);
  inferd::Engine& engine = *l.engine;
  std::atomic<uint64_t> preemptions{0};
  engine.SetStatsCallback([&](const inferd::EngineStats& s) { preemptions.store(s.preemptions_total); });
  std::unique_ptr<Background> bg;
  std::mt19937_64 rng(seed);
  if (load) {
    bg = std::make_unique<Background>(o, engine, l.vocab);
    // Let the background fill the running slots and the queue before measuring.
    for (int i = 0; i < 2000; ++i) {
      const inferd::EngineStats s = engine.LastStats();
      if (s.waiting_requests[1] > 0 && s.decode_tokens > 0) break;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  const int total = o.warmup + o.count;
  std::vector<std::shared_ptr<inferd::RequestStream>> streams;
  const TimePoint start = Clock::now();
  const int64_t bg_before = bg ? bg->tokens() : 0;
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(start + milliseconds(int64_t{o.interval_ms} * i));
    inferd::RecommendRequest r;
    r.context = RandomTokens(rng, o.context, l.vocab);
    const int n = o.cand_min + static_cast<int>(rng() % static_cast<uint64_t>(o.cand_max - o.cand_min + 1));
    for (int k = 0; k < n; ++k) {
      const int len =
          o.cand_len_min + static_cast<int>(rng() % static_cast<uint64_t>(o.cand_len_max - o.cand_len_min + 1));
      r.candidates.push_back(RandomTokens(rng, len, l.vocab));
    }
    r.top_k = 5;
    r.cls = cls;
    inferd::SubmitResult s = engine.Submit(std::move(r));
    if (!s.status.ok()) {
      const inferd::EngineStats st = engine.LastStats();
      std::fprintf(stderr, "cost model (ready %d): step %.3g s, prefill token %.3g s, decode row %.3g s, logit row %.3g s, 1k attended %.3g s\n",
                   st.cost_model_ready, st.cost_coefficients[0], st.cost_coefficients[1], st.cost_coefficients[2],
                   st.cost_coefficients[3], st.cost_coefficients[4]);
      std::fprintf(stderr, "recommend submit: %s\n", s.status.ToString().c_str());
      std::exit(1);
    }
    streams.push_back(s.stream);
  }
  LatencyRun run;
  double queue_sum = 0.0;
  for (int i = 0; i < total; ++i) {
    const inferd::RequestOutcome& out = streams[static_cast<size_t>(i)]->Wait();
    if (!out.status.ok()) {
      std::fprintf(stderr, "recommend failed: %s\n", out.status.ToString().c_str());
      std::exit(1);
    }
    if (i < o.warmup) continue;
    run.latencies_s.push_back(Seconds(out.timings.arrival, out.timings.end));
    queue_sum += Seconds(out.timings.arrival, out.timings.first_scheduled);
  }
  run.seconds = Seconds(start, Clock::now());
  run.mean_queue_s = queue_sum / static_cast<double>(o.count);
  if (bg) {
    run.bg_tokens = bg->tokens() - bg_before;
    bg->Stop();
  }
  run.preemptions = preemptions.load();
  return run;
}

json RunLatency(const Options& o) {
  struct Scenario {
    std::string name;
    bool load;
    inferd::RequestClass cls;
    int complex_max_wait_ms;
  };
  const std::string relaxed = "load/realtime/max_wait=" + std::to_string(o.relaxed_max_wait_ms / 1000) + "s";
  const std::vector<Scenario> scenarios = {
      {"alone/realtime", false, inferd::RequestClass::kRealtime, o.complex_max_wait_ms},
      {"load/realtime", true, inferd::RequestClass::kRealtime, o.complex_max_wait_ms},
      {"load/complex", true, inferd::RequestClass::kComplex, o.complex_max_wait_ms},
      {relaxed, true, inferd::RequestClass::kRealtime, o.relaxed_max_wait_ms},
  };
  json rows = json::array();
  std::printf("%-30s %10s %10s %10s %12s %14s %12s\n", "scenario", "p50 ms", "p99 ms", "max ms", "queue ms", "bg tok/s",
              "preemptions");
  for (const Scenario& sc : scenarios) {
    if (!o.scenarios.empty() && ("," + o.scenarios + ",").find("," + sc.name + ",") == std::string::npos) continue;
    std::vector<double> p50, p99, mx, queue, bg_tps;
    uint64_t preempt = 0;
    for (int r = 0; r < o.repeats; ++r) {
      // Same Recommends (seed) in every scenario of a repeat.
      const LatencyRun run = RunRecommends(o, sc.load, sc.cls, sc.complex_max_wait_ms, 100 + static_cast<uint64_t>(r));
      p50.push_back(1e3 * Percentile(run.latencies_s, 0.50));
      p99.push_back(1e3 * Percentile(run.latencies_s, 0.99));
      mx.push_back(1e3 * Percentile(run.latencies_s, 1.0));
      queue.push_back(1e3 * run.mean_queue_s);
      bg_tps.push_back(static_cast<double>(run.bg_tokens) / run.seconds);
      preempt += run.preemptions;
    }
    std::printf("%-30s %10.0f %10.0f %10.0f %12.0f %14.1f %12llu\n", sc.name.c_str(), Median(p50), Median(p99),
                Median(mx), Median(queue), Median(bg_tps), static_cast<unsigned long long>(preempt));
    std::fflush(stdout);
    rows.push_back({{"scenario", sc.name},
                    {"p50_ms", Median(p50)},
                    {"p99_ms", Median(p99)},
                    {"max_ms", Median(mx)},
                    {"mean_queue_ms", Median(queue)},
                    {"bg_tokens_per_s", Median(bg_tps)},
                    {"preemptions", preempt},
                    {"p50_ms_repeats", p50},
                    {"p99_ms_repeats", p99}});
  }
  return rows;
}

// ---- overload ----

inferd::RecommendRequest MakeRecommend(const Options& o, std::mt19937_64& rng, int32_t vocab) {
  inferd::RecommendRequest r;
  r.context = RandomTokens(rng, o.context, vocab);
  const int n = o.cand_min + static_cast<int>(rng() % static_cast<uint64_t>(o.cand_max - o.cand_min + 1));
  for (int k = 0; k < n; ++k) {
    const int len =
        o.cand_len_min + static_cast<int>(rng() % static_cast<uint64_t>(o.cand_len_max - o.cand_len_min + 1));
    r.candidates.push_back(RandomTokens(rng, len, vocab));
  }
  r.top_k = 5;
  r.cls = inferd::RequestClass::kRealtime;
  return r;
}

json RunOverload(const Options& o) {
  const int64_t pool_tokens = int64_t{4096} * 64;
  Options eo = o;
  Loaded l = MakeEngine(eo, o.max_running, o.step_tokens, pool_tokens);
  inferd::Engine& engine = *l.engine;
  struct StepLog {
    std::mutex mu;
    std::vector<double> rel_err;
    double complex_s = 0, step_s = 0;  // steps with realtime active and complex work running
    double capped_complex_s = 0, capped_step_s = 0;  // of those, steps where complex work was held back
    int64_t capped_steps = 0;
    double max_complex_queue_s = 0;
    std::vector<double> complex_queue_s;
    bool record = false;
  } log;
  engine.SetStatsCallback([&](const inferd::EngineStats& s) {
    std::lock_guard<std::mutex> lock(log.mu);
    if (!log.record) return;
    if (s.predicted_seconds > 0 && s.step_seconds > 0) {
      log.rel_err.push_back(std::abs(s.predicted_seconds - s.step_seconds) / s.step_seconds);
      if (s.realtime_active && s.complex_predicted_seconds > 0) {
        log.complex_s += s.step_seconds * s.complex_predicted_seconds / s.predicted_seconds;
        log.step_s += s.step_seconds;
        if (s.complex_capped) {
          log.capped_complex_s += s.step_seconds * s.complex_predicted_seconds / s.predicted_seconds;
          log.capped_step_s += s.step_seconds;
          ++log.capped_steps;
        }
      }
    }
    for (const auto& f : s.finished) {
      if (f.cls == inferd::RequestClass::kComplex) log.complex_queue_s.push_back(f.queue_seconds);
    }
  });
  std::mt19937_64 rng(7);
  auto recommend = [&] {
    inferd::RecommendRequest r = MakeRecommend(o, rng, l.vocab);
    r.deadline = Clock::now() + milliseconds(o.deadline_ms);
    return r;
  };
  // Warm-up (also fits the cost model), then capacity with 4 in flight; far deadlines, so none is refused.
  auto unrefused = [&] {
    inferd::RecommendRequest r = MakeRecommend(o, rng, l.vocab);
    r.deadline = Clock::now() + std::chrono::minutes(10);
    inferd::SubmitResult s = engine.Submit(std::move(r));
    if (!s.status.ok()) {
      std::fprintf(stderr, "recommend submit: %s\n", s.status.ToString().c_str());
      std::exit(1);
    }
    return s.stream;
  };
  for (int i = 0; i < 20; ++i) unrefused()->Wait();
  int64_t done = 0;
  const TimePoint cap_start = Clock::now();
  {
    std::vector<std::shared_ptr<inferd::RequestStream>> inflight;
    for (int i = 0; i < 4; ++i) inflight.push_back(unrefused());
    while (Seconds(cap_start, Clock::now()) < 5.0) {
      for (auto& st : inflight) {
        if (st->finished()) {
          ++done;
          st = unrefused();
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    for (auto& st : inflight) st->Wait();
  }
  const double capacity = static_cast<double>(done) / Seconds(cap_start, Clock::now());
  // Mixed traffic: Recommends are 90% of arrivals at overload_factor x the Recommend capacity.
  const double rate = o.overload_factor * capacity / 0.9;
  std::printf("recommend capacity %.1f req/s; offering %.1f req/s (%.0f%% Recommend) for %d s\n", capacity, rate, 90.0,
              o.overload_seconds);
  {
    std::lock_guard<std::mutex> lock(log.mu);
    log.record = true;
  }
  std::exponential_distribution<double> gap(rate);
  struct Sent {
    bool realtime;
    std::shared_ptr<inferd::RequestStream> stream;
    TimePoint deadline;
  };
  std::vector<Sent> sent;
  std::vector<double> refuse_us;
  int64_t refused = 0, other_errors = 0;
  const TimePoint start = Clock::now();
  TimePoint next = start;
  std::uniform_real_distribution<double> coin(0, 1);
  while (Seconds(start, next) < o.overload_seconds) {
    std::this_thread::sleep_until(next);
    next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    const bool rt = coin(rng) < 0.9;
    inferd::SubmitResult s;
    const TimePoint t0 = Clock::now();
    if (rt) {
      s = engine.Submit(recommend());
    } else {
      inferd::GenerateRequest g;
      g.prompt = RandomTokens(rng, o.bg_prompt, l.vocab);
      g.max_tokens = o.bg_tokens;
      g.ignore_eos = true;
      g.sampling.temperature = 0.7f;
      g.cls = inferd::RequestClass::kComplex;
      s = engine.Submit(std::move(g));
    }
    const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (s.status.ok()) {
      sent.push_back({rt, s.stream, t0 + milliseconds(o.deadline_ms)});
    } else if (s.status.code() == inferd::StatusCode::kResourceExhausted && rt) {
      ++refused;
      refuse_us.push_back(us);
    } else {
      ++other_errors;
    }
  }
  std::vector<double> rt_ms;
  int64_t rt_admitted = 0, rt_deadline_exceeded = 0, rt_late = 0, complex_done = 0, complex_failed = 0;
  for (const Sent& x : sent) {
    const inferd::RequestOutcome& out = x.stream->Wait();
    if (x.realtime) {
      ++rt_admitted;
      if (out.status.code() == inferd::StatusCode::kDeadlineExceeded) ++rt_deadline_exceeded;
      const double ms = 1e3 * Seconds(out.timings.arrival, out.timings.end);
      rt_ms.push_back(ms);
      rt_late += out.timings.end > x.deadline;
    } else {
      (out.status.ok() ? complex_done : complex_failed)++;
    }
  }
  std::lock_guard<std::mutex> lock(log.mu);
  log.record = false;
  double max_queue = 0;
  for (double q : log.complex_queue_s) max_queue = std::max(max_queue, q);
  json r = {{"recommend_capacity_per_s", capacity},
            {"offered_per_s", rate},
            {"realtime_admitted", rt_admitted},
            {"realtime_refused", refused},
            {"realtime_deadline_exceeded", rt_deadline_exceeded},
            {"realtime_finished_after_deadline", rt_late},
            {"admitted_realtime_p50_ms", Percentile(rt_ms, 0.5)},
            {"admitted_realtime_p99_ms", Percentile(rt_ms, 0.99)},
            {"deadline_ms", o.deadline_ms},
            {"refusal_submit_us_p50", Percentile(refuse_us, 0.5)},
            {"refusal_submit_us_p99", Percentile(refuse_us, 0.99)},
            {"refusal_submit_us_max", Percentile(refuse_us, 1.0)},
            {"complex_finished", complex_done},
            {"complex_failed", complex_failed},
            {"other_submit_errors", other_errors},
            {"complex_share_of_step_time_while_realtime_active", log.step_s > 0 ? log.complex_s / log.step_s : 0.0},
            {"complex_share_of_step_time_when_held_back",
             log.capped_step_s > 0 ? log.capped_complex_s / log.capped_step_s : 0.0},
            {"steps_complex_held_back", log.capped_steps},
            {"complex_max_queue_s", max_queue},
            {"complex_max_wait_s", o.complex_max_wait_ms / 1000.0},
            {"cost_model_median_rel_error", Median(log.rel_err)},
            {"cost_model_p90_rel_error", Percentile(log.rel_err, 0.9)},
            {"steps", log.rel_err.size()}};
  std::printf("%s\n", r.dump(2).c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  std::printf("bench_serving: model %s, mode %s, dtype %s, threads %d, repeats %d\n", o.model.c_str(), o.mode.c_str(),
              o.dtype.c_str(), o.threads, o.repeats);
  json out = {{"model", o.model}, {"mode", o.mode}, {"dtype", o.dtype}, {"threads", o.threads}, {"repeats", o.repeats}};
  if (o.mode == "sampling") {
    out["rows"] = RunSampling(o);
  } else if (o.mode == "overload") {
    out["result"] = RunOverload(o);
  } else if (o.mode == "throughput") {
    std::printf("prompt %d tokens, %d generated tokens per request\n", o.prompt_len, o.gen_tokens);
    out["prompt_len"] = o.prompt_len;
    out["gen_tokens"] = o.gen_tokens;
    out["rows"] = RunThroughput(o);
  } else {
    std::printf(
        "recommend: context %d, %d-%d candidates of %d-%d tokens, every %d ms, %d counted (+%d warm-up)\n"
        "background: %d closed-loop complex generates (prompt %d, %d tokens); max_running %d, "
        "step budget %d tokens, complex_max_wait %d ms\n",
        o.context, o.cand_min, o.cand_max, o.cand_len_min, o.cand_len_max, o.interval_ms, o.count, o.warmup,
        o.bg_streams, o.bg_prompt, o.bg_tokens, o.max_running, o.step_tokens, o.complex_max_wait_ms);
    out["config"] = {{"context", o.context},
                     {"candidates", {o.cand_min, o.cand_max}},
                     {"cand_len", {o.cand_len_min, o.cand_len_max}},
                     {"interval_ms", o.interval_ms},
                     {"count", o.count},
                     {"bg_streams", o.bg_streams},
                     {"bg_prompt", o.bg_prompt},
                     {"bg_tokens", o.bg_tokens},
                     {"max_running", o.max_running},
                     {"step_tokens", o.step_tokens}};
    out["rows"] = RunLatency(o);
  }
  if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
  return 0;
}
