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

#include <cstddef>
#include <memory>
#include <span>

#include "bloccs/port.hpp"

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

// futex_waitv takes 128 words: two per port (its ring and its due lane), one for the WakeUp.
inline constexpr std::size_t kMaxWaitPorts = 63;

// A process-local event that ends a wait_any: notify() is async-signal-safe (an atomic store
// and a futex wake), so a signal handler may call it.
class WakeUp {
 public:
  WakeUp();
  ~WakeUp();
  WakeUp(const WakeUp&) = delete;
  WakeUp& operator=(const WakeUp&) = delete;

  void notify() noexcept;          // ends the wait_any given this WakeUp (or the next one)
  bool notified() const noexcept;  // notify() was called since the last reset()
  void reset() noexcept;           // for the owner, between waits

 private:
  friend Status wait_any(std::span<Port* const>, Deadline, WakeUp*);
  struct State;  // port/wait_any.cpp: the flag and the futex line it is woken on
  std::unique_ptr<State> state_;
};

// ok once a message may be ready on one of `ports` (or wake_up was notified); Errc::timeout at
// the deadline; Errc::closed for a stopped port; Errc::bad_config for too many ports.
Status wait_any(std::span<Port* const> ports, Deadline deadline, WakeUp* wake_up = nullptr);

}  // namespace bloccs
#pragma GCC visibility pop
