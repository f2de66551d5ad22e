#include "inferd/tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace inferd {
namespace tokenizer {

void TokenizerImpl::EncodePlain(std::string_view text, std::vector<TokenId>* out) const {
  thread_local PreTokenizeScratch scratch;
  scratch.arena.clear();
  const bool byte_level = pre_tokenizer_.byte_level();
  pre_tokenizer_.Run(text, &scratch, [&](std::string_view piece) { model_.EncodeWord(piece, byte_level, out); });
}

void TokenizerImpl::EncodeNormalizedPiece(std::string_view text, bool skip_special, std::vector<TokenId>* out) const {
  std::string normalized;
  if (!normalizer_.empty()) {
    normalizer_.Apply(text, &normalized);
    text = normalized;
  }
  if (!added_.has_normalized()) {
    EncodePlain(text, out);
    return;
  }
  std::vector<AddedSplit> splits;
  added_.Split(text, /*normalized_pass=*/true, skip_special, &splits);
  for (const AddedSplit& s : splits) {
    if (s.token >= 0) {
      out->push_back(added_.tokens()[s.token].id);
    } else {
      EncodePlain(text.substr(s.start, s.end - s.start), out);
    }
  }
}

void TokenizerImpl::EncodeBody(std::string_view text, bool skip_special, std::vector<TokenId>* out) const {
  if (!added_.has_raw()) {
    EncodeNormalizedPiece(text, skip_special, out);
    return;
  }
  std::vector<AddedSplit> splits;
  added_.Split(text, /*normalized_pass=*/false, skip_special, &splits);
  for (const AddedSplit& s : splits) {
    if (s.token >= 0) {
      out->push_back(added_.tokens()[s.token].id);
    } else {
      EncodeNormalizedPiece(text.substr(s.start, s.end - s.start), skip_special, out);
    }
  }
}

std::optional<TokenId> TokenizerImpl::TokenToId(std::string_view token) const {
  auto it = added_by_content_.find(token);
  if (it != added_by_content_.end()) return it->second;
  auto mt = model_.vocab().find(token);
  if (mt != model_.vocab().end()) return mt->second;
  return std::nullopt;
}

std::optional<std::string> TokenizerImpl::IdToToken(TokenId id) const {
  if (!Known(id)) return std::nullopt;
  return id_to_token_[id];
}

}  // namespace tokenizer

Tokenizer::Tokenizer(std::unique_ptr<tokenizer::TokenizerImpl> impl) : impl_(std::move(impl)) {
  if (!impl_->normalizer_.empty()) return;
  for (const std::string& b : impl_->token_bytes_) max_bytes_per_token_ = std::max(max_bytes_per_token_, b.size());
}
Tokenizer::~Tokenizer() = default;

StatusOr<std::shared_ptr<const Tokenizer>> Tokenizer::Load(const std::string& dir) {
  auto impl = tokenizer::LoadTokenizerImpl(dir);
  if (!impl.ok()) return impl.status();
  return std::shared_ptr<const Tokenizer>(new Tokenizer(std::move(impl).value()));
}

std::shared_ptr<const Tokenizer> Tokenizer::LoadOrThrow(const std::string& dir) {
  auto t = Load(dir);
  if (!t.ok()) throw std::runtime_error(t.status().message());
  return *t;
}

StatusOr<std::vector<TokenId>> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::string repaired;
  size_t bad = tokenizer::FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    if (!options.replace_invalid_utf8)
      return InvalidArgument("text: invalid UTF-8 at byte offset " + std::to_string(bad));
    tokenizer::AppendLossyUtf8(text, &repaired, /*hold_incomplete_tail=*/false);
    text = repaired;
  }
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids = impl_->prefix_ids_;
  impl_->EncodeBody(text, options.split_special_tokens, &ids);
  if (options.add_special_tokens) ids.insert(ids.end(), impl_->suffix_ids_.begin(), impl_->suffix_ids_.end());
  return ids;
}

std::string Tokenizer::Decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  const tokenizer::TokenizerImpl& impl = *impl_;
  std::string bytes;
  bool first = true;
  for (TokenId id : ids) {
    if (!impl.Known(id) || (skip_special_tokens && impl.IsSpecial(id))) continue;
    if (impl.decoder() == tokenizer::DecoderKind::kNone && !first) bytes.push_back(' ');
    bytes.append(impl.TokenBytes(id));
    first = false;
  }
  if (tokenizer::FindInvalidUtf8(bytes) == std::string::npos) return bytes;
  std::string text;
  tokenizer::AppendLossyUtf8(bytes, &text, /*hold_incomplete_tail=*/false);
  return text;
}

StatusOr<std::string> Tokenizer::ApplyChatTemplate(const std::vector<ChatMessage>& messages,
                                                   bool add_generation_prompt) const {
  return tokenizer::RenderChatTemplate(impl_->chat_template_, messages, add_generation_prompt, impl_->bos_token_);
}

bool Tokenizer::has_chat_template() const {
  return impl_->chat_template_.kind == tokenizer::ChatTemplateKind::kDeepSeekV3;
}

DecodeStream Tokenizer::NewStream(StreamOptions options) const {
  return DecodeStream(shared_from_this(), std::move(options));
}

std::optional<TokenId> Tokenizer::bos_id() const {
  return impl_->bos_id_;
}
std::optional<TokenId> Tokenizer::eos_id() const {
  return impl_->eos_id_;
}
bool Tokenizer::add_bos_token() const {
  return impl_->add_bos_;
}
bool Tokenizer::add_eos_token() const {
  return impl_->add_eos_;
}
int32_t Tokenizer::vocab_size() const {
  return impl_->vocab_size();
}
std::optional<TokenId> Tokenizer::TokenToId(std::string_view token) const {
  return impl_->TokenToId(token);
}
std::optional<std::string> Tokenizer::IdToToken(TokenId id) const {
  return impl_->IdToToken(id);
}
bool Tokenizer::IsSpecial(TokenId id) const {
  return impl_->IsSpecial(id);
}

}  // namespace inferd
