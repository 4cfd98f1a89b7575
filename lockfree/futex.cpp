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

int futex_wake(std::atomic<std::uint32_t>& word, int count) {
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, count,
                            nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

}  // namespace bloccs::lockfree
