// CallContext: what the Inference service core needs from the transport a call arrived on (gRPC here,
// HTTP in http/), so that every front end shares admission, validation, classification and routing.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>

#include "inferd/engine.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.pb.h"
#include "server/serving_pool.h"

namespace inferd::server {

// Called from the thread running the call only.
class CallContext {
 public:
  virtual ~CallContext() = default;
  // True once the client has gone away (disconnected or cancelled); polled while the request runs.
  virtual bool IsCancelled() = 0;
  // The transport's deadline for the call, if it carries one (gRPC deadline); none = unbounded.
  virtual std::optional<TimePoint> deadline() const = 0;
  // The `inferd-variant` request metadata or header as sent ("" when absent).
  virtual std::string_view variant() const = 0;
  // Once the request is routed, before anything is written: the model name serving it (a local pool's
  // name, or for an upstream the requested model, else the first it serves) and the local pool, if any.
  virtual void Routed(const std::string& model, const ServingPool* pool) {
    (void)model;
    (void)pool;
  }
};

// How a call ended.
struct CallResult {
  Status status;
  std::chrono::milliseconds retry_after{0};  // >= 1 ms with RESOURCE_EXHAUSTED: when to try again
  const ServingPool* pool = nullptr;         // the local pool that served it; null for an upstream or unrouted
};

// Receives each GenerateStream message; returns false when the client is gone (the request is cancelled).
using DeltaWriter = std::function<bool(const v1::GenerateDelta&)>;

}  // namespace inferd::server
