// Input: a selector byte, then the wire bytes of a GenerateRequest (even selector) or RecommendRequest
// (odd). Properties: bytes protobuf accepts decode to a native request or to INVALID_ARGUMENT naming a
// field ("<field>: ..."), never anything else; a decoded request respects the pool's limits.
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "fuzz_tokenizer.h"
#include "server/request_decode.h"

namespace {

const inferd::server::ServingPool& Pool() {
  static const inferd::server::ServingPool pool = [] {
    inferd::server::ServingPool p;
    p.name = "default";
    p.tokenizer = FuzzTokenizer();
    p.limits.max_prompt_tokens = 512;
    p.limits.max_tokens = 128;
    p.limits.default_max_tokens = 16;
    p.limits.max_candidates = 32;
    p.max_model_len = 1024;
    return p;
  }();
  return pool;
}

void CheckStatus(const inferd::Status& status) {
  FUZZ_CHECK(status.code() == inferd::StatusCode::kInvalidArgument, "code %d: %s", static_cast<int>(status.code()),
             status.message().c_str());
  FUZZ_CHECK(status.message().find(": ") != std::string::npos, "no field named: %s", status.message().c_str());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  (void)Pool();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const inferd::server::ServingPool& pool = Pool();
  const uint8_t selector = data[0];
  const int n = static_cast<int>(size - 1);
  if ((selector & 1) == 0) {
    inferd::v1::GenerateRequest req;
    if (!req.ParseFromArray(data + 1, n)) return 0;
    const auto rpc = (selector & 2) ? inferd::classify::Rpc::kGenerateStream : inferd::classify::Rpc::kGenerate;
    auto features = inferd::server::GenerateFeatures(req, rpc, pool.tokenizer.get());
    if (!features.ok()) CheckStatus(features.status());
    auto decoded = inferd::server::DecodeGenerate(req, pool);
    if (!decoded.ok()) {
      CheckStatus(decoded.status());
      return 0;
    }
    FUZZ_CHECK(!decoded->prompt.empty(), "empty prompt accepted");
    FUZZ_CHECK(static_cast<int64_t>(decoded->prompt.size()) <= pool.limits.max_prompt_tokens, "prompt %zu tokens",
               decoded->prompt.size());
    FUZZ_CHECK(static_cast<int32_t>(decoded->prompt.size()) < pool.max_model_len, "prompt over the context");
    FUZZ_CHECK(decoded->max_tokens > 0 && decoded->max_tokens <= pool.limits.max_tokens, "max_tokens %d",
               decoded->max_tokens);
    for (inferd::TokenId id : decoded->prompt) {
      FUZZ_CHECK(id >= 0 && id < pool.tokenizer->vocab_size(), "token id %d", id);
    }
    return 0;
  }
  inferd::v1::RecommendRequest req;
  if (!req.ParseFromArray(data + 1, n)) return 0;
  auto features = inferd::server::RecommendFeatures(req, pool.tokenizer.get());
  if (!features.ok()) CheckStatus(features.status());
  auto options = inferd::server::DecodeRankingOptions(req);
  if (!options.ok()) CheckStatus(options.status());
  auto decoded = inferd::server::DecodeRecommend(req, pool);
  if (!decoded.ok()) {
    CheckStatus(decoded.status());
    return 0;
  }
  FUZZ_CHECK(static_cast<int>(decoded->candidates.size()) <= pool.limits.max_candidates, "%zu candidates",
             decoded->candidates.size());
  return 0;
}
