#include "daemon/thread_priority.h"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

namespace inferd::daemon {

Status SetThisThreadPriority(const std::string& priority) {
  if (priority == "normal") return Status::Ok();
  if (priority == "low") {
    const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
    if (::setpriority(PRIO_PROCESS, tid, 19) != 0) {
      return Internal(std::string("setpriority(nice 19): ") + std::strerror(errno));
    }
    return Status::Ok();
  }
  if (priority == "idle") {
    sched_param param{};
    param.sched_priority = 0;
    if (::sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
      return Internal(std::string("sched_setscheduler(SCHED_IDLE): ") + std::strerror(errno));
    }
    return Status::Ok();
  }
  return InvalidArgument("thread priority '" + priority + "' (expected low, idle or normal)");
}

Status RunAtPriority(const std::string& priority, const std::function<void()>& fn) {
  Status lowered = Status::Ok();
  std::exception_ptr error;
  std::thread t([&] {
    lowered = SetThisThreadPriority(priority);
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  if (error) std::rethrow_exception(error);
  return lowered;
}

}  // namespace inferd::daemon
