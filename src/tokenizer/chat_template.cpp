#include "tokenizer/chat_template.h"

#include <cstdint>

namespace inferd::tokenizer {
namespace {

uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// FNV-1a 64 of the chat_template string shipped in DeepSeek-V3's tokenizer_config.json (2301 bytes).
constexpr uint64_t kDeepSeekV3TemplateHash = 0xebe3604156dc466aull;

}  // namespace

ChatTemplateKind ClassifyChatTemplate(const std::string& source) {
  if (source.empty()) return ChatTemplateKind::kNone;
  if (Fnv1a64(source) == kDeepSeekV3TemplateHash) return ChatTemplateKind::kDeepSeekV3;
  return ChatTemplateKind::kUnsupported;
}

std::string RenderDeepSeekV3(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                             const std::string& bos_token) {
  // Mirrors the template's namespace variables; is_first is never reset (a quirk of the template).
  bool is_first = false, is_tool = false, is_output_first = true, is_first_sp = true;
  std::string system_prompt;
  for (const ChatMessage& m : messages) {
    if (m.role != "system") continue;
    if (!is_first_sp) system_prompt += "\n\n";
    system_prompt += m.content.value_or("");
    is_first_sp = false;
  }
  std::string out = bos_token + system_prompt;
  for (const ChatMessage& m : messages) {
    if (m.role == "user") {
      is_tool = false;
      out += "<｜User｜>" + m.content.value_or("");
    }
    if (m.role == "assistant" && !m.content.has_value()) {
      is_tool = false;
      for (const ChatToolCall& tool : m.tool_calls) {
        std::string call = "<｜tool▁call▁begin｜>" + tool.type + "<｜tool▁sep｜>" + tool.name + "\n```json\n" +
                           tool.arguments + "\n```<｜tool▁call▁end｜>";
        if (!is_first) {
          out += "<｜Assistant｜><｜tool▁calls▁begin｜>" + call;
          is_first = true;
        } else {
          out += "\n" + call + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>";
        }
      }
    }
    if (m.role == "assistant" && m.content.has_value()) {
      if (is_tool) {
        out += "<｜tool▁outputs▁end｜>" + *m.content + "<｜end▁of▁sentence｜>";
        is_tool = false;
      } else {
        out += "<｜Assistant｜>" + *m.content + "<｜end▁of▁sentence｜>";
      }
    }
    if (m.role == "tool") {
      is_tool = true;
      if (is_output_first) {
        out += "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + m.content.value_or("") + "<｜tool▁output▁end｜>";
        is_output_first = false;
      } else {
        out += "\n<｜tool▁output▁begin｜>" + m.content.value_or("") + "<｜tool▁output▁end｜>";
      }
    }
  }
  if (is_tool) out += "<｜tool▁outputs▁end｜>";
  if (add_generation_prompt && !is_tool) out += "<｜Assistant｜>";
  return out;
}

StatusOr<std::string> RenderChatTemplate(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt, const std::string& bos_token) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    bool needs_content = m.role == "system" || m.role == "user" || m.role == "tool";
    if (needs_content && !m.content.has_value())
      return InvalidArgument("messages[" + std::to_string(i) + "].content: required for role '" + m.role + "'");
  }
  switch (tmpl.kind) {
    case ChatTemplateKind::kDeepSeekV3:
      return RenderDeepSeekV3(messages, add_generation_prompt, bos_token);
    case ChatTemplateKind::kNone:
      return Status(StatusCode::kFailedPrecondition, "tokenizer_config.json has no chat_template");
    case ChatTemplateKind::kUnsupported:
      break;
  }
  return Status(StatusCode::kUnimplemented,
                "tokenizer_config.json: chat_template is not a supported template (supported: DeepSeek-V3)");
}

}  // namespace inferd::tokenizer
