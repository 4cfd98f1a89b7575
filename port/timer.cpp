// SPDX-License-Identifier: Apache-2.0
// The owner's timer thread: carries out push_after.
//
// Requests arrive in the port's `later` ring; the thread keeps each one in the port's held store
// (port/held_store.hpp: pages in shared memory, so the caller may exit at once and a take-over
// after the owner's death carries every one over with its due time), orders them in a heap by
// due time, and when one is due pushes it into the port's `due` ring, which the consumer drains
// beside `in`. A port that holds `buffer` messages is full: the message stays held and is tried
// again a millisecond later, never dropped, until the consumer has taken messages since; then it
// goes into the due lane (see must_wait). Each port has its own thread, so a full port delays no
// other port's timers.
//
// Each step leaves shared memory readable at any instant: a request is held (with where it lay
// in `later`) before `later` hands its space back, and a held message names the due lane
// position it is pushed to before the push, and is let go of only after it; a take-over reads
// the pages and knows, for each message, whether the due lane or the pages keep it.
#include <algorithm>
#include <array>
#include <cstring>
#include <queue>
#include <unordered_map>
#include <vector>

#include "port/held_store.hpp"
#include "port/port_impl.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs {
namespace {

constexpr auto kRetryInterval = std::chrono::milliseconds(1);
constexpr std::size_t kHeldMax = port::kTimerHeldMax;
// After a failure to read `later` (no room in /dev/shm for its next link), look again this late.
constexpr auto kErrorBackoff = std::chrono::milliseconds(10);

struct Pending {
  Deadline due;
  std::uint64_t seq;  // ties keep arrival order; names the message in the held store
  bool operator>(const Pending& o) const { return due != o.due ? due > o.due : seq > o.seq; }
};

}  // namespace

void run_timer(detail::PortImpl& p, lockfree::SpscPusher due_pusher) {
  port::PortControl& c = p.control();

  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> heap;
  std::unordered_map<std::uint64_t, port::HeldStore::Ref> held;  // seq -> where it is kept
  port::HeldStore store(p.ns, p.control_name,
                        c.config.max_payload + static_cast<std::uint32_t>(kMetaWireMax),
                        static_cast<mode_t>(c.config.mode));
  std::uint64_t seq = 0;
  Deadline retry_at{};
  const bool stamping = (c.config.flags & port::kStamped) != 0;
  const port::StampClock clock = port::stamp_clock(c.config.flags);
  std::array<std::byte, kMetaWireMax> stamped;
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
  // Pushers that keep a port full would starve push_after: each slot the consumer frees is
  // taken by a parked pusher before this thread looks again. So once the consumer has taken
  // messages since we found the port full, our turn has come: due messages go into the due
  // lane anyway, as far as it has room (min(buffer, 256): the port's bound still holds).
  // relaxed: counters the consumer alone writes; a stale read only delays our turn.
  auto consumed = [&] {
    return c.consumer.in_consumed.load(std::memory_order_relaxed) +
           c.consumer.due_consumed.load(std::memory_order_relaxed);
  };
  constexpr std::uint64_t kNotFull = ~std::uint64_t{0};
  std::uint64_t consumed_when_full = kNotFull;
  auto must_wait = [&] {
    if (!port_full()) {
      consumed_when_full = kNotFull;
      return false;
    }
    const std::uint64_t now_consumed = consumed();
    if (consumed_when_full == kNotFull) consumed_when_full = now_consumed;
    return now_consumed == consumed_when_full;
  };

  auto stop_or = [&](Deadline until) {  // sleeps until `until`, or until stop() wakes us
    lockfree::park(p.stop_line, [&] { return stop_requested(); }, until);
  };

  // relaxed: only stop() sets it; the waits below re-check it with seq_cst.
  while (!p.stopping.load(std::memory_order_relaxed)) {
    Deadline wake_at = kNoDeadline;  // besides the next due time, when to look again
    bool store_full = false;         // no room in /dev/shm for another held page
    auto drained = p.later->try_drain(
        [&](std::span<const std::byte> request) -> bool {
          if (request.size() < port::kDueStamp) {
            c.timer.refused.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
            return true;
          }
          std::int64_t due_ns;
          std::memcpy(&due_ns, request.data(), sizeof due_ns);
          const auto [link, at] = p.later->reading();
          auto ref =
              store.add(seq, due_ns, {link.pack(), at.pack()}, request.subspan(port::kDueStamp));
          if (!ref) {  // it stays in `later`, where a take-over finds it too
            store_full = true;
            return false;
          }
          held.emplace(seq, *ref);
          heap.push({Deadline(std::chrono::nanoseconds(due_ns)), seq++});
          shm::test_hook("timer.held");  // held, and still in `later` until the batch ends
          // relaxed: a count for tools.
          c.timer.pending.store(heap.size(), std::memory_order_relaxed);
          return true;
        },
        std::min<std::size_t>(256, kHeldMax - heap.size()));
    if (store_full) drained = Error{Errc::out_of_memory, "no room for a held page"};
    if (!drained) wake_at = Clock::now() + kErrorBackoff;

    const auto now = Clock::now();
    if (now >= retry_at) {
      while (!heap.empty() && heap.top().due <= now) {
        if (must_wait()) {
          retry_at = now + kRetryInterval;
          c.timer.retries.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
          break;
        }
        // Counted before the message becomes visible, so that a consumer that has it never
        // reads a `delivered` that lags behind it. relaxed: statistics.
        c.timer.delivered.fetch_add(1, std::memory_order_relaxed);
        const port::HeldStore::Ref ref = held.at(heap.top().seq);
        store.delivering(ref, due_pusher.next_position());
        shm::test_hook("timer.delivering");  // named where it goes, not there yet
        // Stamped now, if the port keeps time in queue: its wait in the queue starts here.
        std::span<const std::byte> head, body = store.message(ref), meta;
        if (stamping && MetaCodec::split_stamp(body, meta, body))
          head = MetaCodec::stamped(meta, port::make_stamp(port::stamp_now(clock), 0),
                                    stamped.data());
        else
          body = store.message(ref);
        auto st = due_pusher.push(head, body, {.deadline = lockfree::kDontWait});
        if (!st) {  // the due lane itself is full: as good as a full port
          store.not_delivered(ref);
          c.timer.delivered.fetch_sub(1, std::memory_order_relaxed);
          retry_at = now + kRetryInterval;
          c.timer.retries.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        shm::test_hook("timer.delivered");  // in the due lane, and still held
        store.remove(ref);                  // the due lane holds it now
        held.erase(heap.top().seq);
        heap.pop();
      }
      store.compact(
          [&](std::uint64_t moved_seq, const port::HeldStore::Ref& to) { held[moved_seq] = to; });
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
}

}  // namespace bloccs
