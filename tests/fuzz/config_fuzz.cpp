// Input: YAML text. Property: ParseConfig returns a Config or throws ConfigError, nothing else, and
// never crashes or hangs.
#include <cstdint>
#include <string>

#include "inferd/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)inferd::ParseConfig(text, "/fuzz/inferd.yaml");
  } catch (const inferd::ConfigError&) {
  }
  return 0;
}
