// ThreadSanitizer build only (INFERD_TSAN; linked whole into every executable that links gRPC, see
// CMakeLists.txt). Debian's gRPC and abseil are not instrumented, so TSan sees neither their locks nor that a
// completion queue hands a tag to a thread only after another thread started the batch that carries it: the
// gRPC C++ code inlined into our objects (CallOpSet::FillOps before the batch, FinalizeResult after the tag
// comes back; objects gRPC allocates on one thread and hands to another under an absl::Mutex) then looks like
// a data race. These definitions interpose, in the executable (the shared libraries call them through the PLT,
// so the executable's definitions win), the entry points that carry that ordering and tell TSan about it:
//   - grpc_call_start_batch / grpc_server_request_*call: release on the tag; grpc_completion_queue_next /
//     _pluck: acquire on the tag of a completed event;
//   - absl::Mutex (which gpr_mu and grpc_core::Mutex wrap): acquire on the mutex after each lock, release
//     before each unlock and around each wait (CondVar::Wait*, Mutex::Await), as TSan does for pthread mutexes.
// That is the ordering these primitives guarantee, nothing stronger: no access is hidden, and a race between
// two of our accesses, or between ours and gRPC's inlined code, still reports.
#include <dlfcn.h>
#include <grpc/grpc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

// The next definition of `name` after the executable's (libgrpc's); aborts if there is none.
template <typename F>
F Next(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    std::fprintf(stderr, "tsan gRPC shim: %s not found after the executable\n", name);
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

void AcquireIfComplete(const grpc_event& ev) {
  if (ev.type == GRPC_OP_COMPLETE && ev.tag != nullptr) __tsan_acquire(ev.tag);
}

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops, size_t nops, void* tag, void* reserved) {
  static const auto next = Next<decltype(&grpc_call_start_batch)>("grpc_call_start_batch");
  if (tag != nullptr) __tsan_release(tag);
  return next(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(grpc_server* server, grpc_call** call, grpc_call_details* details,
                                         grpc_metadata_array* request_metadata, grpc_completion_queue* cq_bound_to_call,
                                         grpc_completion_queue* cq_for_notification, void* tag_new) {
  static const auto next = Next<decltype(&grpc_server_request_call)>("grpc_server_request_call");
  if (tag_new != nullptr) __tsan_release(tag_new);
  return next(server, call, details, request_metadata, cq_bound_to_call, cq_for_notification, tag_new);
}

grpc_call_error grpc_server_request_registered_call(grpc_server* server, void* registered_method, grpc_call** call,
                                                    gpr_timespec* deadline, grpc_metadata_array* request_metadata,
                                                    grpc_byte_buffer** optional_payload,
                                                    grpc_completion_queue* cq_bound_to_call,
                                                    grpc_completion_queue* cq_for_notification, void* tag_new) {
  static const auto next = Next<decltype(&grpc_server_request_registered_call)>("grpc_server_request_registered_call");
  if (tag_new != nullptr) __tsan_release(tag_new);
  return next(server, registered_method, call, deadline, request_metadata, optional_payload, cq_bound_to_call,
              cq_for_notification, tag_new);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq, gpr_timespec deadline, void* reserved) {
  static const auto next = Next<decltype(&grpc_completion_queue_next)>("grpc_completion_queue_next");
  grpc_event ev = next(cq, deadline, reserved);
  AcquireIfComplete(ev);
  return ev;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag, gpr_timespec deadline, void* reserved) {
  static const auto next = Next<decltype(&grpc_completion_queue_pluck)>("grpc_completion_queue_pluck");
  grpc_event ev = next(cq, tag, deadline, reserved);
  AcquireIfComplete(ev);
  return ev;
}

}  // extern "C"

// absl::debian3 (Debian's abseil 20220623) by mangled name: the argument layouts are those of the methods'
// `this`, `const Condition&`, `Mutex*` and by-value Duration / Time ({int64 hi, uint32 lo}, trivially
// copyable, so passed in registers like this struct).
namespace {

struct AbslDuration {
  int64_t rep_hi;
  uint32_t rep_lo;
};

}  // namespace

#define INFERD_ABSL_VOID(name, mangled, params, args, before, after) \
  extern "C" void name params __asm__(mangled);                      \
  extern "C" void name params {                                      \
    static const auto next = Next<void(*) params>(mangled);          \
    before;                                                          \
    next args;                                                       \
    after;                                                           \
  }
#define INFERD_ABSL_BOOL(name, mangled, params, args, before, after) \
  extern "C" bool name params __asm__(mangled);                      \
  extern "C" bool name params {                                      \
    static const auto next = Next<bool(*) params>(mangled);          \
    before;                                                          \
    const bool r = next args;                                        \
    after;                                                           \
    return r;                                                        \
  }

// Lock-type calls: acquire after. TryLock-type: acquire if taken.
INFERD_ABSL_VOID(InferdAbslLock, "_ZN4absl7debian35Mutex4LockEv", (void* mu), (mu), (void)0, __tsan_acquire(mu))
INFERD_ABSL_VOID(InferdAbslReaderLock, "_ZN4absl7debian35Mutex10ReaderLockEv", (void* mu), (mu), (void)0,
                 __tsan_acquire(mu))
INFERD_ABSL_VOID(InferdAbslLockWhen, "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE", (void* mu, void* c), (mu, c),
                 (void)0, __tsan_acquire(mu))
INFERD_ABSL_VOID(InferdAbslReaderLockWhen, "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE",
                 (void* mu, void* c), (mu, c), (void)0, __tsan_acquire(mu))
INFERD_ABSL_BOOL(InferdAbslTryLock, "_ZN4absl7debian35Mutex7TryLockEv", (void* mu), (mu), (void)0,
                 if (r) __tsan_acquire(mu))
INFERD_ABSL_BOOL(InferdAbslReaderTryLock, "_ZN4absl7debian35Mutex13ReaderTryLockEv", (void* mu), (mu), (void)0,
                 if (r) __tsan_acquire(mu))
// Unlocks: release before.
INFERD_ABSL_VOID(InferdAbslUnlock, "_ZN4absl7debian35Mutex6UnlockEv", (void* mu), (mu), __tsan_release(mu), (void)0)
INFERD_ABSL_VOID(InferdAbslReaderUnlock, "_ZN4absl7debian35Mutex12ReaderUnlockEv", (void* mu), (mu), __tsan_release(mu),
                 (void)0)
// Waits give the mutex up and take it back: release before, acquire after.
INFERD_ABSL_VOID(InferdAbslAwait, "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE", (void* mu, void* c), (mu, c),
                 __tsan_release(mu), __tsan_acquire(mu))
INFERD_ABSL_VOID(InferdAbslCondVarWait, "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE", (void* cv, void* mu), (cv, mu),
                 __tsan_release(mu), __tsan_acquire(mu))
INFERD_ABSL_BOOL(InferdAbslCondVarWaitWithTimeout,
                 "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE",
                 (void* cv, void* mu, AbslDuration d), (cv, mu, d), __tsan_release(mu), __tsan_acquire(mu))
INFERD_ABSL_BOOL(InferdAbslCondVarWaitWithDeadline, "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE",
                 (void* cv, void* mu, AbslDuration t), (cv, mu, t), __tsan_release(mu), __tsan_acquire(mu))
