// Encode throughput (MB/s, one thread) of inferd's tokenizer on a corpus of documents.
// Usage: bench_tokenizer --model DIR --corpus corpus.json [--seconds S] [--ids out.json]
// corpus.json: a JSON array of strings (one document each); each is encoded separately, without BOS.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "inferd/tokenizer.h"

int main(int argc, char** argv) {
  std::string model, corpus_path, ids_path;
  double seconds = 3.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--model")) model = argv[i + 1];
    else if (!std::strcmp(argv[i], "--corpus")) corpus_path = argv[i + 1];
    else if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--ids")) ids_path = argv[i + 1];
  }
  if (model.empty() || corpus_path.empty()) {
    std::fprintf(stderr, "usage: bench_tokenizer --model DIR --corpus corpus.json [--seconds S] [--ids out.json]\n");
    return 2;
  }
  std::ifstream in(corpus_path);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::vector<std::string> docs = nlohmann::json::parse(buf.str()).get<std::vector<std::string>>();
  size_t bytes = 0;
  for (const auto& d : docs) bytes += d.size();

  auto t0 = std::chrono::steady_clock::now();
  auto tok = inferd::Tokenizer::LoadOrThrow(model);
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  inferd::EncodeOptions opts;
  opts.add_special_tokens = false;
  std::vector<std::vector<inferd::TokenId>> first;
  size_t tokens = 0;
  for (const auto& d : docs) {  // warm-up pass; also the ids for the cross-check
    auto ids = tok->Encode(d, opts);
    tokens += ids->size();
    first.push_back(std::move(*ids));
  }
  int passes = 0;
  auto start = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < seconds || passes < 1) {
    for (const auto& d : docs) {
      auto ids = tok->Encode(d, opts);
      if (!ids.ok()) return 1;
    }
    ++passes;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double mbps = bytes * passes / elapsed / 1e6;
  std::printf("{\"impl\": \"inferd\", \"docs\": %zu, \"bytes\": %zu, \"tokens\": %zu, \"passes\": %d, "
              "\"seconds\": %.3f, \"mb_per_s\": %.3f, \"load_s\": %.3f}\n",
              docs.size(), bytes, tokens, passes, elapsed, mbps, load_s);
  if (!ids_path.empty()) std::ofstream(ids_path) << nlohmann::json(first).dump();
  return 0;
}
