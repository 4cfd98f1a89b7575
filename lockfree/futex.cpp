#include "lockfree/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

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
    default:
      return WaitResult::interrupted;  // EINTR: the caller re-checks and waits again
  }
}

WaitResult futex_wait_either(std::atomic<std::uint32_t>& a, std::uint32_t ea,
                             std::atomic<std::uint32_t>& b, std::uint32_t eb, Deadline deadline) {
  static std::atomic<bool> unsupported{false};
  // relaxed: a cached answer about the kernel; recomputing it is harmless.
  if (!unsupported.load(std::memory_order_relaxed)) {
    futex_waitv waiters[2] = {
        {ea, reinterpret_cast<std::uintptr_t>(&a), FUTEX_32, 0},
        {eb, reinterpret_cast<std::uintptr_t>(&b), FUTEX_32, 0},
    };
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
    // Shared 32-bit futexes (FUTEX_32, without FUTEX_PRIVATE_FLAG); an absolute timeout on CLOCK_MONOTONIC.
    const long rc = ::syscall(SYS_futex_waitv, waiters, 2, 0, timeout, CLOCK_MONOTONIC);
    if (rc >= 0) return WaitResult::woken;
    switch (errno) {
      case EAGAIN:
        return WaitResult::changed;
      case ETIMEDOUT:
        return WaitResult::timed_out;
      case EINTR:
        return WaitResult::interrupted;
      default:  // ENOSYS (an old kernel), EPERM (a seccomp filter), ...: never try it again
        unsupported.store(true, std::memory_order_relaxed);  // relaxed: as above
        break;
    }
  }
  // An old kernel: sleep on `a`, and look at `b` every millisecond.
  if (b.load(std::memory_order_acquire) != eb) return WaitResult::changed;  // acquire: as a wake
  return futex_wait(a, ea, std::min(deadline, Clock::now() + std::chrono::milliseconds(1)));
}

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, count,
                            nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace bloccs::lockfree
