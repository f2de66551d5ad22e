// TokenizerImpl: the loaded pipeline behind inferd::Tokenizer (normalizer, added tokens, pre-tokenizer,
// BPE model, decoder, BOS/EOS policy, chat template). Built once by LoadTokenizerImpl; immutable after.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inferd/batch.h"
#include "inferd/status.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"

namespace inferd::tokenizer {

enum class DecoderKind {
  kByteLevel,  // token characters map back to bytes; tokens with other characters give their UTF-8
  kNone,       // no decoder: tokens joined with single spaces (tokenizers' default)
};

class TokenizerImpl {
 public:
  // Ids of `text` without BOS/EOS. `text` must be valid UTF-8.
  void EncodeBody(std::string_view text, bool skip_special, std::vector<TokenId>* out) const;

  // Bytes a token contributes to a decode (before UTF-8 repair); empty for unknown ids.
  std::string_view TokenBytes(TokenId id) const {
    return id >= 0 && static_cast<size_t>(id) < token_bytes_.size() ? std::string_view(token_bytes_[id])
                                                                     : std::string_view();
  }
  bool Known(TokenId id) const {
    return id >= 0 && static_cast<size_t>(id) < known_.size() && known_[id];
  }
  bool IsSpecial(TokenId id) const {
    return id >= 0 && static_cast<size_t>(id) < special_.size() && special_[id];
  }
  DecoderKind decoder() const { return decoder_; }

  std::optional<TokenId> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(TokenId id) const;
  int32_t vocab_size() const { return static_cast<int32_t>(known_.size()); }

  // Set by the loader.
  Normalizer normalizer_;
  PreTokenizerPipeline pre_tokenizer_;
  BpeModel model_;
  AddedVocabulary added_;
  DecoderKind decoder_ = DecoderKind::kByteLevel;
  std::vector<std::string> token_bytes_;  // by id
  std::vector<std::string> id_to_token_;  // by id: added token content or model token
  std::vector<uint8_t> known_;            // by id
  std::vector<uint8_t> special_;          // by id
  VocabMap added_by_content_;
  std::vector<TokenId> prefix_ids_;       // added by Encode when add_special_tokens (BOS)
  std::vector<TokenId> suffix_ids_;       // (EOS)
  std::optional<TokenId> bos_id_;
  std::optional<TokenId> eos_id_;
  bool add_bos_ = false;
  bool add_eos_ = false;
  std::string bos_token_;
  std::string eos_token_;
  ChatTemplate chat_template_;

 private:
  void EncodeNormalizedPiece(std::string_view text, bool skip_special, std::vector<TokenId>* out) const;
  void EncodePlain(std::string_view text, std::vector<TokenId>* out) const;
};

// Reads `dir`/tokenizer.json and `dir`/tokenizer_config.json. Errors name the file and the field.
StatusOr<std::unique_ptr<TokenizerImpl>> LoadTokenizerImpl(const std::string& dir);

}  // namespace inferd::tokenizer
