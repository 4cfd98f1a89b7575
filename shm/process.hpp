// SPDX-License-Identifier: Apache-2.0
// A process identity for people: pid and start time (field 22 of /proc/<pid>/stat).
//
// bloccs decides who is alive by liveness locks (shm/liveness.hpp), which a pid cannot give:
// a pid is another process's in another pid namespace, and survives an exec. The pid and start
// time stay in headers and registry slots for messages and tools; is_alive() is for tests and
// for watching child processes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "shm/pipeline_export.hpp"

namespace bloccs::shm {

struct ProcessId {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // 0 = unknown
  friend bool operator==(const ProcessId&, const ProcessId&) = default;
};

// The calling process. Its start time is read once and cached (and read again after a fork);
// it is 0 if /proc could not be read, and then not cached.
BLOCCS_FOR_PIPELINE ProcessId self_process();

// True if the process `id` names may still be running: same pid, and the same start time in
// the bits `start_mask` keeps (0 in `id` matches any). A zombie (killed, not yet reaped) is
// dead. When /proc cannot tell (too many open files, hidepid), kill(pid, 0) decides and an
// existing pid counts as alive: mistaking a live process for a dead one would cost messages,
// the opposite mistake only a wait.
bool is_alive(const ProcessId& id, std::uint64_t start_mask = ~std::uint64_t{0});

namespace detail {
extern std::atomic<std::uint32_t> fork_generation_counter;
}

// Counts the forks this process descends from (bumped in the child by a pthread_atfork
// handler). A handle that remembers it at open can tell it was inherited across a fork: its
// slot and its role belong to the parent.
inline std::uint32_t fork_generation() noexcept {
  // relaxed: only this process's own threads (and its fork handler) ever touch it.
  return detail::fork_generation_counter.load(std::memory_order_relaxed);
}

}  // namespace bloccs::shm
