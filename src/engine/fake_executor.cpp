#include "engine/fake_executor.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

namespace inferd::engine {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

uint64_t FakeExecutor::Extend(uint64_t hash, TokenId token) {
  return Mix(hash ^ (static_cast<uint64_t>(static_cast<uint32_t>(token)) * 0x9e3779b97f4a7c15ULL + 1));
}

uint64_t FakeExecutor::HistoryHash(std::span<const TokenId> history) {
  uint64_t h = kEmptyHash;
  for (TokenId t : history) h = Extend(h, t);
  return h;
}

TokenLogprob FakeExecutor::NextToken(uint64_t history_hash, int32_t vocab_size) {
  TokenLogprob out;
  out.token = static_cast<TokenId>(history_hash % static_cast<uint64_t>(vocab_size));
  out.logprob = -static_cast<float>((history_hash >> 24) % 1000) / 100.0f;
  return out;
}

float FakeExecutor::ScoreLogprob(uint64_t history_hash, TokenId target) {
  return -static_cast<float>(Mix(history_hash ^ static_cast<uint32_t>(target)) % 10000) / 1000.0f;
}

std::vector<TokenId> FakeExecutor::ReferenceGenerate(std::span<const TokenId> prompt, int32_t n, int32_t vocab_size) {
  std::vector<TokenId> out;
  uint64_t h = HistoryHash(prompt);
  for (int32_t i = 0; i < n; ++i) {
    const TokenId t = NextToken(h, vocab_size).token;
    out.push_back(t);
    h = Extend(h, t);
  }
  return out;
}

double FakeExecutor::ReferenceScore(std::span<const TokenId> context, std::span<const TokenId> candidate) {
  uint64_t h = HistoryHash(context);
  double sum = 0.0;
  for (TokenId t : candidate) {
    sum += ScoreLogprob(h, t);
    h = Extend(h, t);
  }
  return sum;
}

Status FakeExecutor::InitializeCache(int32_t num_blocks, int32_t block_size) {
  if (num_blocks <= 0 || block_size <= 0) return InvalidArgument("fake executor: empty cache");
  num_blocks_ = num_blocks;
  block_size_ = block_size;
  slots_.assign(static_cast<size_t>(num_blocks) * block_size, -1);
  return Status::Ok();
}

StatusOr<StepResult> FakeExecutor::Execute(const ForwardBatch& batch) {
  const int64_t step = steps_++;
  if (options_.step_delay.count() > 0) std::this_thread::sleep_for(options_.step_delay);
  if (options_.token_delay.count() > 0) {
    int64_t tokens = 0;
    for (const auto& c : batch.chunks) tokens += static_cast<int64_t>(c.tokens.size());
    const auto until = std::chrono::steady_clock::now() + options_.token_delay * tokens;
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  if (step == options_.fail_at_step) return Internal("fake executor: injected failure");
  if (step == options_.throw_at_step) throw std::runtime_error("fake executor: injected exception");
  if (batch.block_size != block_size_) return Internal("fake executor: block size mismatch");
  released_.insert(released_.end(), batch.released.begin(), batch.released.end());
  StepResult result;
  result.results.reserve(batch.chunks.size());
  for (const SequenceChunk& chunk : batch.chunks) {
    const int32_t n = static_cast<int32_t>(chunk.tokens.size());
    const int32_t end = chunk.start_pos + n;
    if (n == 0) return Internal("fake executor: empty chunk");
    if (static_cast<int64_t>(chunk.block_table.size()) * block_size_ < end) {
      return Internal("fake executor: block table too short for seq " + std::to_string(chunk.seq_id));
    }
    for (BlockId b : chunk.block_table) {
      if (b < 0 || b >= num_blocks_) return Internal("fake executor: block id out of range");
    }
    auto slot = [&](int32_t pos) {
      return static_cast<size_t>(chunk.block_table[pos / block_size_]) * block_size_ + pos % block_size_;
    };
    for (int32_t i = 0; i < n; ++i) slots_[slot(chunk.start_pos + i)] = chunk.tokens[i];
    tokens_ += n;
    // Read the whole history back from the cache: positions [0, end).
    SequenceResult res;
    res.seq_id = chunk.seq_id;
    size_t next_score = 0;
    uint64_t h = kEmptyHash;
    for (int32_t pos = 0; pos < end; ++pos) {
      const TokenId t = slots_[slot(pos)];
      if (t < 0) return Internal("fake executor: read an unwritten KV slot at position " + std::to_string(pos));
      h = Extend(h, t);
      const int32_t local = pos - chunk.start_pos;
      while (next_score < chunk.score_index.size() && chunk.score_index[next_score] == local) {
        res.score_logprobs.push_back(ScoreLogprob(h, chunk.score_targets[next_score]));
        ++next_score;
      }
    }
    if (next_score != chunk.score_index.size()) return Internal("fake executor: bad score_index");
    if (chunk.sample) {
      res.sampled = true;
      res.token = NextToken(h, options_.vocab_size);
      for (int32_t k = 0; k < chunk.sampling.top_logprobs; ++k) {
        TokenLogprob alt;
        alt.token = static_cast<TokenId>((res.token.token + k) % options_.vocab_size);
        alt.logprob = res.token.logprob - static_cast<float>(k);
        res.top.push_back(alt);
      }
    }
    result.results.push_back(std::move(res));
  }
  return result;
}

std::string FakeTextStream::Render(std::span<const TokenId> tokens) {
  std::string s;
  for (TokenId t : tokens) s.push_back(static_cast<char>('a' + (t % 26 + 26) % 26));
  return s;
}

TextStream::Delta FakeTextStream::Push(TokenId token) {
  Delta d;
  held_ += Render(std::span<const TokenId>(&token, 1));
  for (const std::string& s : stop_) {
    if (s.empty()) continue;
    const size_t at = held_.find(s);
    if (at != std::string::npos) {
      d.text = held_.substr(0, at);
      d.stopped = true;
      held_.clear();
      return d;
    }
  }
  // Hold back the longest suffix that could still start a stop string.
  size_t keep = 0;
  for (const std::string& s : stop_) {
    for (size_t k = std::min(s.size() - (s.empty() ? 0 : 1), held_.size()); k > keep; --k) {
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
    }
  }
  d.text = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return d;
}

std::string FakeTextStream::Flush() {
  std::string out;
  out.swap(held_);
  return out;
}

TextStreamFactory FakeTextStreamFactory() {
  return [](const std::vector<TokenId>&, const std::vector<std::string>& stop) -> std::unique_ptr<TextStream> {
    return std::make_unique<FakeTextStream>(stop);
  };
}

}  // namespace inferd::engine
