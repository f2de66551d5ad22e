// LocalBackend: a model pool's Engine behind the Backend seam. Decodes (tokenizes) with the pool's
// tokenizer and limits, submits to the engine, and for realtime Recommends consults the response cache
// (when given): a hit is a finished stream with from_cache; a miss fills the cache once the ranking is OK.
#pragma once

#include <memory>
#include <string>

#include "cache/response_cache.h"
#include "server/backend.h"
#include "server/serving_pool.h"

namespace inferd::server {

class LocalBackend final : public Backend {
 public:
  // `pool.engine` must outlive this object. `cache` may be null (no caching).
  LocalBackend(ServingPool pool, std::shared_ptr<cache::ResponseCache> cache);

  const std::string& description() const override { return description_; }
  Submitted Generate(const v1::GenerateRequest& request, const CallOptions& options) override;
  Submitted Recommend(const v1::RecommendRequest& request, const CallOptions& options) override;
  void Cancel(RequestId id) override;
  // Business feedback of local pools is recorded by the front end; this only answers OK.
  Status Feedback(const v1::FeedbackRequest& request, std::optional<TimePoint> deadline) override;

  const ServingPool& pool() const { return pool_; }

 private:
  const ServingPool pool_;
  const std::shared_ptr<cache::ResponseCache> cache_;
  const std::string description_;
};

}  // namespace inferd::server
