// SPDX-License-Identifier: Apache-2.0
// Shared futex wait/wake on a 32-bit word that lives in shared memory.
//
// The protocol every parking site in bloccs follows (Drepper, "Futexes Are Tricky"), on a
// WaitLine in shared memory:
//   waiter:  1. e = epoch.load()               the wake epoch you are about to sleep on
//            2. armed.exchange(1)              announce: the next waker must wake (seq_cst)
//            3. re-check the condition         (seq_cst) it may have changed since you looked
//            4. if still unmet: futex_wait(epoch, e, deadline)
//   waker:   1. make the condition true, then a seq_cst fence
//            2. if armed: armed.exchange(0), epoch += 1, futex_wake(epoch)
// Steps 2 and 3 of the waiter and 1 and 2 of the waker form a Dekker pair: either the waiter
// sees the condition, or the waker sees it armed and bumps the epoch, so futex_wait returns at
// once (epoch != e) or is woken. Reading e before arming matters: a waker that disarms us bumps
// the epoch after our read, so we cannot sleep on an epoch nobody will bump again. No wake-up is
// lost, and a waker that finds nobody armed makes no system call. The waker disarms: a waiter that
// died parked costs one needless wake, not one per push for ever, and of several racing wakers only
// one makes the call.
//
// Where the wakers are a ring's pushers, step 1 of the waker is a light fence and the waiter makes
// a heavy one between its steps 2 and 3 (Wakers::light; asymmetric_fence.hpp): the pair holds all
// the same, and a push pays no fence for a consumer that is rarely asleep.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

#include "bloccs/deadline.hpp"
#include "lockfree/asymmetric_fence.hpp"

namespace bloccs::lockfree {

// Absolute deadlines on CLOCK_MONOTONIC (bloccs/deadline.hpp).
using bloccs::Clock;
using bloccs::Deadline;
using bloccs::kNoDeadline;
inline constexpr Deadline kDontWait = Deadline::min();  // give up at once instead of waiting

// fault: the word's page is gone (its segment was cut short under us): the mapping is marked
// damaged (shm/fence.hpp), and the caller's next look at it says so.
enum class WaitResult { woken, changed, timed_out, interrupted, fault };

// Sleeps while `word` still holds `expected`, until woken or `deadline` passes. Shared (not
// FUTEX_PRIVATE): the word may be mapped by other processes.
WaitResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Deadline deadline);

// Sleeps while `a` holds `ea` and `b` holds `eb` (futex_waitv, Linux 5.16+; where the kernel
// or a seccomp filter refuses it, it sleeps on `a` and looks at `b` every millisecond).
WaitResult futex_wait_either(std::atomic<std::uint32_t>& a, std::uint32_t ea,
                             std::atomic<std::uint32_t>& b, std::uint32_t eb, Deadline deadline);

// Sleeps while every words[i] still holds expected[i] (futex_waitv, up to kMaxWaitAny words;
// where the kernel refuses it, it sleeps on the first and looks at the others every millisecond).
inline constexpr std::size_t kMaxWaitAny = 128;  // FUTEX_WAITV_MAX
WaitResult futex_wait_any(std::span<std::atomic<std::uint32_t>* const> words,
                          std::span<const std::uint32_t> expected, Deadline deadline);

// Wakes up to `count` sleepers on `word`; returns how many were woken.
int futex_wake(std::atomic<std::uint32_t>& word, int count);

// A parking spot in shared memory; the enclosing layout gives it a cache line of its own.
struct WaitLine {
  std::atomic<std::uint32_t> waiters;  // parked right now (for people; a dead waiter leaves +1)
  std::atomic<std::uint32_t> epoch;    // the futex word; bumped by a waker
  std::atomic<std::uint32_t> armed;    // 1: someone may be asleep on epoch
  std::uint32_t reserved;
};
static_assert(sizeof(WaitLine) == 16);

// Who wakes a waiter, and so how its re-check (step 3) is ordered after its announcement.
enum class Wakers {
  fenced,  // every waker fences between its publish and its look (waker step 1)
  // Wakers on the hot path (a ring's pushers) use light fences (asymmetric_fence.hpp): the
  // waiter makes a heavy fence between arming and re-checking instead. Where the kernel refuses
  // one, the waiter sleeps at most kLightWakerRecheck before it looks again.
  light,
};
inline constexpr auto kLightWakerRecheck = std::chrono::milliseconds(1);

// Waiter steps 1 to 4: sleeps on `line` (and on `other` too, if given: a waker of either ends
// the sleep) until woken or `until`, unless `ready()` (which must load with seq_cst) already
// holds. Returns what `ready()` said; the caller re-checks anyway. A caller that parks again
// and again (looking at something else in between) counts itself in `waiters` once for the
// whole wait (WaiterCount) and passes count = false.
template <class Ready>
bool park(WaitLine& line, Ready&& ready, Deadline until, WaitLine* other = nullptr,
          bool count = true, Wakers wakers = Wakers::fenced) {
  // relaxed: statistics.
  if (count) line.waiters.fetch_add(1, std::memory_order_relaxed);
  if (other) other->waiters.fetch_add(1, std::memory_order_relaxed);
  // acquire: an epoch bump comes after the publish it announces. Read before arming (above).
  const std::uint32_t epoch = line.epoch.load(std::memory_order_acquire);
  const std::uint32_t other_epoch = other ? other->epoch.load(std::memory_order_acquire) : 0;
  // seq_cst: announce before the re-check (Dekker with the waker's fence).
  line.armed.exchange(1, std::memory_order_seq_cst);
  if (other) other->armed.exchange(1, std::memory_order_seq_cst);
  if (wakers == Wakers::light && !heavy_fence())
    until = std::min(until, Clock::now() + kLightWakerRecheck);
  const bool was_ready = ready();
  if (!was_ready && Clock::now() < until) {
    if (other)
      futex_wait_either(line.epoch, epoch, other->epoch, other_epoch, until);
    else
      futex_wait(line.epoch, epoch, until);
  }
  if (count) line.waiters.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a statistic
  if (other) other->waiters.fetch_sub(1, std::memory_order_relaxed);
  return was_ready;
}

// Waiter steps 1 to 4 on several lines at once: a waker of any of them ends the sleep. For a
// consumer of several rings (bloccs::wait_any); at most kMaxWaitAny lines.
template <class Ready>
bool park_any(std::span<WaitLine* const> lines, Ready&& ready, Deadline until,
              Wakers wakers = Wakers::fenced) {
  std::atomic<std::uint32_t>* words[kMaxWaitAny];
  std::uint32_t epochs[kMaxWaitAny];
  const std::size_t n = std::min(lines.size(), kMaxWaitAny);
  for (std::size_t i = 0; i < n; ++i) {
    lines[i]->waiters.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    // acquire: an epoch bump comes after the publish it announces. Read before arming.
    epochs[i] = lines[i]->epoch.load(std::memory_order_acquire);
    words[i] = &lines[i]->epoch;
  }
  // seq_cst: announce on every line before the re-check (Dekker with each waker's fence).
  for (std::size_t i = 0; i < n; ++i) lines[i]->armed.exchange(1, std::memory_order_seq_cst);
  if (wakers == Wakers::light && !heavy_fence())
    until = std::min(until, Clock::now() + kLightWakerRecheck);
  const bool was_ready = ready();
  if (!was_ready && Clock::now() < until) futex_wait_any({words, n}, {epochs, n}, until);
  for (std::size_t i = 0; i < n; ++i)
    lines[i]->waiters.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a statistic
  return was_ready;
}

// Counts a waiter in `line.waiters` for its lifetime (see park's `count`).
class WaiterCount {
 public:
  explicit WaiterCount(WaitLine& line) : line_(line) {
    line_.waiters.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }
  ~WaiterCount() { line_.waiters.fetch_sub(1, std::memory_order_relaxed); }  // relaxed: ditto
  WaiterCount(const WaiterCount&) = delete;
  WaiterCount& operator=(const WaiterCount&) = delete;

 private:
  WaitLine& line_;
};

// Waker step 2, after the caller's publish and seq_cst fence. (A caller that published with a
// seq_cst read-modify-write instead passes armed_order = seq_cst and needs no fence: its RMW and
// this load are then both in the single total order the waiter's arm and re-check are in.)
inline void wake(WaitLine& line, int count,
                 std::memory_order armed_order = std::memory_order_relaxed) {
  // relaxed: the caller's seq_cst fence already orders this load after its publish.
  if (line.armed.load(armed_order) == 0) return;
  // acq_rel: exactly one of several racing wakers takes the armed flag and makes the call.
  if (line.armed.exchange(0, std::memory_order_acq_rel) == 0) return;
  // release: a waiter that reads the new epoch also sees what was published before it.
  line.epoch.fetch_add(1, std::memory_order_release);
  futex_wake(line.epoch, count);
}

}  // namespace bloccs::lockfree
