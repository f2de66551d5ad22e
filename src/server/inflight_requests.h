// InflightRequests: request id -> where it runs, for the calls in flight, so an operator can abort a request
// by the id its caller knows (Control.AbortRequest). Ids need not be unique: caller-chosen ids may repeat,
// and an abort ends every in-flight request with that id. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "server/backend.h"

namespace inferd::server {

class InflightRequests {
 public:
  // Remembers request `request_id` running as stream `stream_id` of `backend` (which must outlive the entry);
  // returns the token Remove takes.
  uint64_t Add(const std::string& request_id, Backend* backend, RequestId stream_id);
  void Remove(uint64_t token);
  // Cancels every in-flight request with this id through its backend; returns how many there were.
  int32_t Abort(const std::string& request_id);
  size_t size() const;

 private:
  struct Entry {
    std::string request_id;
    Backend* backend = nullptr;
    RequestId stream_id = 0;
  };
  mutable std::mutex mu_;
  uint64_t next_token_ = 1;                                    // guarded by mu_
  std::unordered_map<uint64_t, Entry> by_token_;               // guarded by mu_
  std::unordered_multimap<std::string, uint64_t> by_request_;  // guarded by mu_; one per by_token_ entry
};

}  // namespace inferd::server
