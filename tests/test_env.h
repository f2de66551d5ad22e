// Paths a test gets from its environment (set by ctest, tests/<module>/CMakeLists.txt) instead of compiled-in
// macros: an absolute path in a -D flag differs between clones, and ccache then misses every object of the
// target in a fresh clone (CCACHE_BASEDIR rewrites include paths, not macro values).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace inferd_test {

// The value of environment variable `name`; aborts naming it when unset or empty (the test was started
// outside ctest).
inline std::string TestEnvPath(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    std::fprintf(stderr, "environment variable %s is not set: run this test through ctest\n", name);
    std::abort();
  }
  return value;
}

}  // namespace inferd_test
