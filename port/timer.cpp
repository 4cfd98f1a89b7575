// The owner's timer thread: carries out push_after.
//
// Requests arrive in the port's `later` ring; the thread keeps them in a heap by due time (a
// process-local copy, so the caller may exit at once) and, when one is due, pushes it into the
// port's `due` ring, which the consumer drains beside `in`. A port that holds `buffer` messages
// is full: the message stays in the heap and is tried again a millisecond later, never dropped.
// Each port has its own thread, so a full port delays no other port's timers.
#include <algorithm>
#include <cstring>
#include <queue>
#include <vector>

#include "port/port_impl.hpp"

namespace bloccs {
namespace {

constexpr auto kRetryInterval = std::chrono::milliseconds(1);
// At most this many messages wait in the heap (in this process's memory); more requests stay
// queued in `later` (shared memory, where they already are) until the heap has room.
constexpr std::size_t kHeldMax = 65536;
// After a failure to read `later` (no room in /dev/shm for its next link), look again this late.
constexpr auto kErrorBackoff = std::chrono::milliseconds(10);

struct Pending {
  Deadline due;
  std::uint64_t seq;               // ties keep arrival order
  std::vector<std::byte> message;  // meta + payload, as the consumer reads it
  bool operator>(const Pending& o) const { return due != o.due ? due > o.due : seq > o.seq; }
};

}  // namespace

void run_timer(Port::Impl& p, lockfree::RingPusher due_pusher, std::promise<int> locked) {
  port::PortControl& c = p.control();
  const int rc = pthread_mutex_lock(&c.owner.alive);
  locked.set_value(rc);
  if (rc != 0) return;

  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> heap;
  std::uint64_t seq = 0;
  Deadline retry_at{};
  const lockfree::AlsoReady stop_requested{
      [](const void* flag) {
        // seq_cst: AlsoReady's contract (the waiter's Dekker re-check).
        return static_cast<const std::atomic<bool>*>(flag)->load(std::memory_order_seq_cst);
      },
      &p.stopping, &p.stop_line};
  const std::uint32_t buffer = c.config.buffer;  // 0: unbounded, never full
  auto port_full = [&] {
    return buffer != 0 && p.in->stats().depth + p.due->stats().depth >= buffer;
  };

  auto stop_or = [&](Deadline until) {  // sleeps until `until`, or until stop() wakes us
    lockfree::park(p.stop_line, [&] { return stop_requested(); }, until);
  };

  // relaxed: only stop() sets it; the waits below re-check it with seq_cst.
  while (!p.stopping.load(std::memory_order_relaxed)) {
    Deadline wake_at = kNoDeadline;  // besides the next due time, when to look again
    auto drained = p.later->try_drain(
        [&](std::span<const std::byte> request) {
          if (request.size() < port::kDueStamp) {
            c.timer.refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
            return;
          }
          std::int64_t due_ns;
          std::memcpy(&due_ns, request.data(), sizeof due_ns);
          heap.push({Deadline(std::chrono::nanoseconds(due_ns)), seq++,
                     {request.begin() + port::kDueStamp, request.end()}});
        },
        std::min<std::size_t>(256, kHeldMax - heap.size()));
    if (!drained) wake_at = Clock::now() + kErrorBackoff;

    const auto now = Clock::now();
    if (now >= retry_at) {
      while (!heap.empty() && heap.top().due <= now) {
        if (port_full()) {
          retry_at = now + kRetryInterval;
          c.timer.retries.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
          break;
        }
        // Counted before the message becomes visible, so that a consumer that has it never
        // reads counters that lag behind it. relaxed: statistics.
        c.timer.delivered.fetch_add(1, std::memory_order_relaxed);
        c.timer.pending.store(heap.size() - 1, std::memory_order_relaxed);
        auto st = due_pusher.push({}, heap.top().message, {.deadline = lockfree::kDontWait});
        if (!st) {  // the due lane itself is full: as good as a full port
          c.timer.delivered.fetch_sub(1, std::memory_order_relaxed);
          c.timer.pending.store(heap.size(), std::memory_order_relaxed);
          retry_at = now + kRetryInterval;
          c.timer.retries.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        heap.pop();
      }
    }
    // relaxed: a statistic for tools.
    c.timer.pending.store(heap.size(), std::memory_order_relaxed);

    Deadline next = wake_at;
    if (!heap.empty()) next = std::min(next, std::max(heap.top().due, retry_at));
    if (!drained || heap.size() >= kHeldMax) {
      stop_or(next);  // `later` cannot be read now, or we hold all we may: wait for time alone
    } else if (!p.later->ready(std::memory_order_acquire)) {  // else more requests are queued
      (void)p.later->wait(next, stop_requested);
    }
  }
  pthread_mutex_unlock(&c.owner.alive);
}

}  // namespace bloccs
