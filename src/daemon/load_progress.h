// Progress lines of a checkpoint load: bytes read of the total, rate, ETA; at most one per kInterval, and a
// final one. Loads that matter only: nothing is logged for a load under kLargeBytes that ends within kInterval.
// Single-threaded: the loading thread calls Update and Finish.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace inferd::daemon {

class LoadProgress {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  using Sink = std::function<void(const std::string& line)>;
  static constexpr std::chrono::milliseconds kInterval{1000};
  static constexpr int64_t kLargeBytes = int64_t{256} << 20;

  // `what` names the load in each line ("default: /models/x"). The clock's first reading is the start.
  LoadProgress(std::string what, Sink sink, Clock clock = std::chrono::steady_clock::now);

  // `done` of `total` tensor bytes read: a line when kInterval passed since the start or the last line.
  void Update(int64_t done, int64_t total);
  // The final line ("... read in 3.2 s, 840.1 MiB/s") when the load was large or took over kInterval.
  void Finish();
  int32_t lines() const { return lines_; }

  // "<what>: 1.20 GiB of 2.70 GiB (44%), 812.0 MiB/s, ETA 1.9 s"
  static std::string FormatProgress(const std::string& what, int64_t done, int64_t total, double seconds);
  // "<what>: 2.70 GiB read in 3.3 s (837.8 MiB/s)"
  static std::string FormatDone(const std::string& what, int64_t total, double seconds);
  // "812.0 MiB" below 1 GiB, "1.20 GiB" from there.
  static std::string Bytes(int64_t bytes);

 private:
  const std::string what_;
  const Sink sink_;
  const Clock clock_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_;
  int64_t done_ = 0, total_ = 0;
  int32_t lines_ = 0;
};

}  // namespace inferd::daemon
