// DeepSeek-V3 chat template against transformers' apply_chat_template(tokenize=False) (chat.json from
// tools/tokenizer_reference.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "inferd/tokenizer.h"

namespace inferd {
namespace {

TEST(ChatTemplateTest, MatchesTransformersOnGeneratedConversations) {
  const char* ref = std::getenv("INFERD_TOKENIZER_REF");
  const char* v3 = std::getenv("INFERD_TOKENIZER_V3");
  ASSERT_TRUE(ref && v3) << "INFERD_TOKENIZER_REF / INFERD_TOKENIZER_V3 not set";
  std::ifstream in(std::string(ref) + "/chat.json");
  ASSERT_TRUE(in) << "chat.json missing";
  std::stringstream buf;
  buf << in.rdbuf();
  const nlohmann::json cases = nlohmann::json::parse(buf.str());
  auto tok = Tokenizer::LoadOrThrow(v3);
  ASSERT_TRUE(tok->has_chat_template());
  size_t n = 0;
  for (const auto& c : cases) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"]) {
      ChatMessage msg;
      msg.role = m["role"];
      if (m.contains("content") && !m["content"].is_null()) msg.content = m["content"].get<std::string>();
      if (m.contains("tool_calls"))
        for (const auto& t : m["tool_calls"])
          msg.tool_calls.push_back({t["type"], t["function"]["name"], t["function"]["arguments"]});
      messages.push_back(std::move(msg));
    }
    auto rendered = tok->ApplyChatTemplate(messages, c["add_generation_prompt"].get<bool>());
    ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
    ASSERT_EQ(*rendered, c["expected"].get<std::string>()) << c["messages"].dump();
    ++n;
  }
  std::printf("chat template identical on %zu conversations\n", n);
}

}  // namespace
}  // namespace inferd
