// ServingPool: what the server needs to serve one model pool. The daemon builds one per configured
// model (engine, tokenizer, limits) and hands them to GrpcServer; server/ never sees torch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "inferd/config.h"
#include "inferd/engine.h"
#include "inferd/request_types.h"
#include "inferd/tokenizer.h"
#include "server/pool_slot.h"

namespace inferd::server {

struct ServingPool {
  std::string name;                            // the `model` field of requests; NOT_FOUND when no pool has it
  std::vector<RequestClass> classes;           // classes routed here when a request names no model
  std::shared_ptr<const Tokenizer> tokenizer;  // must not be null
  Engine* engine = nullptr;                    // not owned; must outlive the GrpcServer
  LimitsConfig limits;
  int32_t max_model_len = 4096;  // context limit: prompt (or context + candidate) + generated
  std::string checkpoint_id;     // differs between loads (of any checkpoint): part of response cache keys
  // When set, requests are served by slot's generation of the moment (engine, tokenizer, max_model_len and
  // checkpoint_id above then describe the first load only); when null, by the fields above. A reload keeps
  // the tokenizer's vocabulary, so `tokenizer` stays valid for prechecks and token text.
  std::shared_ptr<PoolSlot> slot = nullptr;
};

}  // namespace inferd::server
