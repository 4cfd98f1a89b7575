// Who is alive: a process identity that survives pid reuse.
//
// A pid alone is not an identity: the kernel hands a freed pid to the next process. Pairing it
// with the process start time (field 22 of /proc/<pid>/stat, clock ticks since boot) is.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace bloccs::shm {

struct ProcessId {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // 0 = unknown
  friend bool operator==(const ProcessId&, const ProcessId&) = default;
};

// The calling process (start time read once and cached; refreshed after fork).
ProcessId self_process();

// The start time of `pid`, or 0 if it does not exist or is a zombie (a SIGKILLed child that
// was not reaped yet has not run since it died; it counts as dead).
std::uint64_t process_start_time(pid_t pid);

// True if the process `id` names is still running (same pid, same start time, not a zombie).
bool is_alive(const ProcessId& id);

}  // namespace bloccs::shm
