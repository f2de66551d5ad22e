// inferctl eval / generate: offline runs of the model engine through the ModelRunner facade.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctl/command.h"
#include "inferd/model_runner.h"
#include "inferd/tokenizer.h"

namespace inferd::ctl {
namespace {

std::vector<TokenId> ParseTokens(const std::string& text) {
  std::vector<TokenId> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0) throw std::runtime_error("--tokens: '" + item + "' is not a token id");
    ids.push_back(static_cast<TokenId>(v));
  }
  if (ids.empty()) throw std::runtime_error("--tokens: no token ids");
  return ids;
}

// NumPy .npy v1.0, little-endian float32, C order.
void WriteNpy(const std::string& path, const std::vector<float>& data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot open for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  if (!out) throw std::runtime_error(path + ": write failed");
}

std::unique_ptr<worker::ModelRunner> LoadRunner(const std::string& dir, const std::string& dtype, int threads,
                                                int64_t max_tokens) {
  worker::ModelRunnerOptions opts;
  opts.dtype = dtype;
  opts.num_threads = threads;
  opts.block_size = 16;
  opts.kv_num_blocks = (max_tokens + opts.block_size - 1) / opts.block_size + 1;
  auto runner = worker::ModelRunner::Load(dir, opts);
  if (!runner.ok()) throw std::runtime_error(runner.status().ToString());
  return std::move(runner).value();
}

std::vector<BlockId> Blocks(int64_t tokens, int32_t block_size) {
  std::vector<BlockId> t;
  for (int64_t i = 0; i * block_size < tokens; ++i) t.push_back(static_cast<BlockId>(i));
  return t;
}

struct EvalArgs {
  std::string model, tokens, dtype = "fp32", out;
  bool all_logits = false;
  int threads = 0;
};

struct GenerateArgs {
  std::string model, prompt, tokens, dtype = "fp32";
  int max_tokens = 32, top_k = 0, threads = 0;
  float temperature = 0.0f, top_p = 1.0f, min_p = 0.0f, repetition_penalty = 1.0f;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  int64_t seed = -1;
  bool ids = false;
};

void RunEval(const EvalArgs& a) {
  std::vector<TokenId> tokens = ParseTokens(a.tokens);
  auto runner = LoadRunner(a.model, a.dtype, a.threads, static_cast<int64_t>(tokens.size()));
  ForwardBatch batch;
  batch.block_size = runner->BlockSize();
  SequenceChunk c;
  c.tokens = tokens;
  c.block_table = Blocks(static_cast<int64_t>(tokens.size()), runner->BlockSize());
  batch.chunks.push_back(c);
  auto logits = runner->ExecuteAllLogits(batch);
  if (!logits.ok()) throw std::runtime_error(logits.status().ToString());
  const int64_t vocab = runner->VocabSize();
  std::vector<float>& all = logits.value();
  if (a.all_logits) {
    WriteNpy(a.out, all, static_cast<int64_t>(tokens.size()), vocab);
  } else {
    std::vector<float> last(all.end() - vocab, all.end());
    WriteNpy(a.out, last, 1, vocab);
  }
}

// The checkpoint's tokenizer, or null when the directory has none (then only ids go in and out).
std::shared_ptr<const Tokenizer> MaybeTokenizer(const std::string& dir, bool required) {
  std::ifstream probe(dir + "/tokenizer.json");
  if (!probe && !required) return nullptr;
  return Tokenizer::LoadOrThrow(dir);
}

void RunGenerate(const GenerateArgs& a) {
  if (a.tokens.empty() == a.prompt.empty()) throw std::runtime_error("generate: give exactly one of --tokens or --prompt");
  std::shared_ptr<const Tokenizer> tok = MaybeTokenizer(a.model, /*required=*/!a.prompt.empty());
  std::vector<TokenId> prompt;
  if (!a.prompt.empty()) {
    auto ids = tok->Encode(a.prompt);
    if (!ids.ok()) throw std::runtime_error("--prompt: " + ids.status().message());
    prompt = std::move(ids.value());
  } else {
    prompt = ParseTokens(a.tokens);
  }
  const int64_t total = static_cast<int64_t>(prompt.size()) + a.max_tokens;
  auto runner = LoadRunner(a.model, a.dtype, a.threads, total);
  SequenceChunk c;
  c.seq_id = 1;
  c.tokens = prompt;
  c.block_table = Blocks(total, runner->BlockSize());
  c.sample = true;
  c.sampling.temperature = a.temperature;
  c.sampling.top_k = a.top_k;
  c.sampling.top_p = a.top_p;
  c.sampling.min_p = a.min_p;
  c.sampling.repetition_penalty = a.repetition_penalty;
  c.sampling.presence_penalty = a.presence_penalty;
  c.sampling.frequency_penalty = a.frequency_penalty;
  if (a.seed >= 0) {
    c.sampling.has_seed = true;
    c.sampling.seed = static_cast<uint64_t>(a.seed);
  }
  c.history = prompt;
  std::vector<TokenId> generated;
  const auto& eos = runner->EosTokenIds();
  for (int i = 0; i < a.max_tokens; ++i) {
    ForwardBatch batch;
    batch.block_size = runner->BlockSize();
    batch.chunks.push_back(c);
    auto step = runner->Execute(batch);
    if (!step.ok()) throw std::runtime_error(step.status().ToString());
    const TokenId next = step.value().results[0].token.token;
    generated.push_back(next);
    if (std::find(eos.begin(), eos.end(), next) != eos.end()) break;
    c.start_pos += static_cast<int32_t>(c.tokens.size());
    c.tokens = {next};
    c.history.push_back(next);
    c.sample_index++;
  }
  if (a.ids || !tok) {
    std::string line;
    for (size_t i = 0; i < generated.size(); ++i) line += (i ? "," : "") + std::to_string(generated[i]);
    std::printf("%s\n", line.c_str());
  } else {
    std::printf("%s\n", tok->Decode(generated, /*skip_special_tokens=*/true).c_str());
  }
}

void AddModelCommands(CLI::App& app) {
  auto eval_args = std::make_shared<EvalArgs>();
  CLI::App* eval = app.add_subcommand("eval", "Run a prompt through a checkpoint and write its logits as .npy");
  eval->add_option("--model", eval_args->model, "checkpoint directory (config.json + safetensors)")->required();
  eval->add_option("--tokens", eval_args->tokens, "comma-separated token ids")->required();
  eval->add_option("--dtype", eval_args->dtype, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  eval->add_flag("--all-logits", eval_args->all_logits, "write logits of every position, not only the last");
  eval->add_option("--threads", eval_args->threads, "intra-op threads (0 = default)");
  eval->add_option("--out", eval_args->out, "output .npy file (float32 [positions, vocab])")->required();
  eval->callback([eval_args] { RunEval(*eval_args); });

  auto gen_args = std::make_shared<GenerateArgs>();
  CLI::App* gen = app.add_subcommand("generate", "Offline greedy or sampled generation");
  gen->add_option("--model", gen_args->model, "checkpoint directory")->required();
  gen->add_option("--prompt", gen_args->prompt, "prompt text, encoded with the checkpoint's tokenizer (BOS as its tokenizer_config says)");
  gen->add_option("--tokens", gen_args->tokens, "comma-separated prompt token ids");
  gen->add_option("--max-tokens", gen_args->max_tokens, "tokens to generate")->check(CLI::PositiveNumber);
  gen->add_option("--temperature", gen_args->temperature, "0 = greedy");
  gen->add_option("--top-k", gen_args->top_k);
  gen->add_option("--top-p", gen_args->top_p);
  gen->add_option("--min-p", gen_args->min_p);
  gen->add_option("--repetition-penalty", gen_args->repetition_penalty);
  gen->add_option("--presence-penalty", gen_args->presence_penalty);
  gen->add_option("--frequency-penalty", gen_args->frequency_penalty);
  gen->add_option("--seed", gen_args->seed, "per-request seed (reproducible sampling)");
  gen->add_option("--dtype", gen_args->dtype, "fp32 or bf16")->check(CLI::IsMember({"fp32", "bf16"}));
  gen->add_option("--threads", gen_args->threads, "intra-op threads (0 = default)");
  gen->add_flag("--ids", gen_args->ids, "print generated token ids instead of text (always so without a tokenizer)");
  gen->callback([gen_args] { RunGenerate(*gen_args); });
}

}  // namespace

INFERD_CTL_COMMAND(AddModelCommands);

}  // namespace inferd::ctl
