// Shared futex wait/wake on a 32-bit word that lives in shared memory.
//
// The protocol every parking site in bloccs follows (Drepper, "Futexes Are Tricky"):
//   waiter:  1. waiters.fetch_add(1)            announce yourself (seq_cst)
//            2. e = word.load()                 the wake epoch you are about to sleep on
//            3. re-check the condition          (seq_cst) it may have changed since you looked
//            4. if still unmet: futex_wait(word, e, deadline)
//            5. waiters.fetch_sub(1)
//   waker:   1. make the condition true         (seq_cst store)
//            2. if waiters.load() != 0:         (seq_cst) no system call when nobody waits
//                 word.fetch_add(1); futex_wake(word)
// Steps 1 and 3 of the waiter and 1 and 2 of the waker form a Dekker pair: under seq_cst either
// the waiter sees the condition, or the waker sees the waiter and bumps the word, so
// futex_wait either returns at once (word != e) or is woken. No wake-up is lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace bloccs::lockfree {

// Absolute deadlines on CLOCK_MONOTONIC (steady_clock on Linux).
using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();

enum class WaitResult { woken, changed, timed_out, interrupted };

// Sleeps while `word` still holds `expected`, until woken or `deadline` passes. Shared (not
// FUTEX_PRIVATE): the word may be mapped by other processes.
WaitResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline);

// Wakes up to `count` sleepers on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count);

// Bumps the epoch and wakes sleepers, if any announced themselves in `waiters`.
inline void wake_if_waiting(const std::atomic<std::uint32_t>& waiters,
                            std::atomic<std::uint32_t>& epoch, int count) {
  // seq_cst: orders this load after the caller's seq_cst publish (Dekker, see above).
  if (waiters.load(std::memory_order_seq_cst) == 0) return;
  // release: a waiter that reads the new epoch also sees what was published before it.
  epoch.fetch_add(1, std::memory_order_release);
  futex_wake(epoch, count);
}

}  // namespace bloccs::lockfree
