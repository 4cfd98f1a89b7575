// SPDX-License-Identifier: Apache-2.0
// Waiting on many ports at once: the one wake-up primitive of a node that owns several ports.
//
//   std::vector<bloccs::Port*> ports = {&a, &b, &c};
//   bloccs::WakeUp stop;                                   // stop.notify() from anywhere ends it
//   auto st = bloccs::wait_any(ports, bloccs::kNoDeadline, &stop);
//   for (auto* p : ports) p->try_receive_batch(handle, 64);
//
// wait_any announces itself on every port's wake-up words (the pushers' ring and the due lane
// of each), re-checks them all, and sleeps in one futex_waitv until a pusher or a timer of any
// of them commits a message, `wake_up` is notified, or `deadline` passes. It never spins; it
// looks again by itself only to skip a claim a killed pusher left open (as receive does) and at
// least every 100 ms. Up to kMaxWaitPorts ports. The caller is every port's consumer thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <span>

#include "bloccs/port.hpp"
#include "lockfree/futex.hpp"

namespace bloccs {

inline constexpr std::size_t kMaxWaitPorts = lockfree::kMaxWaitAny / 2 - 1;

// A process-local event that ends a wait_any: notify() is async-signal-safe (an atomic store
// and a futex wake), so a signal handler may call it.
class WakeUp {
 public:
  void notify() noexcept {
    // seq_cst: the waiter re-checks it after arming (Dekker, see lockfree/futex.hpp).
    raised_.store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    lockfree::wake(line_, 1);
  }
  bool notified() const noexcept {
    return raised_.load(std::memory_order_seq_cst) != 0;  // seq_cst: the Dekker re-check
  }
  void reset() noexcept { raised_.store(0, std::memory_order_relaxed); }  // relaxed: owner only

 private:
  friend Status wait_any(std::span<Port* const>, Deadline, WakeUp*);
  std::atomic<std::uint32_t> raised_{0};
  lockfree::WaitLine line_{};
};

// ok once a message may be ready on one of `ports` (or wake_up was notified); Errc::timeout at
// the deadline; Errc::closed for a stopped port; Errc::bad_config for too many ports.
Status wait_any(std::span<Port* const> ports, Deadline deadline, WakeUp* wake_up = nullptr);

}  // namespace bloccs
