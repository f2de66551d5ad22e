// Scheduling priority of a reload's background threads (control.reload_priority): the new model's load and
// warm-up run beside the serving model and must leave it the cores.
//   "low"    nice 19 (setpriority on the thread's own id)
//   "idle"   SCHED_IDLE (runs only on a core nothing else wants)
//   "normal" unchanged
// Linux applies both per thread, and a thread inherits them from the thread that creates it, so every
// thread a lowered thread starts (an engine thread, OpenMP workers) is lowered too. An
// unprivileged thread cannot raise its own priority again: what must serve at normal priority afterwards is
// restarted from a normal thread (Engine::RestartThread).
#pragma once

#include <functional>
#include <string>

#include "inferd/status.h"

namespace inferd::daemon {

// Sets the calling thread's priority. INVALID_ARGUMENT for an unknown name, INTERNAL naming the call and errno
// when the kernel refuses.
Status SetThisThreadPriority(const std::string& priority);

// Runs `fn` on a new thread set to `priority` and waits for it; what fn throws is rethrown here. The calling
// thread's priority is untouched. When setting the priority fails, fn still runs (at the caller's priority)
// and the failure is returned.
Status RunAtPriority(const std::string& priority, const std::function<void()>& fn);

}  // namespace inferd::daemon
