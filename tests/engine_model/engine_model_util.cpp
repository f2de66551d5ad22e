#include "engine_model_util.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "worker/model_executor.h"

namespace inferd::engine_model {

using std::chrono::milliseconds;

std::string ModelsDir() {
  if (const char* d = std::getenv("INFERD_TESTMODELS")) return d;
  if (const char* d = std::getenv("INFERD_TESTMODELS_DEFAULT")) return d;
  return "testmodels";
}

Npy ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  char magic[8];
  in.read(magic, 8);
  uint32_t len = 0;
  if (magic[6] == 1) {
    uint16_t l16 = 0;
    in.read(reinterpret_cast<char*>(&l16), 2);
    len = l16;
  } else {
    in.read(reinterpret_cast<char*>(&len), 4);
  }
  std::string header(len, ' ');
  in.read(header.data(), len);
  if (header.find("'<f4'") == std::string::npos) throw std::runtime_error(path + ": expected <f4");
  if (header.find("'fortran_order': False") == std::string::npos) throw std::runtime_error(path + ": expected C order");
  Npy n;
  const size_t open = header.find('(', header.find("shape"));
  const size_t close = header.find(')', open);
  const std::string dims = header.substr(open + 1, close - open - 1);
  size_t p = 0;
  while (p < dims.size()) {
    const size_t q = dims.find(',', p);
    const std::string d = dims.substr(p, q == std::string::npos ? std::string::npos : q - p);
    if (d.find_first_of("0123456789") != std::string::npos) n.shape.push_back(std::stoll(d));
    if (q == std::string::npos) break;
    p = q + 1;
  }
  int64_t count = 1;
  for (int64_t d : n.shape) count *= d;
  n.data.resize(static_cast<size_t>(count));
  in.read(reinterpret_cast<char*>(n.data.data()), count * 4);
  if (!in) throw std::runtime_error(path + ": truncated");
  return n;
}

Reference LoadReference(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  if (!in) throw std::runtime_error(dir + "/reference.json: cannot open");
  const nlohmann::json j = nlohmann::json::parse(in);
  Reference r;
  r.prompts = j.at("prompts").get<std::vector<std::vector<TokenId>>>();
  r.greedy = j.at("greedy").get<std::vector<std::vector<TokenId>>>();
  for (size_t i = 0; i < r.prompts.size(); ++i) {
    r.logits_files.push_back(
        dir + "/" +
        (j.contains("logits") ? j.at("logits")[i].get<std::string>() : "ref_logits_" + std::to_string(i) + ".npy"));
  }
  return r;
}

std::unique_ptr<worker::ModelRunner> LoadRunner(const std::string& dir, int64_t kv_num_blocks, int32_t block_size) {
  worker::ModelRunnerOptions o;
  o.dtype = "fp32";
  o.num_threads = 1;
  o.kv_num_blocks = kv_num_blocks;
  o.block_size = block_size;
  auto r = worker::ModelRunner::Load(dir, o);
  if (!r.ok()) throw std::runtime_error(dir + ": " + r.status().ToString());
  return std::move(r).value();
}

EngineOptions MakeOptions(const EngineConfig& cfg, const worker::ModelRunner& runner) {
  EngineOptions o;
  o.kv_cache.block_size = cfg.block_size;
  o.kv_cache.num_blocks_override = cfg.num_blocks;
  o.kv_cache.enable_prefix_caching = cfg.prefix_caching;
  o.scheduler.max_num_batched_tokens = cfg.max_num_batched_tokens;
  o.scheduler.max_prefill_chunk_tokens = cfg.max_prefill_chunk_tokens;
  o.scheduler.max_running = cfg.max_running;
  o.scheduler.max_waiting_realtime = cfg.max_waiting_realtime;
  o.scheduler.max_waiting_complex = cfg.max_waiting_complex;
  if (cfg.model_eos) o.scheduler.eos_token_ids = runner.EosTokenIds();
  // These suites check outputs under concurrency, not admission: on a loaded machine the cost model may
  // predict a realtime request late, which must not turn into a refusal here.
  o.scheduler.realtime_refuse_unmeetable = false;
  return o;
}

std::unique_ptr<Engine> MakeEngine(const std::string& dir, const EngineConfig& cfg) {
  auto runner = LoadRunner(dir);
  const EngineOptions opts = MakeOptions(cfg, *runner);
  auto e = Engine::Create(opts, std::make_unique<worker::ModelExecutor>(std::move(runner)));
  if (!e.ok()) throw std::runtime_error("Engine::Create: " + e.status().ToString());
  return std::move(e).value();
}

std::unique_ptr<engine::EngineCore> MakeCore(const std::string& dir, const EngineConfig& cfg,
                                             std::function<TimePoint()> now) {
  auto runner = LoadRunner(dir);
  const EngineOptions opts = MakeOptions(cfg, *runner);
  auto core = std::make_unique<engine::EngineCore>(opts, std::make_unique<worker::ModelExecutor>(std::move(runner)),
                                                   nullptr, std::move(now));
  if (Status s = core->Init(); !s.ok()) throw std::runtime_error("EngineCore::Init: " + s.ToString());
  return core;
}

namespace {

void Append(Collected* c, const TokenDelta& d) {
  c->tokens.insert(c->tokens.end(), d.token_ids.begin(), d.token_ids.end());
  c->logprobs.insert(c->logprobs.end(), d.logprobs.begin(), d.logprobs.end());
}

void SetOutcome(Collected* c, const RequestOutcome& o) {
  c->finished = true;
  c->code = o.status.code();
  c->finish_reason = o.finish_reason;
  c->ranked = o.ranked;
}

}  // namespace

Collected Collect(RequestStream& stream, milliseconds timeout) {
  Collected c;
  TokenDelta d;
  for (;;) {
    const RequestStream::ReadResult r = stream.Read(&d, timeout);
    if (r == RequestStream::ReadResult::kTimeout) return c;
    if (r == RequestStream::ReadResult::kFinished) break;
    Append(&c, d);
  }
  SetOutcome(&c, stream.Wait());
  return c;
}

Collected CollectFinished(RequestStream& stream) {
  Collected c;
  TokenDelta d;
  while (stream.Read(&d, milliseconds(0)) == RequestStream::ReadResult::kDelta) Append(&c, d);
  SetOutcome(&c, stream.Wait());
  return c;
}

Collected RunAlone(Engine& engine, const GenerateRequest& request) {
  SubmitResult r = engine.Submit(request);
  if (!r.status.ok()) throw std::runtime_error("Submit: " + r.status.ToString());
  return Collect(*r.stream);
}

Collected RunAlone(Engine& engine, const RecommendRequest& request) {
  SubmitResult r = engine.Submit(request);
  if (!r.status.ok()) throw std::runtime_error("Submit: " + r.status.ToString());
  return Collect(*r.stream);
}

bool WaitPoolFull(Engine& engine, milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  for (;;) {
    const EngineStats s = engine.LastStats();
    int32_t live = 0;
    for (int c = 0; c < kNumRequestClasses; ++c) live += s.running_requests[c] + s.waiting_requests[c];
    if (live == 0 && s.kv_free_blocks == engine.num_blocks()) return true;
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
}

ScoreReference::ScoreReference(const std::string& dir) : runner_(LoadRunner(dir, 64, 16)) {}

const std::vector<double>& ScoreReference::TokenLogprobs(const std::vector<TokenId>& context,
                                                         const std::vector<TokenId>& candidate) {
  auto key = std::make_pair(context, candidate);
  auto it = memo_.find(key);
  if (it != memo_.end()) return it->second;
  ForwardBatch b;
  b.block_size = runner_->BlockSize();
  SequenceChunk c;
  c.seq_id = 1;
  c.tokens = Concat(context, candidate);
  const int32_t blocks = static_cast<int32_t>((c.tokens.size() + b.block_size - 1) / b.block_size);
  if (blocks > runner_->NumBlocks()) throw std::runtime_error("ScoreReference: sequence too long");
  for (int32_t i = 0; i < blocks; ++i) c.block_table.push_back(i);
  b.chunks.push_back(c);
  auto logits = runner_->ExecuteAllLogits(b);
  if (!logits.ok()) throw std::runtime_error("ExecuteAllLogits: " + logits.status().ToString());
  const int32_t vocab = runner_->VocabSize();
  std::vector<double> lps;
  for (size_t k = 0; k < candidate.size(); ++k) {
    // [total tokens, vocab] row of the position whose next token is candidate[k].
    const float* row = logits.value().data() + (context.size() - 1 + k) * static_cast<size_t>(vocab);
    const double m = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int32_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - m);
    lps.push_back(static_cast<double>(row[candidate[k]]) - m - std::log(sum));
  }
  return memo_.emplace(std::move(key), std::move(lps)).first->second;
}

double ScoreReference::Sum(const std::vector<TokenId>& context, const std::vector<TokenId>& candidate) {
  double s = 0.0;
  for (double lp : TokenLogprobs(context, candidate)) s += lp;
  return s;
}

double ScoreReference::Mean(const std::vector<TokenId>& context, const std::vector<TokenId>& candidate) {
  return Sum(context, candidate) / static_cast<double>(candidate.size());
}

void ExpectRankedMatches(const RecommendRequest& request, const std::vector<ScoredCandidate>& ranked,
                         ScoreReference& reference, const std::string& what, double* max_mean_diff) {
  const size_t n = request.candidates.size();
  const size_t want = request.top_k > 0 ? std::min<size_t>(n, static_cast<size_t>(request.top_k)) : n;
  ASSERT_EQ(ranked.size(), want) << what;
  const bool by_sum = request.rank_by == ScoreBy::kSumLogprob;
  std::vector<double> key(n);
  size_t longest = 1;
  for (size_t i = 0; i < n; ++i) {
    const auto& cand = request.candidates[i];
    longest = std::max(longest, cand.size());
    key[i] = by_sum ? reference.Sum(request.context, cand) : reference.Mean(request.context, cand);
  }
  std::vector<double> sorted = key;
  std::sort(sorted.rbegin(), sorted.rend());
  const double key_tol = 2 * kScoreTolPerToken * (by_sum ? static_cast<double>(longest) : 1.0);
  for (size_t p = 0; p < ranked.size(); ++p) {
    const ScoredCandidate& sc = ranked[p];
    ASSERT_GE(sc.index, 0) << what;
    ASSERT_LT(static_cast<size_t>(sc.index), n) << what;
    const auto& cand = request.candidates[static_cast<size_t>(sc.index)];
    const double tol = kScoreTolPerToken * static_cast<double>(cand.size());
    EXPECT_EQ(sc.num_tokens, static_cast<int32_t>(cand.size())) << what << " rank " << p;
    EXPECT_NEAR(sc.sum_logprob, reference.Sum(request.context, cand), tol) << what << " rank " << p;
    const double mean_diff = std::fabs(sc.mean_logprob - reference.Mean(request.context, cand));
    if (max_mean_diff != nullptr) *max_mean_diff = std::max(*max_mean_diff, mean_diff);
    EXPECT_LE(mean_diff, kScoreTolPerToken) << what << " rank " << p;
    EXPECT_NEAR(key[static_cast<size_t>(sc.index)], sorted[p], key_tol) << what << " rank " << p << " (order)";
  }
}

std::vector<TokenId> Tokens(int32_t n, uint64_t salt, int32_t vocab) {
  std::vector<TokenId> v(static_cast<size_t>(n));
  uint64_t x = salt * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  for (auto& t : v) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    t = static_cast<TokenId>(x % static_cast<uint64_t>(vocab));
  }
  return v;
}

std::vector<TokenId> Concat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<TokenId> Slice(const std::vector<TokenId>& v, size_t begin, size_t end) {
  end = std::min(end, v.size());
  begin = std::min(begin, end);
  return std::vector<TokenId>(v.begin() + static_cast<std::ptrdiff_t>(begin),
                              v.begin() + static_cast<std::ptrdiff_t>(end));
}

}  // namespace inferd::engine_model
