// The tokenizer the fuzz targets share: $INFERD_FUZZ_TOKENIZER_DIR (ctest and tools/fuzz_run.sh set it to the
// DeepSeek-V3 tokenizer of ../shared/testdata; not compiled in, so the objects are the same in every clone).
// Loaded once per process.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "inferd/tokenizer.h"

inline const std::shared_ptr<const inferd::Tokenizer>& FuzzTokenizer() {
  static const std::shared_ptr<const inferd::Tokenizer> tok = [] {
    const char* env = std::getenv("INFERD_FUZZ_TOKENIZER_DIR");
    if (env == nullptr || *env == '\0') {
      std::fprintf(stderr, "set INFERD_FUZZ_TOKENIZER_DIR to a tokenizer directory (ctest and tools/fuzz_run.sh do)\n");
      std::abort();
    }
    const std::string dir = env;
    auto loaded = inferd::Tokenizer::Load(dir);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the tokenizer from %s: %s\n", dir.c_str(), loaded.status().message().c_str());
      std::abort();
    }
    return *loaded;
  }();
  return tok;
}
