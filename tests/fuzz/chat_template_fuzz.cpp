// Input: chat messages (role, content or tool calls) and a template source. Properties: the DeepSeek-V3
// renderer never crashes; through the tokenizer it returns the rendered text, whose every user and system
// content appears in it, and that text encodes (or INVALID_ARGUMENT naming the message); ClassifyChatTemplate takes any
// source.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_tokenizer.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)FuzzTokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* kRoles[] = {"system", "user", "assistant", "tool"};
  const inferd::Tokenizer& tok = *FuzzTokenizer();
  FuzzedDataProvider in(data, size);
  const bool add_generation_prompt = in.ConsumeBool();
  std::vector<inferd::ChatMessage> messages;
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 12);
  for (size_t i = 0; i < n; ++i) {
    inferd::ChatMessage m;
    const uint8_t r = in.ConsumeIntegralInRange<uint8_t>(0, 4);
    m.role = r < 4 ? kRoles[r] : in.ConsumeRandomLengthString(16);
    if (in.ConsumeBool()) m.content = in.ConsumeRandomLengthString(256);
    const size_t calls = in.ConsumeIntegralInRange<size_t>(0, 3);
    for (size_t k = 0; k < calls; ++k) {
      inferd::ChatToolCall call;
      if (in.ConsumeBool()) call.type = in.ConsumeRandomLengthString(12);
      call.name = in.ConsumeRandomLengthString(32);
      call.arguments = in.ConsumeRandomLengthString(64);
      m.tool_calls.push_back(std::move(call));
    }
    messages.push_back(std::move(m));
  }
  const std::string source = in.ConsumeRemainingBytesAsString();
  (void)inferd::tokenizer::ClassifyChatTemplate(source);
  (void)inferd::tokenizer::RenderDeepSeekV3(messages, add_generation_prompt, source);

  auto rendered = tok.ApplyChatTemplate(messages, add_generation_prompt);
  if (!rendered.ok()) {
    FUZZ_CHECK(rendered.status().code() == inferd::StatusCode::kInvalidArgument &&
                   rendered.status().message().rfind("messages[", 0) == 0,
               "%s", rendered.status().message().c_str());
    return 0;
  }
  for (const auto& m : messages) {
    if ((m.role == "user" || m.role == "system") && m.content.has_value()) {
      FUZZ_CHECK(rendered->find(*m.content) != std::string::npos, "%s content missing", m.role.c_str());
    }
  }
  inferd::EncodeOptions opts;
  opts.add_special_tokens = false;
  opts.replace_invalid_utf8 = true;
  auto ids = tok.Encode(*rendered, opts);
  FUZZ_CHECK(ids.ok(), "%s", ids.status().message().c_str());
  return 0;
}
