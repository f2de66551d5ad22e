// JSON <-> inferd.v1 translation of the OpenAI endpoints. Expected values are written out from the
// OpenAI API reference (field names, defaults, error shape), not derived from the code.
#include "http/openai_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace inferd::http {
namespace {

using nlohmann::json;

std::string ErrorOf(Endpoint endpoint, const std::string& body) {
  StatusOr<GenerateCall> call = ParseGenerate(endpoint, body);
  return call.ok() ? "" : call.status().message();
}

TEST(OpenAiApi, CompletionFieldsBecomeTheGenerateRequest) {
  StatusOr<GenerateCall> call = ParseGenerate(Endpoint::kCompletions, R"({
    "model": "m", "prompt": "Hello", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 42,
    "stop": ["\n", "END"], "presence_penalty": 0.25, "frequency_penalty": -0.5, "logprobs": 3, "n": 1,
    "stream": true, "stream_options": {"include_usage": true}, "user": "u1", "top_k": 40, "ignore_eos": true,
    "class_hint": "realtime", "latency_budget_ms": 250})");
  ASSERT_TRUE(call.ok()) << call.status().message();
  const v1::GenerateRequest& r = call->request;
  EXPECT_EQ(r.model(), "m");
  EXPECT_EQ(r.prompt(), "Hello");
  EXPECT_EQ(r.sampling().max_tokens(), 7);
  EXPECT_FLOAT_EQ(r.sampling().temperature(), 0.5f);
  EXPECT_FLOAT_EQ(r.sampling().top_p(), 0.9f);
  ASSERT_TRUE(r.sampling().has_seed());
  EXPECT_EQ(r.sampling().seed(), 42u);
  ASSERT_EQ(r.sampling().stop_size(), 2);
  EXPECT_EQ(r.sampling().stop(1), "END");
  EXPECT_FLOAT_EQ(r.sampling().presence_penalty(), 0.25f);
  EXPECT_FLOAT_EQ(r.sampling().frequency_penalty(), -0.5f);
  EXPECT_EQ(r.sampling().top_logprobs(), 3);
  EXPECT_EQ(r.sampling().top_k(), 40);
  EXPECT_TRUE(r.sampling().ignore_eos());
  EXPECT_EQ(r.class_hint(), v1::REQUEST_CLASS_REALTIME);
  EXPECT_EQ(r.latency_budget_ms(), 250u);
  EXPECT_TRUE(call->stream);
  EXPECT_TRUE(call->include_usage);
  EXPECT_TRUE(call->logprobs);
}

TEST(OpenAiApi, OpenAiDefaultsApplyWhenFieldsAreAbsentOrNull) {
  StatusOr<GenerateCall> call = ParseGenerate(Endpoint::kCompletions, R"({"prompt": "x", "temperature": null})");
  ASSERT_TRUE(call.ok());
  EXPECT_FLOAT_EQ(call->request.sampling().temperature(), 1.0f);  // OpenAI's default, not greedy
  EXPECT_FLOAT_EQ(call->request.sampling().top_p(), 1.0f);
  EXPECT_EQ(call->request.sampling().max_tokens(), 0);  // the server's default_max_tokens
  EXPECT_FALSE(call->request.sampling().has_seed());
  EXPECT_FALSE(call->stream);
  EXPECT_FALSE(call->logprobs);
}

TEST(OpenAiApi, PromptFormsAndChatMessages) {
  StatusOr<GenerateCall> ids = ParseGenerate(Endpoint::kCompletions, R"({"prompt": [[1, 2, 3]]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->request.prompt_token_ids().ids_size(), 3);
  StatusOr<GenerateCall> one = ParseGenerate(Endpoint::kCompletions, R"({"prompt": ["only"]})");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->request.prompt(), "only");
  StatusOr<GenerateCall> chat = ParseGenerate(Endpoint::kChat, R"({"messages": [
      {"role": "developer", "content": "Be brief."},
      {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}],
      "max_completion_tokens": 5, "logprobs": true, "top_logprobs": 2})");
  ASSERT_TRUE(chat.ok()) << chat.status().message();
  const auto& m = chat->request.messages().messages();
  ASSERT_EQ(m.size(), 2);
  EXPECT_EQ(m[0].role(), "system");
  EXPECT_EQ(m[1].content(), "Hi there");
  EXPECT_EQ(chat->request.sampling().max_tokens(), 5);
  EXPECT_TRUE(chat->max_completion_tokens);
  EXPECT_EQ(chat->request.sampling().top_logprobs(), 2);
}

TEST(OpenAiApi, JsonLevelErrorsNameTheField) {
  const std::pair<const char*, const char*> completions[] = {
      {R"({"prompt": "x",)", "body: malformed JSON at byte"},
      {R"("text")", "body: expected a JSON object"},
      {R"({"prompt": "x", "n": 2})", "n: only 1 choice per request is supported, got 2"},
      {R"({"prompt": "x", "max_tokens": "ten"})", "max_tokens: expected an integer, got string"},
      {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens: expected an integer, got number"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature: expected a number, got string"},
      {R"({"prompt": "x", "stream": 1})", "stream: expected a boolean, got number"},
      {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options: only allowed with stream"},
      {R"({"prompt": ["a", "b"]})", "prompt: batched prompts are not supported"},
      {R"({"prompt": [1, -2]})", "prompt[1]: expected a token id"},
      {R"({"prompt": "x", "stop": [1]})", "stop[0]: expected a string, got number"},
      {R"({"prompt": "x", "echo": true})", "echo: not supported"},
      {R"({"prompt": "x", "logit_bias": {"1": 5}})", "logit_bias: not supported"},
      {R"({"prompt": "x", "tools": []})", "tools: unrecognized request argument"},
      {R"({"prompt": "x", "class_hint": "urgent"})", "class_hint: must be \"realtime\" or \"complex\""},
      {R"({})", "prompt: required"},
  };
  for (const auto& [body, want] : completions) {
    EXPECT_NE(ErrorOf(Endpoint::kCompletions, body).find(want), std::string::npos)
        << body << "\n got: " << ErrorOf(Endpoint::kCompletions, body);
  }
  EXPECT_NE(ErrorOf(Endpoint::kChat, R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})")
                .find("messages[0].content[0].type: only \"text\" parts"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Endpoint::kChat, R"({"messages": [], "top_logprobs": 2})").find("messages: must not be empty"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Endpoint::kChat, R"({"messages": [{"role": "user"}], "max_tokens": 3,
                                        "max_completion_tokens": 4})")
                .find("max_completion_tokens: differs from max_tokens"),
            std::string::npos);
  // A long unknown key is echoed only as a short prefix.
  const std::string long_key(1000, 'k');
  EXPECT_LT(ErrorOf(Endpoint::kCompletions, "{\"prompt\": \"x\", \"" + long_key + "\": 1}").size(), 120u);
  // Deep nesting is refused before parsing.
  EXPECT_NE(ErrorOf(Endpoint::kCompletions, "{\"prompt\": " + std::string(10000, '[') + "}").find("nested deeper"),
            std::string::npos);
}

TEST(OpenAiApi, ErrorsTakeTheHttpStatusOfTheirCodeAndTheOpenAiFieldName) {
  ApiError e = ToApiError(InvalidArgument("sampling.top_p: must be in [0, 1], got 3"), Endpoint::kCompletions);
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.param, "top_p");
  EXPECT_EQ(e.message, "top_p: must be in [0, 1], got 3");
  EXPECT_EQ(ToApiError(InvalidArgument("sampling.max_tokens: must be <= 8"), Endpoint::kChat, true).param,
            "max_completion_tokens");
  EXPECT_EQ(ToApiError(InvalidArgument("sampling.top_logprobs: must be in [0, 20]"), Endpoint::kCompletions).param,
            "logprobs");
  EXPECT_EQ(ToApiError(InvalidArgument("sampling.stop[3]: must not be empty"), Endpoint::kChat).message,
            "stop[3]: must not be empty");
  EXPECT_EQ(ToApiError(InvalidArgument("candidates[2]: empty"), Endpoint::kRerank).message, "documents[2]: empty");
  EXPECT_EQ(ToApiError(InvalidArgument("context: too long"), Endpoint::kRerank).param, "query");
  ApiError nf = ToApiError(NotFound("model: no model pool named 'x'"), Endpoint::kChat);
  EXPECT_EQ(nf.http_status, 404);
  EXPECT_EQ(nf.code, "model_not_found");
  EXPECT_EQ(ToApiError(ResourceExhausted("complex queue is full"), Endpoint::kChat).http_status, 429);
  EXPECT_EQ(ToApiError(ResourceExhausted("complex queue is full"), Endpoint::kChat).param, "");
  EXPECT_EQ(ToApiError(Unavailable("not serving"), Endpoint::kChat).http_status, 503);
  EXPECT_EQ(ToApiError(DeadlineExceeded("deadline"), Endpoint::kChat).http_status, 504);
  EXPECT_EQ(ToApiError(Internal("boom"), Endpoint::kChat).http_status, 500);

  const json j = json::parse(ErrorJson(nf));
  EXPECT_EQ(j, json::parse(R"({"error": {"message": "model: no model pool named 'x'",
      "type": "invalid_request_error", "param": "model", "code": "model_not_found"}})"));
}

TEST(OpenAiApi, StreamEventsAreServerSentEventsEndingWithDone) {
  StatusOr<GenerateCall> call =
      ParseGenerate(Endpoint::kChat, R"({"messages": [{"role": "user", "content": "x"}], "stream": true,
                                          "stream_options": {"include_usage": true}})");
  ASSERT_TRUE(call.ok());
  StreamEncoder enc(*call, {"chatcmpl-1", "m", 1700000000}, [](int32_t) { return std::string("t"); });
  v1::GenerateDelta first;
  first.set_request_id("1");
  first.set_text("Hel");
  const std::string e1 = enc.Encode(first);
  ASSERT_EQ(e1.rfind("data: ", 0), 0u);
  ASSERT_EQ(e1.substr(e1.size() - 2), "\n\n");
  json c1 = json::parse(e1.substr(6));
  EXPECT_EQ(c1["object"], "chat.completion.chunk");
  EXPECT_EQ(c1["id"], "chatcmpl-1");
  EXPECT_EQ(c1["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": "Hel"})"));
  EXPECT_TRUE(c1["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(c1["usage"].is_null());
  v1::GenerateDelta last;
  last.set_text("lo");
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  last.mutable_usage()->set_prompt_tokens(4);
  last.mutable_usage()->set_generated_tokens(2);
  json c2 = json::parse(enc.Encode(last).substr(6));
  EXPECT_EQ(c2["choices"][0]["delta"], json::parse(R"({"content": "lo"})"));
  EXPECT_EQ(c2["choices"][0]["finish_reason"], "length");
  const std::string done = enc.Done();
  const size_t split = done.find("\n\ndata: [DONE]\n\n");
  ASSERT_NE(split, std::string::npos);
  json usage = json::parse(done.substr(6, split - 6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
  EXPECT_EQ(usage["usage"]["total_tokens"], 6);
  // Nothing new and no finish: no event.
  EXPECT_EQ(enc.Encode(v1::GenerateDelta()), "");
}

TEST(OpenAiApi, RerankIsARecommendRankedByMeanLogprob) {
  StatusOr<RerankCall> call = ParseRerank(
      R"({"model": "m", "query": "tent", "documents": ["a", {"text": "b"}], "top_n": 1, "return_documents": true})");
  ASSERT_TRUE(call.ok()) << call.status().message();
  EXPECT_EQ(call->request.context(), "tent");
  ASSERT_EQ(call->request.candidates_size(), 2);
  EXPECT_EQ(call->request.candidates(1).item_id(), 1u);
  EXPECT_EQ(call->request.candidates(1).text(), "b");
  EXPECT_EQ(call->request.top_k(), 1);
  EXPECT_TRUE(call->request.score_by_mean());
  EXPECT_EQ(call->request.encoding(), v1::RESPONSE_ENCODING_PLAIN);
  v1::RecommendResponse resp;
  v1::ScoredItem* item = resp.mutable_plain()->add_items();
  item->set_item_id(1);
  item->set_mean_logprob(-0.5);
  const json out = json::parse(RerankJson(*call, {"rerank-1", "m", 0}, resp));
  EXPECT_EQ(out["results"][0]["index"], 1);
  EXPECT_DOUBLE_EQ(out["results"][0]["relevance_score"].get<double>(), 0.60653065971263342);  // e^-0.5
  EXPECT_EQ(out["results"][0]["document"]["text"], "b");
  EXPECT_FALSE(ParseRerank(R"({"query": "q", "documents": "a"})").ok());
  EXPECT_NE(ParseRerank(R"({"query": "q", "documents": ["a"], "top_n": 0})").status().message().find("top_n"),
            std::string::npos);
}

}  // namespace
}  // namespace inferd::http
