// The torch-free safetensors header parser on hand-built files: accepted layouts, and failures that name
// the file and the tensor. Runs in the sanitizer builds too (no torch).
#include "model/safetensors_header.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace inferd::model {
namespace {

// u64 little-endian header length, the header JSON, then `data_bytes` zero bytes.
std::vector<uint8_t> File(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  return out;
}

std::string ErrorOf(const std::vector<uint8_t>& file) {
  try {
    ParseSafetensorsHeader(file.data(), file.size(), "dir/shard-1.safetensors");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(SafetensorsHeaderTest, ParsesTensorsSortedByName) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[2,3],"data_offsets":[4,16]},)"
      R"("a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";
  const auto file = File(header, 20);
  const SafetensorsHeader h = ParseSafetensorsHeader(file.data(), file.size(), "f");
  EXPECT_EQ(h.data_start, 8 + header.size());
  EXPECT_EQ(h.data_size, 20u);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_TRUE(h.tensors[0].shape.empty());
  EXPECT_EQ(h.tensors[1].name, "b");
  EXPECT_EQ(h.tensors[1].dtype, "BF16");
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(h.tensors[1].data_begin, 4u);
  EXPECT_EQ(h.tensors[1].data_end, 16u);
}

TEST(SafetensorsHeaderTest, TruncatedDataNamesFileAndTensor) {
  const auto file = File(R"({"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})", 5);
  const std::string err = ErrorOf(file);
  EXPECT_NE(err.find("dir/shard-1.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("tensor 'w'"), std::string::npos) << err;
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
}

TEST(SafetensorsHeaderTest, CorruptHeaderNamesFile) {
  auto file = File(R"({"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}})", 16);
  file[8 + 3] = '\x01';  // inside the tensor name's quotes: a control character breaks the JSON
  const std::string err = ErrorOf(file);
  EXPECT_NE(err.find("dir/shard-1.safetensors: bad header JSON"), std::string::npos) << err;
  EXPECT_NE(ErrorOf({1, 2, 3}).find("shorter than the 8-byte header length"), std::string::npos);
  EXPECT_NE(ErrorOf(File(R"({"w":{"dtype":"F17","shape":[1],"data_offsets":[0,2]}})", 2)).find("unknown dtype"),
            std::string::npos);
}

// Before the parser moved here, overlaps were checked between neighbours in offset order only, and a pair
// with an empty tensor was skipped: an empty tensor sorted between two overlapping ones hid the overlap.
TEST(SafetensorsHeaderTest, OverlapHiddenBehindAnEmptyTensorIsFound) {
  const auto file = File(R"({"big":{"dtype":"U8","shape":[10],"data_offsets":[0,10]},)"
                         R"("empty":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},)"
                         R"("inner":{"dtype":"U8","shape":[3],"data_offsets":[5,8]}})",
                         10);
  const std::string err = ErrorOf(file);
  EXPECT_NE(err.find("'big' [0, 10) and 'inner' [5, 8) overlap"), std::string::npos) << err;
}

TEST(SafetensorsHeaderTest, EmptyTensorsAndGapsAreAllowed) {
  const auto file = File(
      R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"I64","shape":[0,4],"data_offsets":[1,1]},)"
      R"("b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
      8);
  EXPECT_EQ(ErrorOf(file), "");
}

}  // namespace
}  // namespace inferd::model
