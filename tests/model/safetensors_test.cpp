// Tests of SafetensorsCheckpoint against fixtures written by tools/make_safetensors_fixtures.py.
// Inputs: $INFERD_PYTHON runs $INFERD_SOURCE_DIR/tools/make_safetensors_fixtures.py (both set by the ctest
// registration, tests/model/safetensors.cmake; not compiled in, so the object is the same in every clone)
// into $INFERD_TEST_TMP (default: the system temp
// dir, $TMPDIR or /tmp); the fixtures are cached there under a name derived from the script's contents, so
// the one-process-per-case runs that ctest starts generate them once.
#include "model/safetensors.h"

#include <ATen/Context.h>
#include <ATen/ops/allclose.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/equal.h>
#include <ATen/ops/tensor.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kernel_locks.h"
#include "test_env.h"

namespace inferd::model {
namespace {

// No std::filesystem here: libtorch.so exports its own copies of those functions, and its remove_all crashes.
std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// Generates the fixtures once per script version; safe against concurrent test processes (each writes a
// private directory and renames it into place; the losers of the race delete theirs).
const std::string& FixtureDir() {
  static const std::string dir = [] {
    const std::string script = inferd_test::TestEnvPath("INFERD_SOURCE_DIR") + "/tools/make_safetensors_fixtures.py";
    const std::string source = ReadFile(script);
    if (source.empty()) throw std::runtime_error("cannot read " + script);
    const std::string root = EnvOr("INFERD_TEST_TMP", EnvOr("TMPDIR", "/tmp"));
    std::ostringstream name;
    name << "safetensors_fixtures_" << std::hex << std::hash<std::string>{}(source);
    const std::string final_dir = root + "/" + name.str();
    if (::access((final_dir + "/DONE").c_str(), F_OK) == 0) return final_dir;
    const std::string tmp = final_dir + ".tmp." + std::to_string(::getpid());
    const std::string cmd = "mkdir -p " + Quote(root) + " && " + Quote(inferd_test::TestEnvPath("INFERD_PYTHON")) +
                            " " + Quote(script) + " --out " + Quote(tmp);
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("fixture generation failed: " + cmd);
    std::ofstream(tmp + "/DONE") << "ok\n";
    if (::rename(tmp.c_str(), final_dir.c_str()) != 0) {
      // Another process won the race; its copy is identical.
      if (std::system(("rm -rf " + Quote(tmp)).c_str()) != 0) throw std::runtime_error("cannot remove " + tmp);
    }
    return final_dir;
  }();
  return dir;
}

std::unique_ptr<SafetensorsCheckpoint> OpenFixture(const std::string& name) {
  return SafetensorsCheckpoint::Open(FixtureDir() + "/" + name);
}

const c10::Device kCpu(c10::kCPU);

at::Tensor Floats(std::vector<float> values, std::vector<int64_t> shape) {
  return at::tensor(values, at::TensorOptions().dtype(at::kFloat)).reshape(shape);
}

TEST(SafetensorsTest, NamesAndInfo) {
  auto ckpt = OpenFixture("single");
  const std::vector<std::string> want = {"a", "b", "empty", "h", "ids", "raw8", "s", "u", "w.weight",
                                         "w.weight_scale_inv"};
  EXPECT_EQ(ckpt->Names(), want);
  EXPECT_TRUE(ckpt->Has("a"));
  EXPECT_FALSE(ckpt->Has("__metadata__"));
  const TensorInfo& a = ckpt->Info("a");
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.dtype, "F32");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(a.file, "model.safetensors");
  EXPECT_EQ(a.data_end - a.data_begin, 48u);
  EXPECT_EQ(ckpt->Info("w.weight").dtype, "F8_E4M3");
  EXPECT_EQ(ckpt->Info("s").shape, std::vector<int64_t>{});
}

TEST(SafetensorsTest, LoadsF32Exactly) {
  auto ckpt = OpenFixture("single");
  at::Tensor a = ckpt->Load("a", at::kFloat, kCpu, {3, 4});
  EXPECT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(a, at::arange(12, at::kFloat).reshape({3, 4}).mul(0.5)));
}

TEST(SafetensorsTest, ConvertsDtypes) {
  auto ckpt = OpenFixture("single");
  const at::Tensor b_want = Floats({-1.5f, -0.5f, 0.f, 0.25f, 2.f, 3.5f}, {2, 3});
  at::Tensor b32 = ckpt->Load("b", at::kFloat, kCpu);
  EXPECT_TRUE(at::equal(b32, b_want));
  at::Tensor b16 = ckpt->Load("b", at::kHalf, kCpu);
  EXPECT_EQ(b16.scalar_type(), at::kHalf);
  EXPECT_TRUE(at::equal(b16.to(at::kFloat), b_want));
  at::Tensor bb = ckpt->Load("b", at::kBFloat16, kCpu);
  EXPECT_EQ(bb.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(bb.to(at::kFloat), b_want));

  at::Tensor h = ckpt->Load("h", at::kFloat, kCpu);
  EXPECT_TRUE(at::equal(h, Floats({-0.5f, -0.25f, 0.f, 0.25f, 0.5f}, {5})));
  at::Tensor a_bf16 = ckpt->Load("a", at::kBFloat16, kCpu);
  EXPECT_EQ(a_bf16.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(a_bf16.to(at::kFloat), at::arange(12, at::kFloat).reshape({3, 4}).mul(0.5)));

  at::Tensor ids = ckpt->Load("ids", at::kLong, kCpu);
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids[0].item<int64_t>(), 7);
  EXPECT_EQ(ids[1].item<int64_t>(), -1);
  EXPECT_EQ(ids[3].item<int64_t>(), int64_t{1} << 40);

  at::Tensor s = ckpt->Load("s", at::kFloat, kCpu);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 3.25f);

  at::Tensor empty = ckpt->Load("empty", at::kBFloat16, kCpu, {0, 4});
  EXPECT_EQ(empty.numel(), 0);
  EXPECT_EQ(empty.sizes(), at::IntArrayRef({0, 4}));

  at::Tensor u = ckpt->Load("u", at::kFloat, kCpu);
  EXPECT_TRUE(at::equal(u, Floats({1.f, 2.f, 255.f}, {3})));
}

TEST(SafetensorsTest, DequantizesFp8Blockwise) {
  auto ckpt = OpenFixture("single");
  auto expected = OpenFixture("expected");
  const at::Tensor want = expected->Load("w.weight", at::kFloat, kCpu);
  at::Tensor w = ckpt->Load("w.weight", at::kFloat, kCpu, {200, 300});
  EXPECT_EQ(w.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(w, want));
  at::Tensor wb = ckpt->Load("w.weight", at::kBFloat16, kCpu);
  EXPECT_TRUE(at::equal(wb, want.to(at::kBFloat16)));

  // Asking for fp8 returns the stored, unscaled values.
  at::Tensor raw = ckpt->Load("w.weight", at::kFloat8_e4m3fn, kCpu);
  EXPECT_EQ(raw.scalar_type(), at::kFloat8_e4m3fn);
  at::Tensor scale = ckpt->Load("w.weight_scale_inv", at::kFloat, kCpu, {2, 3});
  EXPECT_TRUE(at::allclose(raw.to(at::kFloat).slice(0, 0, 128).slice(1, 0, 128).mul(scale[0][0].item<float>()),
                           want.slice(0, 0, 128).slice(1, 0, 128)));
}

TEST(SafetensorsTest, Fp8WithoutScaleConvertsPlainly) {
  auto ckpt = OpenFixture("single");
  EXPECT_TRUE(at::equal(ckpt->Load("raw8", at::kFloat, kCpu), Floats({0.5f, -1.f, 2.f, 448.f}, {2, 2})));
}

TEST(SafetensorsTest, LoadedTensorsOwnTheirMemory) {
  auto ckpt = OpenFixture("single");
  at::Tensor a = ckpt->Load("a", at::kFloat, kCpu);
  a.fill_(-7.f);
  EXPECT_TRUE(at::equal(ckpt->Load("a", at::kFloat, kCpu), at::arange(12, at::kFloat).reshape({3, 4}).mul(0.5)));
  at::Tensor b = ckpt->Load("b", at::kBFloat16, kCpu);
  ckpt.reset();  // unmaps the file
  EXPECT_EQ(b[1][2].item<float>(), 3.5f);
}

TEST(SafetensorsTest, ShapeMismatchNamesTensorAndShapes) {
  auto ckpt = OpenFixture("single");
  try {
    ckpt->Load("a", at::kFloat, kCpu, {4, 3});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a: expected shape [4, 3], found [3, 4]"), std::string::npos)
        << e.what();
  }
}

TEST(SafetensorsTest, MissingTensorThrows) {
  auto ckpt = OpenFixture("single");
  EXPECT_FALSE(ckpt->Has("nope"));
  EXPECT_THROW(ckpt->Info("nope"), std::runtime_error);
  try {
    ckpt->Load("nope", at::kFloat, kCpu);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no tensor 'nope'"), std::string::npos) << e.what();
  }
}

TEST(SafetensorsTest, ShardedCheckpoint) {
  auto ckpt = OpenFixture("sharded");
  const std::vector<std::string> want = {"layer.0.weight", "layer.1.weight", "q.weight", "q.weight_scale_inv"};
  EXPECT_EQ(ckpt->Names(), want);
  EXPECT_EQ(ckpt->Info("layer.0.weight").file, "model-00001-of-00002.safetensors");
  EXPECT_EQ(ckpt->Info("layer.1.weight").file, "model-00002-of-00002.safetensors");
  EXPECT_TRUE(at::equal(ckpt->Load("layer.0.weight", at::kFloat, kCpu), at::arange(16, at::kFloat).reshape({4, 4})));
  EXPECT_TRUE(at::equal(ckpt->Load("layer.1.weight", at::kFloat, kCpu), at::arange(16, at::kFloat).reshape({4, 4}).neg()));
  // The fp8 weight and its scale live in different shards; partial 128x128 blocks on both axes.
  auto expected = OpenFixture("expected");
  EXPECT_TRUE(at::equal(ckpt->Load("q.weight", at::kFloat, kCpu, {130, 129}),
                        expected->Load("q.weight", at::kFloat, kCpu)));
}

TEST(SafetensorsTest, UnalignedData) {
  auto ckpt = OpenFixture("unaligned");
  EXPECT_EQ(ckpt->Info("x").data_begin, 1u);
  EXPECT_TRUE(at::equal(ckpt->Load("x", at::kFloat, kCpu), Floats({1.f, 2.f, 3.f}, {3})));
}

TEST(SafetensorsTest, LoadsToCuda) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  auto ckpt = OpenFixture("single");
  const c10::Device cuda(c10::kCUDA, 0);
  at::Tensor b = ckpt->Load("b", at::kFloat, cuda);
  EXPECT_TRUE(b.is_cuda());
  EXPECT_TRUE(at::equal(b.cpu(), Floats({-1.5f, -0.5f, 0.f, 0.25f, 2.f, 3.5f}, {2, 3})));
  at::Tensor a = ckpt->Load("a", at::kBFloat16, cuda);
  EXPECT_EQ(a.scalar_type(), at::kBFloat16);
  auto expected = OpenFixture("expected");
  at::Tensor w = ckpt->Load("w.weight", at::kFloat, cuda);
  EXPECT_TRUE(w.is_cuda());
  EXPECT_TRUE(at::equal(w.cpu(), expected->Load("w.weight", at::kFloat, kCpu)));
}

struct BadCase {
  std::string dir;
  std::vector<std::string> needles;  // every one must appear in the message
};

class SafetensorsBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(SafetensorsBadTest, OpenFailsWithClearMessage) {
  const BadCase& c = GetParam();
  try {
    OpenFixture(c.dir);
    FAIL() << c.dir << ": no exception";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    for (const auto& needle : c.needles) {
      EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Corrupt, SafetensorsBadTest,
    ::testing::Values(
        BadCase{"bad_truncated", {"bad_truncated/model.safetensors", "tensor '", "past the end", "truncated"}},
        BadCase{"bad_tiny", {"bad_tiny/model.safetensors", "truncated"}},
        BadCase{"bad_header_len", {"bad_header_len/model.safetensors", "header length 1000000", "end of the file"}},
        BadCase{"bad_json", {"bad_json/model.safetensors", "bad header JSON"}},
        BadCase{"bad_not_object", {"bad_not_object/model.safetensors", "not an object"}},
        BadCase{"bad_offsets", {"bad_offsets/model.safetensors", "tensor 'x'", "data_offsets [0, 64]", "past the end"}},
        BadCase{"bad_size", {"tensor 'x'", "holds 12 bytes", "needs 16"}},
        BadCase{"bad_overlap", {"bad_overlap/model.safetensors", "'x'", "'y'", "overlap"}},
        BadCase{"bad_dtype", {"tensor 'x'", "unknown dtype \"F7\""}},
        BadCase{"bad_missing_shard", {"model.safetensors.index.json", "model-00002-of-00002.safetensors", "missing"}},
        BadCase{"bad_index_json", {"bad_index_json/model.safetensors.index.json", "bad JSON"}},
        BadCase{"bad_index_escape", {"../single/model.safetensors", "not a relative path"}},
        BadCase{"bad_index_wrong_shard", {"weight_map puts tensor 'x' in model-00002-of-00002.safetensors", "it is in model-00001-of-00002.safetensors"}},
        BadCase{"bad_duplicate", {"tensor 'x'", "also in"}},
        BadCase{"bad_empty", {"no model.safetensors or model.safetensors.index.json"}},
        BadCase{"does_not_exist", {"does_not_exist", "not a directory"}}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.dir; });

// ---- Views into the mapping (MapViewOptions): a checkpoint written here byte by byte ----

// Writes dir/model.safetensors: f32 "ffn.gate" [256, 1024] = arange, "ffn.up" [256, 1024] = -arange (back to
// back, 16-byte aligned, 1 MiB each), "norm" bf16 [8] = 1..8, and f32 "odd" [4] starting 2 bytes past a
// 4-byte boundary (legal in the format, not aligned to its element). The data section starts at byte 64 of the file
// (the header padded with spaces).
std::string WriteMapCheckpoint(const std::string& name) {
  const std::string dir = EnvOr("INFERD_TEST_TMP", EnvOr("TMPDIR", "/tmp")) + "/" + name + "." +
                          std::to_string(::getpid());
  if (std::system(("mkdir -p " + Quote(dir)).c_str()) != 0) throw std::runtime_error("mkdir " + dir);
  const uint64_t mat = 256 * 1024 * 4;
  const uint64_t gate = 0, up = mat, norm = 2 * mat, odd = norm + 16 + 2;
  std::string header = "{\"ffn.gate\":{\"dtype\":\"F32\",\"shape\":[256,1024],\"data_offsets\":[" +
                       std::to_string(gate) + "," + std::to_string(up) + "]},\"ffn.up\":{\"dtype\":\"F32\",\"shape\":" +
                       "[256,1024],\"data_offsets\":[" + std::to_string(up) + "," + std::to_string(norm) +
                       "]},\"norm\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[" + std::to_string(norm) + "," +
                       std::to_string(norm + 16) + "]},\"odd\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" +
                       std::to_string(odd) + "," + std::to_string(odd + 16) + "]}}";
  const uint64_t padded = (8 + header.size() + 63) / 64 * 64 - 8;
  header.resize(padded, ' ');
  std::string data(odd + 16, '\0');
  auto put_f32 = [&](uint64_t at, int64_t i, float v) { std::memcpy(&data[at + 4 * i], &v, 4); };
  for (int64_t i = 0; i < 256 * 1024; ++i) {
    put_f32(gate, i, static_cast<float>(i));
    put_f32(up, i, -static_cast<float>(i));
  }
  for (int i = 0; i < 8; ++i) {
    const float v = static_cast<float>(i + 1);  // exact in bf16: the top half of the float's bits
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    const uint16_t b16 = static_cast<uint16_t>(bits >> 16);
    std::memcpy(&data[norm + 2 * i], &b16, 2);
  }
  for (int i = 0; i < 4; ++i) put_f32(odd, i, 10.f + static_cast<float>(i));
  std::ofstream out(dir + "/model.safetensors", std::ios::binary);
  const uint64_t len = header.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out << header << data;
  return dir;
}

using inferd_test::kKernelSeesLocks;

// VmLck of this process in KiB.
int64_t LockedKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmLck:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

bool Mapped(const std::string& file) { return ReadFile("/proc/self/maps").find(file) != std::string::npos; }

int FailLock(const void*, size_t) {
  errno = EPERM;
  return -1;
}

MapViewOptions Views(bool on, int (*lock)(const void*, size_t) = nullptr) {
  MapViewOptions v;
  v.enabled = on;
  v.lock = lock;
  return v;
}

at::Tensor Arange(int64_t n, float sign) { return at::arange(n, at::kFloat).mul(sign); }

TEST(SafetensorsMapTest, ViewAliasesTheLockedMappingUntilItsLastTensorIsFreed) {
  const std::string dir = WriteMapCheckpoint("map_view");
  const std::string file = dir + "/model.safetensors";
  const int64_t locked_before = LockedKib();
  auto ckpt = SafetensorsCheckpoint::Open(dir, Views(true));
  at::Tensor gate = ckpt->TryView({"ffn.gate"}, {{256, 1024}}, at::kFloat, kCpu);
  if (!gate.defined()) GTEST_SKIP() << "mlock unavailable here: " << ckpt->ViewFallbackReason();
  EXPECT_TRUE(IsCheckpointView(gate));
  EXPECT_TRUE(at::equal(gate, Arange(256 * 1024, 1).reshape({256, 1024})));
  EXPECT_EQ(ckpt->ViewBytes(), 256u * 1024 * 4);
  EXPECT_EQ(ckpt->ViewFallbackReason(), "");
  // 1 MiB locked (whole pages, so up to two more pages at the ends).
  if (kKernelSeesLocks) {
    EXPECT_GE(LockedKib() - locked_before, 1024);
    EXPECT_LE(LockedKib() - locked_before, 1024 + 8);
  }
  ckpt.reset();
  EXPECT_TRUE(Mapped(file)) << "the view keeps the mapping";
  EXPECT_EQ(gate[3][5].item<float>(), 3.f * 1024 + 5);
  gate.reset();
  EXPECT_FALSE(Mapped(file));
  EXPECT_EQ(LockedKib(), locked_before);
}

TEST(SafetensorsMapTest, BackToBackTensorsBecomeOneViewAndCopiesStayCopies) {
  const std::string dir = WriteMapCheckpoint("map_rows");
  auto ckpt = SafetensorsCheckpoint::Open(dir, Views(true));
  at::Tensor fused = ckpt->TryView({"ffn.gate", "ffn.up"}, {{256, 1024}, {256, 1024}}, at::kFloat, kCpu);
  if (!fused.defined()) GTEST_SKIP() << "mlock unavailable here: " << ckpt->ViewFallbackReason();
  EXPECT_EQ(fused.sizes().vec(), (std::vector<int64_t>{512, 1024}));
  EXPECT_TRUE(at::equal(fused.narrow(0, 256, 256), Arange(256 * 1024, -1).reshape({256, 1024})));
  EXPECT_FALSE(IsCheckpointView(ckpt->Load("ffn.gate", at::kFloat, kCpu)));
  // Reverse order is not back to back.
  EXPECT_FALSE(ckpt->TryView({"ffn.up", "ffn.gate"}, {{256, 1024}, {256, 1024}}, at::kFloat, kCpu).defined());
  EXPECT_EQ(ckpt->ViewFallbackReason(), "");
}

TEST(SafetensorsMapTest, NoViewWhereAConversionMisalignmentOrOtherShapeIsAsked) {
  const std::string dir = WriteMapCheckpoint("map_none");
  auto ckpt = SafetensorsCheckpoint::Open(dir, Views(true));
  EXPECT_FALSE(ckpt->TryView({"norm"}, {{8}}, at::kFloat, kCpu).defined()) << "stored bf16, asked fp32";
  if (!ckpt->TryView({"norm"}, {{8}}, at::kBFloat16, kCpu).defined()) {
    GTEST_SKIP() << "mlock unavailable here: " << ckpt->ViewFallbackReason();
  }
  EXPECT_FALSE(ckpt->TryView({"odd"}, {{4}}, at::kFloat, kCpu).defined()) << "2 bytes past 4-byte alignment";
  EXPECT_TRUE(at::equal(ckpt->Load("odd", at::kFloat, kCpu), Floats({10.f, 11.f, 12.f, 13.f}, {4})));
  EXPECT_FALSE(ckpt->TryView({"ffn.gate"}, {{1024, 256}}, at::kFloat, kCpu).defined());
  EXPECT_FALSE(ckpt->TryView({"nope"}, {{1}}, at::kFloat, kCpu).defined());
  auto off = SafetensorsCheckpoint::Open(dir, Views(false));
  EXPECT_FALSE(off->TryView({"ffn.gate"}, {{256, 1024}}, at::kFloat, kCpu).defined());
  EXPECT_EQ(off->ViewBytes(), 0u);
}

TEST(SafetensorsMapTest, FailedLockTurnsViewsOffWithTheReason) {
  const std::string dir = WriteMapCheckpoint("map_fail");
  const int64_t locked_before = LockedKib();
  auto ckpt = SafetensorsCheckpoint::Open(dir, Views(true, &FailLock));
  EXPECT_FALSE(ckpt->TryView({"ffn.gate"}, {{256, 1024}}, at::kFloat, kCpu).defined());
  const std::string why = ckpt->ViewFallbackReason();
  EXPECT_NE(why.find("mlock of 1.0 MiB for ffn.gate"), std::string::npos) << why;
  EXPECT_NE(why.find(std::strerror(EPERM)), std::string::npos) << why;
  EXPECT_NE(why.find("RLIMIT_MEMLOCK"), std::string::npos) << why;
  EXPECT_FALSE(ckpt->TryView({"norm"}, {{8}}, at::kBFloat16, kCpu).defined()) << "off after the first failure";
  EXPECT_EQ(ckpt->ViewBytes(), 0u);
  EXPECT_EQ(LockedKib(), locked_before);
}

}  // namespace
}  // namespace inferd::model
