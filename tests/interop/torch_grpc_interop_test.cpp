#include <ATen/ATen.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "inferd/v1/inferd.grpc.pb.h"

namespace {

// Answers Recommend by scoring candidates with a tensor op, so one RPC exercises all three libraries.
class TensorService final : public inferd::v1::Inference::Service {
  grpc::Status Recommend(grpc::ServerContext*, const inferd::v1::RecommendRequest* req,
                         inferd::v1::RecommendResponse* resp) override {
    const int64_t n = req->candidates_size();
    at::Tensor ids = at::empty({n}, at::kLong);
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int64_t>(req->candidates(i).item_id());
    at::Tensor scores = at::matmul(ids.to(at::kFloat).unsqueeze(1), at::ones({1, 1})).squeeze(1) * -1.0;
    at::Tensor order = std::get<1>(scores.sort(/*dim=*/0, /*descending=*/true));
    for (int64_t i = 0; i < n; ++i) {
      auto* item = resp->mutable_plain()->add_items();
      int64_t k = order[i].item<int64_t>();
      item->set_item_id(req->candidates(k).item_id());
      item->set_sum_logprob(scores[k].item<double>());
    }
    return grpc::Status::OK;
  }
};

TEST(TorchGrpcInterop, TensorOpInsideLoopbackRpc) {
  grpc::EnableDefaultHealthCheckService(true);
  TensorService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);

  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = inferd::v1::Inference::NewStub(channel);
  inferd::v1::RecommendRequest req;
  for (uint64_t id : {5u, 1u, 9u, 3u}) req.add_candidates()->set_item_id(id);
  inferd::v1::RecommendResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub->Recommend(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.plain().items_size(), 4);
  std::vector<uint64_t> ranked;
  for (const auto& it : resp.plain().items()) ranked.push_back(it.item_id());
  EXPECT_EQ(ranked, (std::vector<uint64_t>{1, 3, 5, 9}));
  EXPECT_DOUBLE_EQ(resp.plain().items(0).sum_logprob(), -1.0);

  // Protobuf serialisation round trip in the same process.
  std::string wire = resp.SerializeAsString();
  inferd::v1::RecommendResponse back;
  ASSERT_TRUE(back.ParseFromString(wire));
  EXPECT_EQ(back.plain().items(3).item_id(), 9u);
  server->Shutdown();
}

}  // namespace

namespace {

// libtorch_cpu.so exports a private copy of std::filesystem; binaries must bind to libstdc++'s
// (cmake/Torch.cmake). With the wrong binding remove_all crashes.
TEST(TorchStdlibInterop, FilesystemCallsBindToLibstdcxx) {
  at::Tensor t = at::arange(4);
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("inferd-fs-" + std::to_string(::getpid()));
  fs::create_directories(dir / "a" / "b");
  std::ofstream(dir / "a" / "b" / "f.txt") << "x";
  EXPECT_TRUE(fs::exists(dir / "a" / "b" / "f.txt"));
  EXPECT_EQ(fs::remove_all(dir), 4u);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(t.sum().item<int64_t>(), 6);
}

}  // namespace
