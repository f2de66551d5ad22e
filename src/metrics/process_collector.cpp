#include "metrics/process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace inferd::metrics {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type, double value) {
  prometheus::MetricFamily f{name, help, type, {}};
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(m);
  return f;
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

double MeminfoBytes(const std::string& want) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == want + ":") return kib * 1024.0;
  }
  return 0;
}

int OpenFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
  }
  return n > 0 ? n - 1 : 0;  // minus the descriptor opendir itself holds
}

}  // namespace

ProcessCollector::ProcessCollector(std::string version) : version_(std::move(version)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;

  std::ifstream in("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the parenthesised command name; comm may contain spaces, so split after the last ')'.
  size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::istringstream fields(stat.substr(close + 2));
    std::vector<std::string> f;
    std::string tok;
    while (fields >> tok) f.push_back(tok);
    // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24 (1-based in proc(5)).
    if (f.size() > 21) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
      double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      out.push_back(Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                           MetricType::Counter, cpu));
      out.push_back(Family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                           MetricType::Gauge, BootTimeSeconds() + std::stod(f[19]) / ticks));
      out.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::Gauge,
                           std::stod(f[20])));
      out.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::Gauge,
                           std::stod(f[21]) * page));
    }
  }
  out.push_back(Family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, OpenFds()));
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    out.push_back(Family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge,
                         static_cast<double>(lim.rlim_cur)));
  }
  out.push_back(Family("inferd_host_memory_total_bytes", "Physical memory of the host in bytes.", MetricType::Gauge,
                       MeminfoBytes("MemTotal")));
  out.push_back(Family("inferd_host_memory_available_bytes", "Memory available to new work on the host in bytes.",
                       MetricType::Gauge, MeminfoBytes("MemAvailable")));

  prometheus::MetricFamily build{"inferd_build_info", "Build information; the value is always 1.",
                                 MetricType::Gauge, {}};
  prometheus::ClientMetric m;
  m.label.push_back({"version", version_});
  m.gauge.value = 1;
  build.metric.push_back(m);
  out.push_back(build);
  return out;
}

}  // namespace inferd::metrics
