#include "daemon/load_progress.h"

#include <cstdio>

namespace inferd::daemon {

LoadProgress::LoadProgress(std::string what, Sink sink, Clock clock)
    : what_(std::move(what)), sink_(std::move(sink)), clock_(std::move(clock)), start_(clock_()), last_(start_) {}

void LoadProgress::Update(int64_t done, int64_t total) {
  done_ = done;
  total_ = total;
  const auto now = clock_();
  if (now - last_ < kInterval) return;
  last_ = now;
  ++lines_;
  sink_(FormatProgress(what_, done, total, std::chrono::duration<double>(now - start_).count()));
}

void LoadProgress::Finish() {
  const auto now = clock_();
  if (lines_ == 0 && total_ < kLargeBytes && now - start_ <= kInterval) return;
  ++lines_;
  sink_(FormatDone(what_, done_, std::chrono::duration<double>(now - start_).count()));
}

std::string LoadProgress::Bytes(int64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (bytes < (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", b / (1 << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", b / (1 << 30));
  }
  return buf;
}

std::string LoadProgress::FormatProgress(const std::string& what, int64_t done, int64_t total, double seconds) {
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;  // bytes/s
  const int percent = total > 0 ? static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total)) : 0;
  char tail[96];
  if (rate > 0 && done < total) {
    std::snprintf(tail, sizeof(tail), ", %.1f MiB/s, ETA %.1f s", rate / (1 << 20),
                  static_cast<double>(total - done) / rate);
  } else {
    std::snprintf(tail, sizeof(tail), ", %.1f MiB/s", rate / (1 << 20));
  }
  return what + ": " + Bytes(done) + " of " + Bytes(total) + " (" + std::to_string(percent) + "%)" + tail;
}

std::string LoadProgress::FormatDone(const std::string& what, int64_t total, double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), " read in %.1f s (%.1f MiB/s)", seconds,
                seconds > 0 ? static_cast<double>(total) / seconds / (1 << 20) : 0.0);
  return what + ": " + Bytes(total) + buf;
}

}  // namespace inferd::daemon
