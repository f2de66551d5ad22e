// Chat templates of tokenizer_config.json. The DeepSeek-V3 template is rendered natively (its Jinja
// semantics, quirks included); other templates are kept as text and reported as unsupported on use.
#pragma once

#include <string>
#include <vector>

#include "inferd/status.h"
#include "inferd/tokenizer.h"

namespace inferd::tokenizer {

enum class ChatTemplateKind { kNone, kDeepSeekV3, kUnsupported };

// Classifies a template source. Recognition is by exact content (hash), never by guesswork.
ChatTemplateKind ClassifyChatTemplate(const std::string& source);

struct ChatTemplate {
  ChatTemplateKind kind = ChatTemplateKind::kNone;
  std::string source;
};

// Renders `messages` as transformers' apply_chat_template(messages, tokenize=False,
// add_generation_prompt=...) does with the DeepSeek-V3 template and this bos_token.
std::string RenderDeepSeekV3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                             const std::string& bos_token);

StatusOr<std::string> RenderChatTemplate(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt, const std::string& bos_token);

}  // namespace inferd::tokenizer
