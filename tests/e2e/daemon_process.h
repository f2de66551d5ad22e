// Test support: run the real inferd binary as a child process on loopback ports and talk to it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace inferd::e2e {

// Paths that differ between clones, read at run time from the environment the ctest registration sets
// (tests/e2e/CMakeLists.txt) instead of being compiled in: an absolute path in a -D flag makes every object of
// the target miss ccache in a fresh clone. Each aborts naming the variable when it is unset (tests/test_env.h).
std::string SourceDir();     // $INFERD_SOURCE_DIR: the repository root
std::string BinDir();        // $INFERD_BIN_DIR: the build's bin/ (inferd, inferctl)
std::string InferdBinary();  // BinDir()/inferd
std::string E2eModelDir();   // $INFERD_E2E_MODEL: the model made by the e2e_make_default_model fixture

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Creates a fresh directory under $TMPDIR (or /tmp); removed by the caller when it likes.
std::string MakeTempDir(const std::string& prefix);
void WriteFile(const std::string& path, const std::string& text);
std::string ReadFile(const std::string& path);

// A running child; stdout and stderr go to `log_path`. The destructor kills it if still running.
class Process {
 public:
  Process(const std::string& binary, const std::vector<std::string>& args, const std::string& log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig) const;
  // Exit status (WEXITSTATUS, or 128+signal) if the child ends within `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool Running();
  std::string Log() const { return ReadFile(log_path_); }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// grpc.health.v1.Health/Check: "SERVING", "NOT_SERVING", ... or "UNAVAILABLE" when no answer.
std::string HealthStatus(const std::string& address, const std::string& service = "");
// Polls until HealthStatus == "SERVING" or `timeout` passes.
bool WaitServing(const std::string& address, std::chrono::milliseconds timeout);

// Minimal HTTP/1.0 GET on 127.0.0.1:port; returns the body, or nullopt on connection failure.
// `status_out` receives the HTTP status code.
std::optional<std::string> HttpGet(int port, const std::string& path, int* status_out = nullptr);

// The value of the series `series` (name with its labels exactly as exposed, e.g.
// `inferd_upstream_calls_total{upstream="central"}`) in a text-format exposition; nullopt when absent.
std::optional<double> MetricValue(const std::string& exposition, const std::string& series);

// Runs a shell command, capturing stdout+stderr; returns the exit status.
int RunCommand(const std::string& cmd, std::string* output);

}  // namespace inferd::e2e
