// SPDX-License-Identifier: Apache-2.0
#include "lockfree/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <ctime>

#include "shm/fence.hpp"

namespace bloccs::lockfree {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

WaitResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline) {
  timespec ts{};
  timespec* timeout = nullptr;
  if (deadline != kNoDeadline) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    if (ns <= 0) return WaitResult::timed_out;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    if (Clock::now() >= deadline) return WaitResult::timed_out;
    timeout = &ts;
  }
  // FUTEX_WAIT_BITSET takes an absolute timeout, on CLOCK_MONOTONIC unless told otherwise.
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET,
                            expected, timeout, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return WaitResult::woken;
  switch (errno) {
    case EAGAIN:
      return WaitResult::changed;
    case ETIMEDOUT:
      return WaitResult::timed_out;
    case EFAULT:
      shm::fence_mark(&word);
      return WaitResult::fault;
    default:
      return WaitResult::interrupted;  // EINTR: the caller re-checks and waits again
  }
}

WaitResult futex_wait_either(std::atomic<std::uint32_t>& a, std::uint32_t ea,
                             std::atomic<std::uint32_t>& b, std::uint32_t eb, Deadline deadline) {
  std::atomic<std::uint32_t>* words[2] = {&a, &b};
  const std::uint32_t expected[2] = {ea, eb};
  return futex_wait_any(words, expected, deadline);
}

WaitResult futex_wait_any(std::span<std::atomic<std::uint32_t>* const> words,
                          std::span<const std::uint32_t> expected, Deadline deadline) {
  static std::atomic<bool> unsupported{false};
  const std::size_t n = std::min({words.size(), expected.size(), kMaxWaitAny});
  if (n == 0) return WaitResult::changed;
  // relaxed: a cached answer about the kernel; recomputing it is harmless.
  if (!unsupported.load(std::memory_order_relaxed)) {
    futex_waitv waiters[kMaxWaitAny];
    for (std::size_t i = 0; i < n; ++i)
      waiters[i] = {expected[i], reinterpret_cast<std::uintptr_t>(words[i]), FUTEX_32, 0};
    timespec ts{};
    timespec* timeout = nullptr;
    if (deadline != kNoDeadline) {
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
      if (ns <= 0 || Clock::now() >= deadline) return WaitResult::timed_out;
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      timeout = &ts;
    }
    // Shared 32-bit futexes (FUTEX_32, without FUTEX_PRIVATE_FLAG); an absolute timeout on
    // CLOCK_MONOTONIC.
    const long rc = ::syscall(SYS_futex_waitv, waiters, n, 0, timeout, CLOCK_MONOTONIC);
    if (rc >= 0) return WaitResult::woken;
    switch (errno) {
      case EAGAIN:
        return WaitResult::changed;
      case ETIMEDOUT:
        return WaitResult::timed_out;
      case EINTR:
        return WaitResult::interrupted;
      case EFAULT:
        for (std::size_t i = 0; i < n; ++i) shm::fence_mark(words[i]);
        return WaitResult::fault;
      default:  // ENOSYS (an old kernel), EPERM (a seccomp filter), ...: never try it again
        unsupported.store(true, std::memory_order_relaxed);  // relaxed: as above
        break;
    }
  }
  // An old kernel: sleep on the first word, and look at the others every millisecond.
  for (std::size_t i = 1; i < n; ++i)
    if (words[i]->load(std::memory_order_acquire) != expected[i])  // acquire: as a wake
      return WaitResult::changed;
  return futex_wait(*words[0], expected[0],
                    std::min(deadline, Clock::now() + std::chrono::milliseconds(1)));
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, count,
                            nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace bloccs::lockfree
