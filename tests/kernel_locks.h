// Whether the kernel sees this process's mlock calls. The sanitizer runtimes intercept mlock and munlock as
// no-ops that return 0 (sanitizer_common), so under ASan or TSan VmLck cannot confirm what was locked.
#pragma once

namespace inferd_test {

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define INFERD_MLOCK_INTERCEPTED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define INFERD_MLOCK_INTERCEPTED 1
#endif
#ifdef INFERD_MLOCK_INTERCEPTED
inline constexpr bool kKernelSeesLocks = false;
#else
inline constexpr bool kKernelSeesLocks = true;
#endif

}  // namespace inferd_test
