#include "server/inference_service.h"

namespace inferd::server {
namespace {
grpc::Status NotWired(const char* rpc) {
  return {grpc::StatusCode::UNIMPLEMENTED, std::string(rpc) + ": no model engine is attached to this server yet"};
}
}  // namespace

grpc::Status InferenceService::Generate(grpc::ServerContext*, const v1::GenerateRequest*, v1::GenerateResponse*) {
  return NotWired("Generate");
}
grpc::Status InferenceService::GenerateStream(grpc::ServerContext*, const v1::GenerateRequest*,
                                              grpc::ServerWriter<v1::GenerateDelta>*) {
  return NotWired("GenerateStream");
}
grpc::Status InferenceService::Recommend(grpc::ServerContext*, const v1::RecommendRequest*, v1::RecommendResponse*) {
  return NotWired("Recommend");
}
grpc::Status InferenceService::Feedback(grpc::ServerContext*, const v1::FeedbackRequest*, v1::FeedbackResponse*) {
  return NotWired("Feedback");
}

}  // namespace inferd::server
