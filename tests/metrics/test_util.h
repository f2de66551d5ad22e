// Renders collectables to the text format and runs promtool on it.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace inferd::metrics::testing {

inline std::string Render(const prometheus::Collectable& c) {
  return prometheus::TextSerializer().Serialize(c.Collect());
}

// promtool check metrics: exit status and its output.
inline int PromtoolCheck(const std::string& text, std::string* out) {
  char path[] = "/tmp/inferd-metrics-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  close(fd);
  std::ofstream(path) << text;
  FILE* p = popen((std::string(PROMTOOL) + " check metrics < " + path + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  out->clear();
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int st = pclose(p);
  unlink(path);
  return WEXITSTATUS(st);
}

// The line of `text` that starts with `prefix` followed by a space; "" when absent.
inline std::string Line(const std::string& text, const std::string& prefix) {
  size_t pos = 0;
  while ((pos = text.find(prefix + " ", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return text.substr(pos, text.find('\n', pos) - pos);
    ++pos;
  }
  return "";
}

}  // namespace inferd::metrics::testing
