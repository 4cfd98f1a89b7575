// SPDX-License-Identifier: Apache-2.0
// Who is alive: a lock in shared memory that the kernel lets go of when its holder dies.
//
// A LivenessLock is a robust, process-shared pthread mutex. Its holder's thread id sits in the
// lock word; when that thread ends for any reason (exit, SIGKILL, or an execve of its process,
// which ends every thread), the kernel clears the id and sets FUTEX_OWNER_DIED. So "the lock
// word names a thread" is "the holding process still runs the program that took it", read with
// one load, whatever pid namespace either process is in, and never fooled by pid reuse or exec.
//
// The holder is the process, not a thread: a HeldLock asks one of the process's keeper threads
// (a few, made on first use, sleeping until asked, with every signal blocked) to lock the mutex
// and to hold it until the HeldLock lets go. A keeper holds at most kHeldPerKeeper locks (the
// kernel walks at most 2048 robust locks of a dying thread), and another is made when all are
// full. Every lock and unlock of one mutex happens on one keeper, so the robust list glibc keeps
// per thread is never left pointing into an unmapped segment: a HeldLock must go before the
// mapping it lives in. A forked child holds none of its parent's locks.
#pragma once

#include <linux/futex.h>
#include <pthread.h>

#include <atomic>

#include <string>
#include <string_view>

#include "shm/pipeline_export.hpp"
#include "bloccs/result.hpp"

namespace bloccs::shm {

struct LivenessLock {
  pthread_mutex_t mutex;  // robust, process-shared; never touched but through this file
};
static_assert(sizeof(LivenessLock) == 40);

// Prepares a lock in fresh (zeroed) shared memory; `what` names it in the error.
BLOCCS_FOR_PIPELINE Status init_liveness_lock(LivenessLock& lock, std::string_view what);

// True while a running process holds the lock (one relaxed load; a peer that scribbled on the
// word can make it lie, never crash anyone).
inline bool held(const LivenessLock& lock) noexcept {
  // The lock word is glibc's robust-mutex futex word (kernel ABI: holder tid | flags).
  // relaxed: a flag that orders nothing; the kernel clears the tid bits when the holder dies.
  return (std::atomic_ref<int>(const_cast<int&>(lock.mutex.__data.__lock))
              .load(std::memory_order_relaxed) &
          FUTEX_TID_MASK) != 0;
}

class BLOCCS_FOR_PIPELINE HeldLock {
 public:
  // Makes this process the lock's holder. Errc::already_exists if a running process holds it
  // (this one included); Errc::corrupt if the word is not a lock that init_liveness_lock made
  // (a peer overwrote it). `took_over()` tells whether its last holder had died holding it.
  static Result<HeldLock> take(LivenessLock& lock, std::string_view what);

  HeldLock() = default;
  HeldLock(HeldLock&& other) noexcept;
  HeldLock& operator=(HeldLock&& other) noexcept;
  HeldLock(const HeldLock&) = delete;
  HeldLock& operator=(const HeldLock&) = delete;
  ~HeldLock() { release(); }

  // Lets go (waits for the keeper to unlock it). Idempotent. In a forked child, forgets it.
  void release() noexcept;
  // True if this process holds it (a forked child's copy is its parent's: false).
  bool holds() const noexcept;
  bool took_over() const noexcept { return took_over_; }

 private:
  LivenessLock* lock_ = nullptr;
  void* keeper_ = nullptr;  // the keeper thread that holds it
  unsigned fork_generation_ = 0;
  bool took_over_ = false;
};

}  // namespace bloccs::shm
