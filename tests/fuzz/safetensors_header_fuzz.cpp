// Input: a whole shard file. Properties: the parser returns or throws std::runtime_error naming the
// file; what it returns keeps the invariants of safetensors_header.h.
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "model/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using inferd::model::HeaderTensor;
  inferd::model::SafetensorsHeader header;
  try {
    header = inferd::model::ParseSafetensorsHeader(data, size, "shard.safetensors");
  } catch (const std::runtime_error& e) {
    FUZZ_CHECK(std::string(e.what()).find("safetensors: shard.safetensors: ") == 0, "%s", e.what());
    return 0;
  }
  FUZZ_CHECK(header.data_start >= 8 && header.data_start + header.data_size == size, "data section");
  std::vector<const HeaderTensor*> spans;
  for (const HeaderTensor& t : header.tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "negative dim in %s", t.name.c_str());
      numel *= static_cast<uint64_t>(d);
    }
    const uint64_t bytes = inferd::model::SafetensorsDtypeBytes(t.dtype);
    FUZZ_CHECK(bytes > 0, "dtype %s", t.dtype.c_str());
    FUZZ_CHECK(t.data_begin <= t.data_end && t.data_end <= header.data_size, "span of %s", t.name.c_str());
    FUZZ_CHECK(t.data_end - t.data_begin == numel * bytes, "size of %s", t.name.c_str());
    if (t.data_end > t.data_begin) spans.push_back(&t);
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size(); ++j) {
      FUZZ_CHECK(spans[i]->data_end <= spans[j]->data_begin || spans[j]->data_end <= spans[i]->data_begin,
                 "'%s' overlaps '%s'", spans[i]->name.c_str(), spans[j]->name.c_str());
    }
  }
  return 0;
}
