#include "tokenizer/pretokenizer.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

// The regex ByteLevel applies when use_regex is true (GPT-2's).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Fills `spans` with the match list of tokenizers' Pattern::find_matches for a regex.
void RegexSpans(const Regex& re, std::string_view text, bool invert, std::vector<Span>* spans) {
  spans->clear();
  size_t prev = 0;
  re.ForEachMatch(text, [&](size_t s, size_t e) {
    if (prev != s) spans->push_back({prev, s, invert});
    spans->push_back({s, e, !invert});
    prev = e;
  });
  if (prev != text.size()) spans->push_back({prev, text.size(), invert});
}

class SplitStep final : public PreTokenizerStep {
 public:
  SplitStep(std::unique_ptr<Regex> re, SplitBehavior behavior, bool invert)
      : re_(std::move(re)), behavior_(behavior), invert_(invert) {}

  void Split(std::string_view piece, std::vector<std::string_view>* out,
             PreTokenizeScratch* scratch) const override {
    // spans is reused: ApplySplitBehavior consumes it before any nested step runs.
    RegexSpans(*re_, piece, invert_, &scratch->spans);
    ApplySplitBehavior(piece, scratch->spans, behavior_, out);
  }

 private:
  std::unique_ptr<Regex> re_;
  SplitBehavior behavior_;
  bool invert_;
};

class DigitsStep final : public PreTokenizerStep {
 public:
  explicit DigitsStep(bool individual) : individual_(individual) {}

  void Split(std::string_view piece, std::vector<std::string_view>* out,
             PreTokenizeScratch* scratch) const override {
    std::vector<Span>& spans = scratch->spans;
    spans.clear();
    size_t last_offset = 0, i = 0;
    while (i < piece.size()) {
      size_t b = i;
      char32_t c = NextCodePoint(piece, &i);
      if (IsNumeric(c)) {
        if (last_offset < b) spans.push_back({last_offset, b, false});
        spans.push_back({b, i, true});
        last_offset = i;
      }
    }
    if (piece.size() > last_offset) spans.push_back({last_offset, piece.size(), false});
    ApplySplitBehavior(piece, spans,
                       individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, out);
  }

 private:
  bool individual_;
};

// ByteLevel as the last step: optional prefix space, optional GPT-2 split. The byte-to-char mapping is
// left to the model, which maps bytes straight to ids.
class ByteLevelStep final : public PreTokenizerStep {
 public:
  ByteLevelStep(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        re_(use_regex ? std::make_unique<Regex>(kGpt2Pattern, false) : nullptr) {}

  void Split(std::string_view piece, std::vector<std::string_view>* out,
             PreTokenizeScratch* scratch) const override {
    if (add_prefix_space_ && (piece.empty() || piece.front() != ' ')) {
      std::string& s = scratch->arena.emplace_back();
      s.reserve(piece.size() + 1);
      s.push_back(' ');
      s.append(piece);
      piece = s;
    }
    if (!re_) {
      out->push_back(piece);
      return;
    }
    RegexSpans(*re_, piece, false, &scratch->spans);
    ApplySplitBehavior(piece, scratch->spans, SplitBehavior::kIsolated, out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

bool GetBool(const nlohmann::json& j, const char* key, bool def, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw std::runtime_error(where + "." + key + ": expected a boolean");
  return j[key].get<bool>();
}

SplitBehavior ParseBehavior(const nlohmann::json& j, const std::string& where) {
  if (!j.is_string()) throw std::runtime_error(where + ": expected a string");
  const std::string b = j.get<std::string>();
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  throw std::runtime_error(where + ": unknown split behavior '" + b + "'");
}

void Collect(const nlohmann::json& j, const std::string& where,
             std::vector<std::shared_ptr<const PreTokenizerStep>>* steps, bool* byte_level) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw std::runtime_error(where + ": expected an object with a string 'type'");
  if (*byte_level)
    throw std::runtime_error(where + ": a pre-tokenizer after ByteLevel is not supported");
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      throw std::runtime_error(where + ".pretokenizers: expected an array");
    const auto& arr = j["pretokenizers"];
    for (size_t i = 0; i < arr.size(); ++i)
      Collect(arr[i], where + ".pretokenizers[" + std::to_string(i) + "]", steps, byte_level);
  } else if (type == "Split") {
    if (!j.contains("pattern") || !j["pattern"].is_object())
      throw std::runtime_error(where + ".pattern: expected an object {\"Regex\": ...} or {\"String\": ...}");
    const auto& p = j["pattern"];
    std::unique_ptr<Regex> re;
    try {
      if (p.contains("Regex") && p["Regex"].is_string()) {
        re = std::make_unique<Regex>(p["Regex"].get<std::string>(), false);
      } else if (p.contains("String") && p["String"].is_string()) {
        re = std::make_unique<Regex>(p["String"].get<std::string>(), true);
      } else {
        throw std::runtime_error("expected {\"Regex\": string} or {\"String\": string}");
      }
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(where + ".pattern: " + e.what());
    }
    if (!j.contains("behavior")) throw std::runtime_error(where + ".behavior: missing");
    SplitBehavior behavior = ParseBehavior(j["behavior"], where + ".behavior");
    steps->push_back(std::make_shared<SplitStep>(std::move(re), behavior, GetBool(j, "invert", false, where)));
  } else if (type == "Digits") {
    steps->push_back(std::make_shared<DigitsStep>(GetBool(j, "individual_digits", false, where)));
  } else if (type == "ByteLevel") {
    steps->push_back(std::make_shared<ByteLevelStep>(GetBool(j, "add_prefix_space", true, where),
                                                     GetBool(j, "use_regex", true, where)));
    *byte_level = true;
  } else {
    throw std::runtime_error(where + ": pre-tokenizer type '" + type +
                             "' is not supported (supported: Sequence, Split, Digits, ByteLevel)");
  }
}

}  // namespace

void ApplySplitBehavior(std::string_view text, const std::vector<Span>& spans, SplitBehavior behavior,
                        std::vector<std::string_view>* out) {
  auto emit = [&](size_t s, size_t e) {
    if (e > s) out->push_back(text.substr(s, e - s));
  };
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& sp : spans) emit(sp.start, sp.end);
      return;
    case SplitBehavior::kRemoved:
      for (const Span& sp : spans)
        if (!sp.is_match) emit(sp.start, sp.end);
      return;
    case SplitBehavior::kContiguous:
    case SplitBehavior::kMergedWithPrevious: {
      // Pieces are contiguous, so a merged piece is [first start, last end).
      bool have = false, prev_match = false;
      size_t cur_s = 0, cur_e = 0;
      for (const Span& sp : spans) {
        bool merge = behavior == SplitBehavior::kContiguous ? sp.is_match == prev_match
                                                             : (sp.is_match && !prev_match);
        if (merge && have) {
          cur_e = sp.end;
        } else {
          if (have) emit(cur_s, cur_e);
          cur_s = sp.start;
          cur_e = sp.end;
          have = true;
        }
        prev_match = sp.is_match;
      }
      if (have) emit(cur_s, cur_e);
      return;
    }
    case SplitBehavior::kMergedWithNext: {
      // Folded right to left: a match joins the piece after it.
      std::vector<std::pair<size_t, size_t>> acc;
      bool prev_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& sp = spans[k];
        if (sp.is_match && !prev_match && !acc.empty()) {
          acc.back().first = sp.start;
        } else {
          acc.emplace_back(sp.start, sp.end);
        }
        prev_match = sp.is_match;
      }
      for (size_t k = acc.size(); k-- > 0;) emit(acc[k].first, acc[k].second);
      return;
    }
  }
}

PreTokenizerPipeline PreTokenizerPipeline::FromJson(const nlohmann::json& j, const std::string& where) {
  PreTokenizerPipeline p;
  Collect(j, where, &p.steps_, &p.byte_level_);
  return p;
}

}  // namespace inferd::tokenizer
