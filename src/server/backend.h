// Backend: the seam between the front end and whatever serves a classified request (DESIGN.md section 2).
// The front end validates the fields it needs, classifies, routes to one Backend, then reads the returned
// RequestStream exactly as it would an Engine's. Implementations: LocalBackend (a model pool's Engine, with
// the response cache) and upstream::UpstreamBackend (another inferd over gRPC). Requests cross the seam as
// the caller's proto message because each backend tokenizes with its own model (or not at all).
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "inferd/engine.h"
#include "inferd/request_types.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.pb.h"

namespace inferd::server {

struct CallOptions {
  RequestClass cls = RequestClass::kComplex;
  std::optional<TimePoint> deadline;  // min(gRPC deadline, now + latency_budget_ms); none = unbounded
  std::string request_id;             // never empty: the caller's or one the server made
};

struct Submitted {
  Status status;                             // OK, or why nothing was started
  std::chrono::milliseconds retry_after{0};  // with RESOURCE_EXHAUSTED: when to try again
  std::shared_ptr<RequestStream> stream;     // set when status is OK; may already be finished
  bool from_cache = false;                   // the outcome came from the response cache
  // When set, the caller calls it once with the outcome after the stream finished OK (fills the cache).
  std::function<void(const RequestOutcome&)> on_success;
  // Keeps what serves the request (a pool's model generation) alive; the caller holds it until the call ends.
  std::shared_ptr<const void> hold;
  // The model load that served it ("" for upstreams): a DIFF is only computed against a base of the same load.
  std::string checkpoint_id;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // "model pool 'light'" or "upstream 'central'": how errors and logs name it.
  virtual const std::string& description() const = 0;

  // The request is read during the call only. Validation errors come back as INVALID_ARGUMENT naming
  // the proto field; a refused request as RESOURCE_EXHAUSTED or UNAVAILABLE.
  virtual Submitted Generate(const v1::GenerateRequest& request, const CallOptions& options) = 0;
  virtual Submitted Recommend(const v1::RecommendRequest& request, const CallOptions& options) = 0;
  // The answer to `request` when it can be had without blocking or tokenizing (a response cache hit by the
  // request's texts, from_cache set): a finished stream. Otherwise none, and nothing was counted or started;
  // Recommend then serves it (and may still find it in the cache by its tokens).
  virtual std::optional<Submitted> RecommendCached(const v1::RecommendRequest& request, const CallOptions& options) {
    (void)request;
    (void)options;
    return std::nullopt;
  }
  // Ends the request of stream `id` with CANCELLED and frees what it holds (KV blocks here or upstream).
  // Unknown or finished ids are ignored.
  virtual void Cancel(RequestId id) = 0;
  // Feedback about a request this backend served.
  virtual Status Feedback(const v1::FeedbackRequest& request, std::optional<TimePoint> deadline) = 0;
};

}  // namespace inferd::server
