#include <algorithm>

#include "inferd/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace inferd {

DecodeStream::DecodeStream(std::shared_ptr<const Tokenizer> tokenizer, StreamOptions options)
    : tokenizer_(std::move(tokenizer)), options_(std::move(options)) {
  // Empty stop strings never match.
  options_.stop_strings.erase(std::remove(options_.stop_strings.begin(), options_.stop_strings.end(), ""),
                              options_.stop_strings.end());
  for (const std::string& s : options_.stop_strings) max_stop_len_ = std::max(max_stop_len_, s.size());
}

DecodeStream::DecodeStream(const DecodeStream&) = default;
DecodeStream& DecodeStream::operator=(const DecodeStream&) = default;
DecodeStream::DecodeStream(DecodeStream&&) noexcept = default;
DecodeStream& DecodeStream::operator=(DecodeStream&&) noexcept = default;
DecodeStream::~DecodeStream() = default;

std::string DecodeStream::Push(TokenId id) {
  if (stopped_ || finished_) return {};
  const tokenizer::TokenizerImpl& impl = tokenizer_->impl();
  if (!impl.Known(id) || (options_.skip_special_tokens && impl.IsSpecial(id))) return {};
  if (impl.decoder() == tokenizer::DecoderKind::kNone && any_token_) pending_bytes_.push_back(' ');
  any_token_ = true;
  pending_bytes_.append(impl.TokenBytes(id));
  return Emit(/*final_flush=*/false);
}

std::string DecodeStream::Finish() {
  if (stopped_ || finished_) return {};
  std::string out = Emit(/*final_flush=*/true);
  finished_ = true;
  return out;
}

std::string DecodeStream::Emit(bool final_flush) {
  // Bytes -> text: everything but a valid, incomplete UTF-8 tail (kept unless this is the final flush).
  std::string text;
  size_t held = tokenizer::AppendLossyUtf8(pending_bytes_, &text, /*hold_incomplete_tail=*/!final_flush);
  pending_bytes_.erase(0, pending_bytes_.size() - held);
  if (options_.stop_strings.empty()) return text;

  const size_t scan_from = pending_text_.size() >= max_stop_len_ ? pending_text_.size() - max_stop_len_ + 1 : 0;
  pending_text_ += text;
  // The first stop string to complete: smallest end, then smallest start.
  size_t best_end = std::string::npos, best_start = 0;
  int best = -1;
  for (size_t k = 0; k < options_.stop_strings.size(); ++k) {
    const std::string& s = options_.stop_strings[k];
    size_t pos = pending_text_.find(s, scan_from);
    if (pos == std::string::npos) continue;
    size_t end = pos + s.size();
    if (end < best_end || (end == best_end && pos < best_start)) {
      best_end = end;
      best_start = pos;
      best = static_cast<int>(k);
    }
  }
  if (best >= 0) {
    std::string out = pending_text_.substr(0, best_start);
    pending_text_.clear();
    pending_bytes_.clear();
    stopped_ = true;
    stop_index_ = best;
    return out;
  }
  if (final_flush) return std::move(pending_text_);
  // Hold back the longest suffix that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : options_.stop_strings) {
    size_t max_len = std::min(s.size() - 1, pending_text_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (pending_text_.compare(pending_text_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_text_.substr(0, pending_text_.size() - hold);
  pending_text_.erase(0, pending_text_.size() - hold);
  return out;
}

}  // namespace inferd
