// bench_model: prefill and decode throughput of one checkpoint through the public ModelRunner API, plus the
// host read bandwidth measured in the same process and the batch-1 decode bound it implies.
//
//   bench_model --model DIR [--dtype bf16|fp32|fp16] [--device cpu|cuda] [--threads 2] [--prompts 128,512]
//               [--batches 1,4,16,64] [--context 64] [--decode-steps 16] [--repeats 3]
//               [--membw-bytes 1073741824] [--json FILE] [--prefill-chunk N] [--share-context 0|1]
//
// Prefill: one sequence, the whole prompt in one chunk (sample=true, greedy), tokens/s = prompt / wall time;
// with --prefill-chunk N, consecutive steps of N tokens (start_pos > 0 after the first; the last samples).
// Decode at batch N: N sequences each prefilled with --context tokens, then --decode-steps steps of one
// ForwardBatch holding every sequence with one token (sample=true, greedy); tokens/s = N * steps / wall
// time. Each repeat restarts the decode at position --context (same context lengths every repeat). One
// untimed warm-up of each measurement precedes the repeats; the reported figure is the median repeat.
// With --share-context 1 (--context a multiple of 16) one sequence prefills the context and every decode
// sequence reads its blocks as its own first --context positions (a long context at batch 64 without
// prefilling 64 of them; the prefill runs once per process, before the first measurement); each sequence
// starts from a different token. The prefix blocks are shared, so they are read from cache more often than
// 64 private contexts would be.
//
// Bandwidth: bench_membw's measurement (1 GiB buffer, 10 passes, median), with 1 thread and with --threads,
// before and after the model runs; the bound uses the higher mean of the two thread counts.
// Bound: batch-1 decode cannot beat bandwidth / bytes read per token, where bytes per token counts every
// weight once at the run dtype's width, except: the input embedding contributes one row (hidden values),
// routed MoE experts contribute top_k / n_routed_experts of their bytes (the experts a token selects), and
// the float32 MoE router gate counts 4 bytes per value. KV cache reads (context * per-token KV bytes) are
// reported separately and not in the bound (they are < 1% at these contexts).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "inferd/batch.h"
#include "inferd/model_runner.h"

#include "read_bandwidth.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Options {
  std::string model;
  std::string dtype = "bf16";
  std::string device = "cpu";  // cpu | cuda | cuda:N (ModelRunnerOptions::device)
  int threads = 2;
  std::vector<int> prompts = {128, 512};
  std::vector<int> batches = {1, 4, 16, 64};
  int context = 64;
  int decode_steps = 16;
  int repeats = 3;
  int prefill_chunk = 0;       // 0: the whole prompt in one chunk
  bool share_context = false;  // decode sequences share one prefilled context (its blocks, read-only)
  uint64_t membw_bytes = uint64_t{1} << 30;
  std::string json_path;
};

[[noreturn]] void Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --model DIR [--dtype bf16|fp32|fp16] [--device cpu|cuda] [--threads N] [--prompts 128,512]\n"
               "          [--batches 1,4,16,64] [--context 64] [--decode-steps 16] [--repeats 3] [--membw-bytes N] "
               "[--json FILE]\n"
               "          [--prefill-chunk N] [--share-context 0|1]\n",
               argv0);
  std::exit(2);
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::atoi(item.c_str()));
  }
  return out;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Usage(argv[0]);
    const std::string value = argv[++i];
    if (arg == "--model") {
      o.model = value;
    } else if (arg == "--dtype") {
      o.dtype = value;
    } else if (arg == "--device") {
      o.device = value;
    } else if (arg == "--threads") {
      o.threads = std::atoi(value.c_str());
    } else if (arg == "--prompts") {
      o.prompts = ParseList(value);
    } else if (arg == "--batches") {
      o.batches = ParseList(value);
    } else if (arg == "--context") {
      o.context = std::atoi(value.c_str());
    } else if (arg == "--decode-steps") {
      o.decode_steps = std::atoi(value.c_str());
    } else if (arg == "--repeats") {
      o.repeats = std::atoi(value.c_str());
    } else if (arg == "--membw-bytes") {
      o.membw_bytes = std::strtoull(value.c_str(), nullptr, 10);
    } else if (arg == "--prefill-chunk") {
      o.prefill_chunk = std::atoi(value.c_str());
    } else if (arg == "--share-context") {
      o.share_context = value == "1";
    } else if (arg == "--json") {
      o.json_path = value;
    } else {
      Usage(argv[0]);
    }
  }
  if (o.model.empty() || o.threads < 1 || o.context < 1 || o.decode_steps < 1 || o.repeats < 1 || o.prefill_chunk < 0 ||
      (o.share_context && o.context % 16 != 0)) {
    Usage(argv[0]);
  }
  return o;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string LoadAvg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---- read bandwidth: the same measurement as bench_membw (membw.cpp), in-process -------------------------

struct Bandwidth {
  double best_gbps = 0, median_gbps = 0;
};

Bandwidth MeasureBandwidth(uint64_t bytes, int threads, int iters) {
  const inferd::bench::ReadBandwidth r = inferd::bench::MeasureReadBandwidth(bytes, threads, iters);
  Bandwidth bw;
  bw.best_gbps = r.best_gbps;
  bw.median_gbps = r.median_gbps;
  return bw;
}

// ---- bytes of weights read per decoded token (see the header comment for the formula) -------------------

json ReadJson(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open");
  return json::parse(f);
}

// name -> shape of every tensor in the checkpoint (safetensors headers only; no tensor data is read).
std::vector<std::pair<std::string, std::vector<int64_t>>> TensorShapes(const std::string& dir) {
  std::vector<std::string> files;
  std::ifstream idx(dir + "/model.safetensors.index.json");
  if (idx) {
    const json index = json::parse(idx);
    for (const auto& [name, file] : index.at("weight_map").items()) {
      const std::string f = file.get<std::string>();
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
  } else {
    files.push_back("model.safetensors");
  }
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const std::string& f : files) {
    std::ifstream in(dir + "/" + f, std::ios::binary);
    uint64_t len = 0;
    in.read(reinterpret_cast<char*>(&len), sizeof(len));
    std::string header(len, '\0');
    in.read(header.data(), static_cast<std::streamsize>(len));
    if (!in) throw std::runtime_error(dir + "/" + f + ": cannot read safetensors header");
    const json h = json::parse(header);
    for (const auto& [name, info] : h.items()) {
      if (name == "__metadata__") continue;
      out.emplace_back(name, info.at("shape").get<std::vector<int64_t>>());
    }
  }
  return out;
}

struct WeightBytes {
  double total = 0;       // every weight at the run dtype (router gate at fp32)
  double per_token = 0;   // read by one batch-1 decode step (the bound's denominator)
  double kv_per_token = 0;  // KV cache bytes one cached token adds (all layers)
};

WeightBytes CountWeightBytes(const std::string& dir, const std::string& dtype) {
  const json cfg = ReadJson(dir + "/config.json");
  const double elem = dtype == "fp32" ? 4.0 : 2.0;
  const int64_t routed = cfg.value("n_routed_experts", 0);
  const int64_t top_k = cfg.value("num_experts_per_tok", 0);
  const double routed_frac = routed > 0 ? static_cast<double>(top_k) / static_cast<double>(routed) : 1.0;
  const int64_t hidden = cfg.at("hidden_size").get<int64_t>();
  WeightBytes wb;
  for (const auto& [name, shape] : TensorShapes(dir)) {
    double n = 1;
    for (int64_t d : shape) n *= static_cast<double>(d);
    if (name.find("rotary_emb") != std::string::npos) continue;
    const bool gate = name.size() > 15 && name.compare(name.size() - 15, 15, "mlp.gate.weight") == 0;
    const bool bias = name.find("e_score_correction_bias") != std::string::npos;
    const double bytes = n * (gate || bias ? 4.0 : elem);
    wb.total += bytes;
    if (name == "model.embed_tokens.weight") {
      wb.per_token += static_cast<double>(hidden) * elem;  // one row gathered
    } else if (name.find(".mlp.experts.") != std::string::npos) {
      wb.per_token += bytes * routed_frac;
    } else {
      wb.per_token += bytes;
    }
  }
  const int64_t layers = cfg.at("num_hidden_layers").get<int64_t>();
  if (cfg.contains("kv_lora_rank") && !cfg.at("kv_lora_rank").is_null()) {
    wb.kv_per_token = static_cast<double>(layers) *
                      static_cast<double>(cfg.at("kv_lora_rank").get<int64_t>() + cfg.at("qk_rope_head_dim").get<int64_t>()) * elem;
  } else {
    const int64_t heads = cfg.at("num_attention_heads").get<int64_t>();
    const int64_t kv_heads = cfg.value("num_key_value_heads", heads);
    const int64_t head_dim = cfg.value("head_dim", hidden / heads);
    wb.kv_per_token = static_cast<double>(layers * 2 * kv_heads * head_dim) * elem;
  }
  return wb;
}

// ---- runner driving -------------------------------------------------------------------------------------

std::vector<inferd::TokenId> PromptTokens(int n, int64_t vocab, int salt) {
  std::vector<inferd::TokenId> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    t[static_cast<size_t>(i)] =
        static_cast<inferd::TokenId>((static_cast<int64_t>(i) * 7919 + static_cast<int64_t>(salt) * 104729 + 13) % vocab);
  }
  return t;
}

void Check(const inferd::StatusOr<inferd::StepResult>& r, const char* what) {
  if (!r.ok()) {
    std::fprintf(stderr, "bench_model: %s failed: %s\n", what, r.status().message().c_str());
    std::exit(1);
  }
}

class Bench {
 public:
  Bench(inferd::worker::ModelRunner& runner, const Options& o) : runner_(runner), o_(o), bs_(runner.BlockSize()) {}

  // Block table of `seq` covering `tokens` positions; blocks are assigned from a bump allocator per run.
  std::vector<inferd::BlockId> Table(int first_block, int tokens) const {
    std::vector<inferd::BlockId> t;
    for (int b = 0; b * bs_ < tokens; ++b) t.push_back(first_block + b);
    return t;
  }

  // The prompt in chunks of --prefill-chunk tokens (one step each, the last one samples), or in one chunk.
  double PrefillSeconds(int prompt) {
    const std::vector<inferd::TokenId> tokens = PromptTokens(prompt, runner_.VocabSize(), 1);
    const int chunk = o_.prefill_chunk > 0 ? o_.prefill_chunk : prompt;
    const auto start = Clock::now();
    for (int begin = 0; begin < prompt; begin += chunk) {
      inferd::ForwardBatch batch;
      batch.block_size = bs_;
      inferd::SequenceChunk c;
      c.seq_id = 1;
      c.start_pos = begin;
      c.tokens.assign(tokens.begin() + begin, tokens.begin() + std::min(prompt, begin + chunk));
      c.block_table = Table(0, prompt);
      c.sample = begin + chunk >= prompt;
      batch.chunks.push_back(std::move(c));
      Check(runner_.Execute(batch), "prefill");
    }
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  // Prefills `n` sequences with the context (one batch of n chunks), then times `steps` decode steps.
  // Returns the per-step wall times.
  std::vector<double> DecodeSteps(int n, int steps) {
    if (o_.share_context) return SharedContextDecodeSteps(n, steps);
    const int max_len = o_.context + steps;
    const int blocks_per_seq = (max_len + bs_ - 1) / bs_;
    inferd::ForwardBatch prefill;
    prefill.block_size = bs_;
    for (int s = 0; s < n; ++s) {
      inferd::SequenceChunk c;
      c.seq_id = 1000 + s;
      c.tokens = PromptTokens(o_.context, runner_.VocabSize(), s + 2);
      c.block_table = Table(s * blocks_per_seq, max_len);
      c.sample = true;
      prefill.chunks.push_back(std::move(c));
    }
    const auto first = runner_.Execute(prefill);
    Check(first, "decode context prefill");
    std::vector<std::vector<inferd::BlockId>> tables;
    std::vector<inferd::TokenId> next;
    for (int s = 0; s < n; ++s) {
      tables.push_back(prefill.chunks[static_cast<size_t>(s)].block_table);
      next.push_back(first.value().results[static_cast<size_t>(s)].token.token);
    }
    return TimeDecode(tables, std::move(next), steps);
  }

  // --share-context: one sequence prefills the context into blocks [0, context / block); every decode
  // sequence's table starts with those blocks and continues in its own, and its first token differs per
  // sequence (so MoE routing and the outputs differ across rows). Attention reads the shared prefix.
  std::vector<double> SharedContextDecodeSteps(int n, int steps) {
    const int ctx_blocks = o_.context / bs_;
    const int tail_blocks = (steps + bs_ - 1) / bs_;
    if (!shared_prefilled_) {  // decode steps write only the tail blocks: the prefix stays valid across calls
      inferd::ForwardBatch prefill;
      prefill.block_size = bs_;
      inferd::SequenceChunk p;
      p.seq_id = 999;
      p.tokens = PromptTokens(o_.context, runner_.VocabSize(), 2);
      p.block_table = Table(0, o_.context);
      p.sample = true;
      prefill.chunks.push_back(std::move(p));
      Check(runner_.Execute(prefill), "decode context prefill");
      shared_prefilled_ = true;
      std::fprintf(stderr, "bench_model: shared context prefilled\n");  // profilers start here (decode only)
    }
    std::vector<std::vector<inferd::BlockId>> tables(static_cast<size_t>(n));
    std::vector<inferd::TokenId> next(static_cast<size_t>(n));
    for (int s = 0; s < n; ++s) {
      tables[static_cast<size_t>(s)] = Table(0, o_.context);
      for (int b = 0; b < tail_blocks; ++b) tables[static_cast<size_t>(s)].push_back(ctx_blocks + s * tail_blocks + b);
      next[static_cast<size_t>(s)] = static_cast<inferd::TokenId>((s * 7919 + 5) % runner_.VocabSize());
    }
    return TimeDecode(tables, std::move(next), steps);
  }

 private:
  // Times `steps` decode steps of sequences 1000.. whose contexts (o_.context tokens) are cached in
  // `tables[s]` and whose next input token is `next[s]`. Returns the per-step wall times.
  std::vector<double> TimeDecode(const std::vector<std::vector<inferd::BlockId>>& tables,
                                 std::vector<inferd::TokenId> next, int steps) {
    const int n = static_cast<int>(tables.size());
    std::vector<double> times;
    for (int step = 0; step < steps; ++step) {
      inferd::ForwardBatch batch;
      batch.block_size = bs_;
      for (int s = 0; s < n; ++s) {
        inferd::SequenceChunk c;
        c.seq_id = 1000 + s;
        c.tokens = {next[static_cast<size_t>(s)]};
        c.start_pos = o_.context + step;
        c.block_table = tables[static_cast<size_t>(s)];
        c.sample = true;
        c.sample_index = static_cast<uint64_t>(step + 1);
        batch.chunks.push_back(std::move(c));
      }
      const auto start = Clock::now();
      const auto r = runner_.Execute(batch);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      Check(r, "decode step");
      for (int s = 0; s < n; ++s) next[static_cast<size_t>(s)] = r.value().results[static_cast<size_t>(s)].token.token;
    }
    return times;
  }

  inferd::worker::ModelRunner& runner_;
  const Options& o_;
  int bs_;
  bool shared_prefilled_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  const std::string load_start = LoadAvg();
  // Read bandwidth as bench_membw measures it (1 GiB, sum with T threads, median of 10), with 1 thread and with
  // --threads, before and after the model runs. The bound uses the higher of the two thread counts' means
  // (with the two cores shared, the 2-thread static split reads low whenever one thread is descheduled).
  std::fprintf(stderr, "bench_model: measuring read bandwidth\n");
  const Bandwidth bw1_before = MeasureBandwidth(o.membw_bytes, 1, 10);
  const Bandwidth bw_before = MeasureBandwidth(o.membw_bytes, o.threads, 10);

  WeightBytes wb;
  try {
    wb = CountWeightBytes(o.model, o.dtype);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }

  const int block_size = 16;
  int max_batch = 1;
  for (int b : o.batches) max_batch = std::max(max_batch, b);
  int max_prompt = 1;
  for (int p : o.prompts) max_prompt = std::max(max_prompt, p);
  const int64_t decode_blocks =
      o.share_context
          ? o.context / block_size + static_cast<int64_t>(max_batch) * ((o.decode_steps + block_size - 1) / block_size)
          : static_cast<int64_t>(max_batch) * ((o.context + o.decode_steps + block_size - 1) / block_size);
  const int64_t prefill_blocks = (max_prompt + block_size - 1) / block_size;

  inferd::worker::ModelRunnerOptions ro;
  ro.dtype = o.dtype;
  ro.device = o.device;
  ro.num_threads = o.threads;
  ro.block_size = block_size;
  ro.kv_num_blocks = std::max(decode_blocks, prefill_blocks);
  std::fprintf(stderr, "bench_model: loading %s (%s, %lld KV blocks)\n", o.model.c_str(), o.dtype.c_str(),
               static_cast<long long>(ro.kv_num_blocks));
  const auto load_start_t = Clock::now();
  auto loaded = inferd::worker::ModelRunner::Load(o.model, ro);
  if (!loaded.ok()) {
    std::fprintf(stderr, "bench_model: load failed: %s\n", loaded.status().message().c_str());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start_t).count();
  inferd::worker::ModelRunner& runner = *loaded.value();
  Bench bench(runner, o);

  json result;
  result["model"] = o.model;
  result["architecture"] = runner.Architecture();
  result["dtype"] = o.dtype;
  result["device"] = o.device;
  result["threads"] = o.threads;
  result["context"] = o.context;
  result["decode_steps"] = o.decode_steps;
  result["prefill_chunk"] = o.prefill_chunk;
  result["share_context"] = o.share_context;
  result["repeats"] = o.repeats;
  result["load_s"] = load_s;

  std::printf("model %s (%s), dtype %s, %d threads; weights %.3f GB, read per batch-1 token %.3f GB\n",
              o.model.c_str(), runner.Architecture().c_str(), o.dtype.c_str(), o.threads, wb.total / 1e9,
              wb.per_token / 1e9);
  std::printf("%-28s %12s %12s\n", "measurement", "tokens/s", "ms/step");

  for (int p : o.prompts) {
    bench.PrefillSeconds(p);  // warm-up
    std::vector<double> secs;
    for (int r = 0; r < o.repeats; ++r) secs.push_back(bench.PrefillSeconds(p));
    const double med = Median(secs);
    std::printf("prefill %-20d %12.1f %12.1f\n", p, p / med, med * 1e3);
    std::fflush(stdout);
    result["prefill"][std::to_string(p)] = {{"tokens_per_s", p / med}, {"seconds", secs}};
  }
  for (int n : o.batches) {
    bench.DecodeSteps(n, std::min(o.decode_steps, 2));  // warm-up
    std::vector<double> tps, step_ms, paired_ratio, paired_gbps;
    // Batch 1 is the bound's case: at least 5 repeats, each bracketed by a short bandwidth measurement (3 passes
    // with 1 thread and with --threads, the higher median; mean of before and after), so the ratio compares
    // decode and bandwidth under the same machine load.
    const int repeats = n == 1 ? std::max(o.repeats, 5) : o.repeats;
    auto quick_bw = [&] {
      return std::max(MeasureBandwidth(o.membw_bytes, 1, 3).median_gbps,
                      MeasureBandwidth(o.membw_bytes, o.threads, 3).median_gbps);
    };
    for (int r = 0; r < repeats; ++r) {
      const double bw0 = n == 1 ? quick_bw() : 0.0;
      const std::vector<double> t = bench.DecodeSteps(n, o.decode_steps);
      const double bw1 = n == 1 ? quick_bw() : 0.0;
      double sum = 0;
      for (double s : t) sum += s;
      tps.push_back(n * static_cast<double>(t.size()) / sum);
      step_ms.push_back(Median(t) * 1e3);
      if (n == 1) {
        const double bw = 0.5 * (bw0 + bw1);
        paired_gbps.push_back(bw);
        paired_ratio.push_back(tps.back() * wb.per_token / (bw * 1e9));
      }
    }
    if (n == 1) {
      result["batch1_paired"] = {{"ratio_median", Median(paired_ratio)}, {"ratios", paired_ratio},
                                 {"gbps", paired_gbps}};
    }
    const double med = Median(tps);
    std::printf("decode batch %-15d %12.2f %12.1f\n", n, med, Median(step_ms));
    std::fflush(stdout);
    result["decode"][std::to_string(n)] = {{"tokens_per_s", med}, {"repeats_tokens_per_s", tps},
                                           {"median_step_ms", Median(step_ms)}};
  }

  const Bandwidth bw1_after = MeasureBandwidth(o.membw_bytes, 1, 10);
  const Bandwidth bw_after = MeasureBandwidth(o.membw_bytes, o.threads, 10);
  const double gbps_t = 0.5 * (bw_before.median_gbps + bw_after.median_gbps);
  const double gbps_1 = 0.5 * (bw1_before.median_gbps + bw1_after.median_gbps);
  const double gbps = std::max(gbps_t, gbps_1);
  const double bound = gbps * 1e9 / wb.per_token;
  // Same read over a buffer the size of one token's weights: with a large shared L3 (300 MB here) part of a
  // few-hundred-MB working set can stay cached between steps, which a 1 GiB buffer hides.
  const uint64_t ws_bytes = static_cast<uint64_t>(wb.per_token) / 4096 * 4096;
  const Bandwidth bw_ws = MeasureBandwidth(ws_bytes, 1, 10);
  const Bandwidth bw_ws_t = MeasureBandwidth(ws_bytes, o.threads, 10);
  const double gbps_ws = std::max(bw_ws.median_gbps, bw_ws_t.median_gbps);
  const double bound_ws = gbps_ws * 1e9 / wb.per_token;
  result["membw"] = {{"bytes", o.membw_bytes},
                     {"threads", o.threads},
                     {"before_median_gbps", bw_before.median_gbps},
                     {"before_best_gbps", bw_before.best_gbps},
                     {"after_median_gbps", bw_after.median_gbps},
                     {"after_best_gbps", bw_after.best_gbps},
                     {"one_thread_before_median_gbps", bw1_before.median_gbps},
                     {"one_thread_after_median_gbps", bw1_after.median_gbps},
                     {"gbps_used", gbps},
                     {"working_set_bytes", ws_bytes},
                     {"working_set_gbps", gbps_ws}};
  result["batch1_bound_working_set_tokens_per_s"] = bound_ws;
  result["weights"] = {{"total_bytes", wb.total}, {"bytes_per_token_batch1", wb.per_token},
                       {"kv_bytes_per_cached_token", wb.kv_per_token}};
  result["batch1_bound_tokens_per_s"] = bound;
  double ratio = 0;
  for (int n : o.batches) {
    if (n == 1) ratio = result["decode"]["1"]["tokens_per_s"].get<double>() / bound;
  }
  result["batch1_ratio_to_bound"] = ratio;
  result["batch1_ratio_to_working_set_bound"] = ratio * bound / bound_ws;
  result["loadavg_start"] = load_start;
  result["loadavg_end"] = LoadAvg();

  std::printf("read bandwidth %.2f GB/s: %d threads median before %.2f / after %.2f (best %.2f / %.2f); "
              "1 thread median before %.2f / after %.2f\n",
              gbps, o.threads, bw_before.median_gbps, bw_after.median_gbps, bw_before.best_gbps, bw_after.best_gbps,
              bw1_before.median_gbps, bw1_after.median_gbps);
  std::printf("batch-1 decode bound %.2f tokens/s = %.2f GB/s / %.3f GB per token; measured/bound = %.2f\n", bound,
              gbps, wb.per_token / 1e9, ratio);
  if (result.contains("batch1_paired")) {
    std::printf("batch-1 decode / bound with bandwidth measured around each repeat (paired): median %.2f\n",
                result["batch1_paired"]["ratio_median"].get<double>());
  }
  std::printf("working-set read bandwidth %.2f GB/s over %.3f GB: bound %.2f tokens/s; measured/bound = %.2f\n",
              gbps_ws, static_cast<double>(ws_bytes) / 1e9, bound_ws, ratio * bound / bound_ws);
  std::printf("loadavg start %s, end %s\n", load_start.c_str(), result["loadavg_end"].get<std::string>().c_str());
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    f << result.dump(2) << "\n";
  }
  return 0;
}
