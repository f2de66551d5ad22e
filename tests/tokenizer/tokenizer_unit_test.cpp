// Unit tests of the tokenizer internals and of load-time errors (no reference data needed).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "inferd/tokenizer.h"
#include "tokenizer/bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Lossy(std::string_view s) {
  std::string out;
  AppendLossyUtf8(s, &out, false);
  return out;
}

TEST(Utf8Test, LossyReplacesMaximalSubparts) {
  const std::string r(kReplacementChar);
  EXPECT_EQ(Lossy("abc"), "abc");
  EXPECT_EQ(Lossy("a\xff" "b"), "a" + r + "b");
  EXPECT_EQ(Lossy("\xf0\x9f\x98 x"), r + " x");         // truncated 4-byte prefix: one U+FFFD
  EXPECT_EQ(Lossy("\xed\xa0\x80"), r + r + r);          // surrogate: ED then two continuation bytes
  EXPECT_EQ(Lossy("\xc0\xaf"), r + r);                  // overlong lead byte
  EXPECT_EQ(Lossy("\xe2\x82"), r);                      // cut at the end
  EXPECT_EQ(Lossy("\xf4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(Lossy("\xe4\xbd\xa0\xe5\xa5\xbd"), "\xe4\xbd\xa0\xe5\xa5\xbd");
  std::string held;
  EXPECT_EQ(AppendLossyUtf8("ok\xe4\xbd", &held, true), 2u);
  EXPECT_EQ(held, "ok");
  EXPECT_EQ(FindInvalidUtf8("valid ascii and \xe4\xbd\xa0"), std::string_view::npos);
  EXPECT_EQ(FindInvalidUtf8("12345678\xff"), 8u);
}

std::vector<std::string> SplitWith(std::string_view text, SplitBehavior behavior) {
  Regex re("-", true);
  std::vector<Span> spans;
  size_t prev = 0;
  re.ForEachMatch(text, [&](size_t s, size_t e) {
    if (prev != s) spans.push_back({prev, s, false});
    spans.push_back({s, e, true});
    prev = e;
  });
  if (prev != text.size()) spans.push_back({prev, text.size(), false});
  std::vector<std::string_view> out;
  ApplySplitBehavior(text, spans, behavior, &out);
  return {out.begin(), out.end()};
}

// The examples of tokenizers' SplitDelimiterBehavior documentation.
TEST(PreTokenizerTest, SplitBehaviors) {
  using V = std::vector<std::string>;
  const char* t = "the-final--countdown";
  EXPECT_EQ(SplitWith(t, SplitBehavior::kRemoved), (V{"the", "final", "countdown"}));
  EXPECT_EQ(SplitWith(t, SplitBehavior::kIsolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(SplitWith(t, SplitBehavior::kMergedWithPrevious), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(SplitWith(t, SplitBehavior::kMergedWithNext), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(SplitWith(t, SplitBehavior::kContiguous), (V{"the", "-", "final", "--", "countdown"}));
}

TEST(RegexTest, OnigurumaSyntax) {
  EXPECT_EQ(OnigToPcre2("\\h+"), "[0-9a-fA-F]+");
  EXPECT_EQ(OnigToPcre2("[\\hx]"), "[0-9a-fA-Fx]");
  EXPECT_EQ(OnigToPcre2("\\p{^Zs}"), "\\P{Zs}");
  EXPECT_EQ(OnigToPcre2("\\p{^L}").substr(0, 7), "[^\\p{L}");
  Regex re("\\s+$", false);  // $ matches before a newline, as in Oniguruma
  size_t s, e;
  ASSERT_TRUE(re.Find("a  \nb", 0, &s, &e));
  EXPECT_EQ(s, 1u);
  EXPECT_EQ(e, 3u);
  EXPECT_THROW(Regex("(unclosed", false), std::runtime_error);
}

// A minimal byte-level BPE tokenizer directory, with `edit` applied to tokenizer.json.
class TempTokenizer {
 public:
  explicit TempTokenizer(const std::function<void(json&, json&)>& edit = nullptr) {
    dir_ = fs::temp_directory_path() / ("inferd_tok_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    json vocab = json::object();
    const auto& chars = ByteLevelChars();
    for (int b = 0; b < 256; ++b) vocab[chars[b]] = b;
    vocab["ab"] = 256;
    vocab["<s>"] = 257;
    tok_ = {{"version", "1.0"},
            {"truncation", nullptr},
            {"padding", nullptr},
            {"added_tokens", json::array({{{"id", 257}, {"content", "<s>"}, {"special", true}, {"normalized", false}}})},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"a b"})}}}};
    cfg_ = {{"add_bos_token", true}, {"bos_token", "<s>"}};
    if (edit) edit(tok_, cfg_);
    Write("tokenizer.json", tok_.dump());
    Write("tokenizer_config.json", cfg_.dump());
  }
  ~TempTokenizer() { fs::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_ / name) << text; }
  void Remove(const std::string& name) { fs::remove(dir_ / name); }
  std::string dir() const { return dir_.string(); }
  Status Load() const { return Tokenizer::Load(dir()).status(); }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  json tok_, cfg_;
};

TEST(LoadTest, MinimalTokenizerWorks) {
  TempTokenizer t;
  auto tok = Tokenizer::LoadOrThrow(t.dir());
  auto ids = tok->Encode("ab<s>a");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<TokenId>{257, 256, 257, 'a' - 0}));
  EXPECT_EQ(tok->Decode(*ids, true), "aba");
  EXPECT_EQ(tok->vocab_size(), 258);
  EXPECT_EQ(tok->bos_id(), 257);
}

void ExpectError(const Status& s, const std::vector<std::string>& needles) {
  ASSERT_FALSE(s.ok());
  for (const std::string& n : needles) EXPECT_NE(s.message().find(n), std::string::npos) << s.ToString();
}

TEST(LoadTest, MissingTruncatedAndMalformedFilesNameFileAndField) {
  {
    TempTokenizer t;
    t.Remove("tokenizer.json");
    ExpectError(t.Load(), {"tokenizer.json", "not found"});
  }
  {
    TempTokenizer t;
    t.Remove("tokenizer_config.json");
    ExpectError(t.Load(), {"tokenizer_config.json", "not found"});
  }
  {
    TempTokenizer t;
    t.Write("tokenizer.json", "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
    ExpectError(t.Load(), {"tokenizer.json", "truncated"});
  }
  {
    TempTokenizer t;
    t.Write("tokenizer_config.json", "");
    ExpectError(t.Load(), {"tokenizer_config.json", "empty"});
  }
  ExpectError(TempTokenizer([](json& j, json&) { j["model"]["vocab"] = json::array(); }).Load(),
              {"tokenizer.json", "model.vocab"});
  ExpectError(TempTokenizer([](json& j, json&) { j["model"].erase("merges"); }).Load(),
              {"tokenizer.json", "model.merges", "missing"});
  ExpectError(TempTokenizer([](json& j, json&) { j["model"]["merges"] = json::array({"a zz"}); }).Load(),
              {"model.merges[0]", "'zz'"});
  ExpectError(TempTokenizer([](json& j, json&) { j["model"]["vocab"]["x"] = "seven"; }).Load(),
              {"model.vocab[\"x\"]"});
  ExpectError(TempTokenizer([](json& j, json&) { j["added_tokens"][0].erase("content"); }).Load(),
              {"added_tokens[0].content"});
  ExpectError(TempTokenizer([](json&, json& c) { c["bos_token"] = "<missing>"; }).Load(),
              {"tokenizer_config.json", "bos_token", "<missing>"});
  ExpectError(TempTokenizer([](json&, json& c) { c["add_bos_token"] = "yes"; }).Load(),
              {"tokenizer_config.json", "add_bos_token"});
}

TEST(LoadTest, UnsupportedComponentsAreRejectedByName) {
  ExpectError(TempTokenizer([](json& j, json&) { j["normalizer"] = {{"type", "Lowercase"}}; }).Load(),
              {"tokenizer.json: normalizer", "Lowercase"});
  ExpectError(TempTokenizer([](json& j, json&) {
                j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({{{"type", "Metaspace"}}})}};
              }).Load(),
              {"pre_tokenizer.pretokenizers[0]", "Metaspace"});
  ExpectError(TempTokenizer([](json& j, json&) { j["decoder"] = {{"type", "WordPiece"}}; }).Load(),
              {"tokenizer.json: decoder", "WordPiece"});
  ExpectError(TempTokenizer([](json& j, json&) { j["model"]["type"] = "Unigram"; }).Load(), {"model.type", "Unigram"});
  ExpectError(TempTokenizer([](json& j, json&) { j["post_processor"] = {{"type", "BertProcessing"}}; }).Load(),
              {"post_processor", "BertProcessing"});
  ExpectError(TempTokenizer([](json& j, json&) { j["truncation"] = {{"max_length", 5}}; }).Load(), {"truncation"});
  ExpectError(TempTokenizer([](json& j, json&) {
                j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(bad"}}}, {"behavior", "Isolated"}};
              }).Load(),
              {"pre_tokenizer.pattern", "(bad"});
  ExpectError(TempTokenizer([](json& j, json&) { j["model"]["continuing_subword_prefix"] = "##"; }).Load(),
              {"continuing_subword_prefix"});
}

TEST(DeepSeekV3Test, MaxBytesPerTokenIsTheLongestToken) {
  const char* dir = std::getenv("INFERD_TOKENIZER_V3");
  ASSERT_NE(dir, nullptr);
  auto tok = Tokenizer::LoadOrThrow(dir);
  // From tokenizer.json: the longest model.vocab key has 128 byte-level characters (one byte each); the
  // longest added token is 33 bytes. The tokenizer has no normalizer, so the bound is known.
  EXPECT_EQ(tok->max_bytes_per_token(), 128u);
}

TEST(DeepSeekV3Test, BasicsAndStreamingNeverSplitsACharacter) {
  const char* dir = std::getenv("INFERD_TOKENIZER_V3");
  ASSERT_NE(dir, nullptr);
  auto tok = Tokenizer::LoadOrThrow(dir);
  EXPECT_EQ(tok->vocab_size(), 128815);
  EXPECT_EQ(tok->bos_id(), 0);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->add_bos_token());
  EXPECT_EQ(tok->TokenToId("<｜User｜>"), 128803);
  EXPECT_TRUE(tok->IsSpecial(0));
  const std::string text = "emoji 👨‍👩‍👧‍👦🇯🇵 and 𠀀 中文";
  auto ids = tok->Encode(text, {.add_special_tokens = false});
  ASSERT_TRUE(ids.ok());
  DecodeStream s = tok->NewStream();
  std::string out;
  for (TokenId id : *ids) {
    std::string d = s.Push(id);
    EXPECT_EQ(FindInvalidUtf8(d), std::string_view::npos);
    out += d;
  }
  out += s.Finish();
  EXPECT_EQ(out, text);
  // A stop string that spans tokens; the text before it is emitted, nothing after.
  DecodeStream st = tok->NewStream({.skip_special_tokens = true, .stop_strings = {"👧", "never"}});
  std::string cut;
  for (TokenId id : *ids) cut += st.Push(id);
  cut += st.Finish();
  EXPECT_TRUE(st.stopped());
  EXPECT_EQ(st.stop_index(), 0);
  EXPECT_EQ(cut, "emoji 👨‍👩‍");
  auto chat = tok->ApplyChatTemplate({{"user", "hi", {}}}, true);
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(*chat, "<｜begin▁of▁sentence｜><｜User｜>hi<｜Assistant｜>");
  EXPECT_FALSE(tok->ApplyChatTemplate({{"user", std::nullopt, {}}}, true).ok());
}

}  // namespace
}  // namespace inferd::tokenizer
