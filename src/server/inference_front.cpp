#include "server/inference_front.h"

#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>
#include <spdlog/spdlog.h>

#include <unordered_map>
#include <utility>

namespace inferd::server {
namespace {

constexpr int kMaxNesting = 32;

// Finds a string field of `desc` whose wire bytes in `data` are not valid UTF-8. Fills the field path
// ("messages.messages[1].role") and the byte offset inside that field.
bool FindInvalidUtf8Field(std::string_view data, const google::protobuf::Descriptor* desc, int depth, std::string* path,
                          size_t* offset) {
  google::protobuf::UnknownFieldSet fields;
  if (!fields.ParseFromArray(data.data(), static_cast<int>(data.size()))) return false;
  std::unordered_map<int, int> occurrences;
  for (int i = 0; i < fields.field_count(); ++i) {
    const google::protobuf::UnknownField& f = fields.field(i);
    const int index = occurrences[f.number()]++;
    if (f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const google::protobuf::FieldDescriptor* fd = desc->FindFieldByNumber(f.number());
    if (fd == nullptr) continue;
    std::string name = fd->name();
    if (fd->is_repeated()) name += "[" + std::to_string(index) + "]";
    if (fd->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
      const size_t bad = FindInvalidUtf8(f.length_delimited());
      if (bad != std::string_view::npos) {
        *path = name;
        *offset = bad;
        return true;
      }
    } else if (fd->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE && depth < kMaxNesting) {
      std::string inner;
      if (FindInvalidUtf8Field(f.length_delimited(), fd->message_type(), depth + 1, &inner, offset)) {
        *path = name + "." + inner;
        return true;
      }
    }
  }
  return false;
}

grpc::Status Bounded(grpc::Status st) {
  if (st.error_message().size() <= kMaxErrorMessageBytes) return st;
  return {st.error_code(), BoundMessage(st.error_message()), st.error_details()};
}

std::string Flatten(const grpc::ByteBuffer& bytes, bool* ok) {
  std::vector<grpc::Slice> slices;
  *ok = bytes.Dump(&slices).ok();
  std::string out;
  out.reserve(bytes.Length());
  for (const grpc::Slice& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

constexpr const char* kRetryAfterKey = "retry-after-ms";

}  // namespace

Status ParseRequest(const std::string& bytes, google::protobuf::Message* msg) {
  if (msg->ParseFromString(bytes)) return Status::Ok();
  std::string path;
  size_t offset = 0;
  if (FindInvalidUtf8Field(bytes, msg->GetDescriptor(), 0, &path, &offset)) {
    return InvalidArgument(path + ": not valid UTF-8 (byte offset " + std::to_string(offset) +
                           "); string fields must be UTF-8");
  }
  return InvalidArgument("request: " + std::to_string(bytes.size()) + " bytes do not parse as " +
                         msg->GetDescriptor()->full_name());
}

InferenceFront::InferenceFront(std::shared_ptr<const auth::Gate> gate, size_t max_blocking_threads)
    : gate_(std::move(gate)), blocking_(max_blocking_threads) {
  using grpc::internal::RpcMethod;
  using grpc::internal::RpcServiceMethod;
  using Unary = grpc::ServerContext*;
  AddMethod(
      new RpcServiceMethod("/inferd.v1.Inference/Generate", RpcMethod::NORMAL_RPC,
                           new grpc::internal::RpcMethodHandler<InferenceFront, grpc::ByteBuffer, v1::GenerateResponse>(
                               [](InferenceFront* f, Unary ctx, const grpc::ByteBuffer* in, v1::GenerateResponse* out) {
                                 return f->Handle<v1::GenerateRequest, v1::GenerateResponse>(
                                     ctx, *in, auth::Permission::kInference, "Generate", out);
                               },
                               this)));
  AddMethod(new RpcServiceMethod(
      "/inferd.v1.Inference/GenerateStream", RpcMethod::SERVER_STREAMING,
      new grpc::internal::ServerStreamingHandler<InferenceFront, grpc::ByteBuffer, v1::GenerateDelta>(
          [](InferenceFront* f, Unary ctx, const grpc::ByteBuffer* in, grpc::ServerWriter<v1::GenerateDelta>* out) {
            return f->Handle<v1::GenerateRequest, v1::GenerateDelta>(ctx, *in, auth::Permission::kInference,
                                                                     "GenerateStream", out);
          },
          this)));
  // Indices 2 and 3: the order of AddMethod.
  AddMethod(new RpcServiceMethod("/inferd.v1.Inference/Recommend", RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodCallback(
      2, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, v1::RecommendResponse>(
             [this](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, v1::RecommendResponse* out) {
               return HandleCallback<v1::RecommendRequest>(ctx, *in, auth::Permission::kInference, "Recommend", out);
             }));
  AddMethod(new RpcServiceMethod("/inferd.v1.Inference/Feedback", RpcMethod::NORMAL_RPC, nullptr));
  MarkMethodCallback(
      3, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, v1::FeedbackResponse>(
             [this](grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* in, v1::FeedbackResponse* out) {
               return HandleCallback<v1::FeedbackRequest>(ctx, *in, auth::Permission::kFeedback, "Feedback", out);
             }));
}

grpc::Status InferenceFront::Admit(grpc::ServerContextBase* ctx, auth::Permission needed, const char* rpc) {
  const auto& md = ctx->client_metadata();
  const auto it = md.find("authorization");
  const std::string_view header =
      it == md.end() ? std::string_view() : std::string_view(it->second.data(), it->second.size());
  const auth::Admission a = gate_->Admit(header, needed, rpc, auth::RateLimiter::Clock::now());
  if (a.status.ok()) return grpc::Status::OK;
  spdlog::debug("{} refused: {} (peer {})", rpc, a.status.ToString(), ctx->peer());
  if (a.retry_after.count() > 0) ctx->AddTrailingMetadata(kRetryAfterKey, std::to_string(a.retry_after.count()));
  return ToGrpcStatus(a.status);
}

grpc::Status InferenceFront::Prologue(grpc::ServerContextBase* ctx, const grpc::ByteBuffer& bytes,
                                      auth::Permission needed, const char* rpc, RpcMethod method,
                                      google::protobuf::Message* req, InferenceService** service) {
  *service = service_.load();
  if (grpc::Status st = Admit(ctx, needed, rpc); !st.ok()) {
    if (*service != nullptr) (*service)->RecordRefused(method, static_cast<StatusCode>(st.error_code()));
    return Bounded(std::move(st));
  }
  if (*service == nullptr) {
    return {grpc::StatusCode::UNAVAILABLE, "starting up: the models are loading (health reports NOT_SERVING)"};
  }
  bool dumped = false;
  const std::string raw = Flatten(bytes, &dumped);
  if (Status st = dumped ? ParseRequest(raw, req) : InvalidArgument("request: unreadable message bytes"); !st.ok()) {
    (*service)->RecordRefused(method, st.code());
    return ToGrpcStatus(st);
  }
  return grpc::Status::OK;
}

template <typename Req, typename Resp, typename Out>
grpc::Status InferenceFront::Handle(grpc::ServerContext* ctx, const grpc::ByteBuffer& bytes, auth::Permission needed,
                                    const char* rpc, Out* out) {
  const RpcMethod method =
      std::is_same_v<Resp, v1::GenerateResponse> ? RpcMethod::kGenerate : RpcMethod::kGenerateStream;
  InferenceService* service = nullptr;
  Req req;
  if (grpc::Status st = Prologue(ctx, bytes, needed, rpc, method, &req, &service); !st.ok()) return st;
  if constexpr (std::is_same_v<Resp, v1::GenerateResponse>) {
    return Bounded(service->Generate(ctx, &req, out));
  } else {
    return Bounded(service->GenerateStream(ctx, &req, out));
  }
}

template <typename Req, typename Resp>
grpc::ServerUnaryReactor* InferenceFront::HandleCallback(grpc::CallbackServerContext* ctx,
                                                         const grpc::ByteBuffer& bytes, auth::Permission needed,
                                                         const char* rpc, Resp* out) {
  constexpr RpcMethod method =
      std::is_same_v<Resp, v1::RecommendResponse> ? RpcMethod::kRecommend : RpcMethod::kFeedback;
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  InferenceService* service = nullptr;
  // Shared with the pool task when the call waits; released after Finish.
  auto req = std::make_shared<Req>();
  if (grpc::Status st = Prologue(ctx, bytes, needed, rpc, method, req.get(), &service); !st.ok()) {
    reactor->Finish(std::move(st));
    return reactor;
  }
  // Finish is the last thing done with ctx, out and the reactor: gRPC may free them right after it.
  auto done = [reactor, req](grpc::Status st) { reactor->Finish(Bounded(std::move(st))); };
  auto offload = [this](std::function<void()> task) { return blocking_.TrySubmit(std::move(task)); };
  if constexpr (method == RpcMethod::kRecommend) {
    service->RecommendCallback(ctx, req.get(), out, offload, std::move(done));
  } else {
    service->FeedbackCallback(ctx, req.get(), out, offload, std::move(done));
  }
  return reactor;
}

}  // namespace inferd::server
