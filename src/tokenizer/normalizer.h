// Normalizers of tokenizer.json: Sequence of NFC / NFD / NFKC / NFKD (ICU). Immutable after load.
// tokenizers' normalizers use older Unicode data than ICU; the characters they do not know
// (kNormalizeVerbatim) are kept verbatim here and the text between them is normalized.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>


namespace inferd::tokenizer {

class Normalizer {
 public:
  // Builds from the "normalizer" field (null allowed). Throws std::runtime_error naming the component.
  static Normalizer FromJson(const nlohmann::json& j, const std::string& where);

  bool empty() const { return steps_.empty(); }
  // Writes the normalized form of `in` (valid UTF-8) to `out`.
  void Apply(std::string_view in, std::string* out) const;

 private:
  std::vector<const void*> steps_;  // const icu::Normalizer2*, owned by ICU (process lifetime)
};

}  // namespace inferd::tokenizer
