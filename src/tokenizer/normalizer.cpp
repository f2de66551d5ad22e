#include "tokenizer/normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "tokenizer/unicode_delta_tables.h"
#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

const icu::Normalizer2* Get(const std::string& type, const std::string& where) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  if (type == "NFC") n = icu::Normalizer2::getNFCInstance(status);
  else if (type == "NFD") n = icu::Normalizer2::getNFDInstance(status);
  else if (type == "NFKC") n = icu::Normalizer2::getNFKCInstance(status);
  else if (type == "NFKD") n = icu::Normalizer2::getNFKDInstance(status);
  else
    throw std::runtime_error(where + ": normalizer type '" + type +
                             "' is not supported (supported: Sequence, NFC, NFD, NFKC, NFKD)");
  if (U_FAILURE(status) || n == nullptr)
    throw std::runtime_error(where + ": ICU could not provide the " + type + " normalizer");
  return n;
}

template <typename Steps>
void Collect(const nlohmann::json& j, const std::string& where, Steps* steps) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw std::runtime_error(where + ": expected an object with a string 'type'");
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      throw std::runtime_error(where + ".normalizers: expected an array");
    const auto& arr = j["normalizers"];
    for (size_t i = 0; i < arr.size(); ++i)
      Collect(arr[i], where + ".normalizers[" + std::to_string(i) + "]", steps);
    return;
  }
  steps->push_back(Get(type, where));
}

}  // namespace

Normalizer Normalizer::FromJson(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  Collect(j, where, &n.steps_);
  return n;
}

namespace {

bool Verbatim(char32_t c) {
  if (c < 0x300) return false;
  for (const auto& r : kNormalizeVerbatim)
    if (c >= r[0] && c <= r[1]) return true;
  return false;
}

void NormalizeIcu(const icu::Normalizer2* n, std::string_view in, std::string* out) {
  icu::StringByteSink<std::string> sink(out);
  UErrorCode status = U_ZERO_ERROR;
  n->normalizeUTF8(0, icu::StringPiece(in.data(), static_cast<int32_t>(in.size())), sink, nullptr, status);
  if (U_FAILURE(status)) throw std::runtime_error("ICU normalization failed");
}

}  // namespace

void Normalizer::Apply(std::string_view in, std::string* out) const {
  std::string cur(in);
  for (const void* step : steps_) {
    const auto* n = static_cast<const icu::Normalizer2*>(step);
    std::string next;
    {
      size_t seg = 0, i = 0;
      while (i < cur.size()) {
        size_t start = i;
        char32_t c = NextCodePoint(cur, &i);
        if (!Verbatim(c)) continue;
        NormalizeIcu(n, std::string_view(cur).substr(seg, start - seg), &next);
        next.append(cur, start, i - start);
        seg = i;
      }
      NormalizeIcu(n, std::string_view(cur).substr(seg), &next);
    }
    cur.swap(next);
  }
  *out = std::move(cur);
}

}  // namespace inferd::tokenizer
