// The inferd.v1.Inference service. Validates and decodes requests into native types at once.
#pragma once

#include "inferd/v1/inferd.grpc.pb.h"

namespace inferd::server {

class InferenceService final : public inferd::v1::Inference::Service {
 public:
  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                        v1::GenerateResponse* resp) override;
  grpc::Status GenerateStream(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                              grpc::ServerWriter<v1::GenerateDelta>* writer) override;
  grpc::Status Recommend(grpc::ServerContext* ctx, const v1::RecommendRequest* req,
                         v1::RecommendResponse* resp) override;
  grpc::Status Feedback(grpc::ServerContext* ctx, const v1::FeedbackRequest* req,
                        v1::FeedbackResponse* resp) override;
};

}  // namespace inferd::server
