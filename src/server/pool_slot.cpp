#include "server/pool_slot.h"

#include <algorithm>
#include <stdexcept>

namespace inferd::server {

PoolSlot::PoolSlot(std::shared_ptr<const PoolGeneration> first) : current_(std::move(first)) {
  if (current_ == nullptr || current_->engine == nullptr || current_->tokenizer == nullptr) {
    throw std::invalid_argument("PoolSlot: the first generation needs an engine and a tokenizer");
  }
}

std::shared_ptr<const PoolGeneration> PoolSlot::Acquire() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_ ? current_ : nullptr;
}

std::shared_ptr<const PoolGeneration> PoolSlot::Swap(std::shared_ptr<const PoolGeneration> next) {
  if (next == nullptr || next->engine == nullptr || next->tokenizer == nullptr) {
    throw std::invalid_argument("PoolSlot::Swap: the generation needs an engine and a tokenizer");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(retired_, [](const auto& w) { return w.expired(); });
  retired_.push_back(current_);
  std::shared_ptr<const PoolGeneration> old = std::move(current_);
  current_ = std::move(next);
  accepting_ = true;
  return old;
}

void PoolSlot::StopAccepting() {
  std::lock_guard<std::mutex> lock(mu_);
  accepting_ = false;
}

bool PoolSlot::accepting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepting_;
}

std::shared_ptr<const PoolGeneration> PoolSlot::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void PoolSlot::Cancel(RequestId id) const {
  std::vector<std::shared_ptr<const PoolGeneration>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets.push_back(current_);
    for (const auto& w : retired_) {
      if (auto g = w.lock()) targets.push_back(std::move(g));
    }
  }
  for (const auto& g : targets) g->engine->Cancel(id);
}

int32_t PoolSlot::retired_alive() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(retired_, [](const auto& w) { return w.expired(); });
  return static_cast<int32_t>(retired_.size());
}

}  // namespace inferd::server
