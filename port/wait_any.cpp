// SPDX-License-Identifier: Apache-2.0
// wait_any: one futex_waitv over every port's wake-up words (see bloccs/wait_any.hpp).
#include "bloccs/wait_any.hpp"

#include <algorithm>
#include <atomic>
#include <string>

#include "lockfree/futex.hpp"
#include "port/port_impl.hpp"
#include "shm/stop_request.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs {
namespace {

// Wake up at least this often: a pusher killed between its commit and its wake must not leave
// us asleep beside a message (the same interval as a single port's receive).
constexpr auto kRecheckInterval = std::chrono::milliseconds(100);

}  // namespace

static_assert(kMaxWaitPorts == lockfree::kMaxWaitAny / 2 - 1, "two lines a port, one for WakeUp");

struct WakeUp::State {
  std::atomic<std::uint32_t> raised{0};
  lockfree::WaitLine line{};
};

WakeUp::WakeUp() : state_(std::make_unique<State>()) {}
WakeUp::~WakeUp() = default;

void WakeUp::notify() noexcept {
  // seq_cst: the waiter re-checks it after arming (Dekker, see lockfree/futex.hpp).
  state_->raised.store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  lockfree::wake(state_->line, 1);
}

bool WakeUp::notified() const noexcept {
  return state_->raised.load(std::memory_order_seq_cst) != 0;  // seq_cst: the Dekker re-check
}

void WakeUp::reset() noexcept {
  state_->raised.store(0, std::memory_order_relaxed);  // relaxed: the owner's own, between waits
}

Status wait_any(std::span<Port* const> ports, Deadline deadline, WakeUp* wake_up) {
  if (ports.size() > kMaxWaitPorts)
    return Error{Errc::bad_config, "wait_any waits on at most " + std::to_string(kMaxWaitPorts) +
                                       " ports; split them over threads"};
  for (Port* port : ports)
    if (!port->impl_ || port->impl_->stopped)
      return Error{Errc::closed, "wait_any was given a stopped port; start it again"};

  lockfree::WaitLine* lines[lockfree::kMaxWaitAny];
  for (;;) {
    // A stop request ends every blocking wait, also one that would find a port ready: a
    // process under load must stop too (try_receive still drains what is queued).
    if (shm::stop_requested()) return shm::stopping_error("wait_any did not wait");
    // What ends the wait; seq_cst loads throughout: the Dekker re-check after arming.
    auto ready = [&] {
      if (wake_up && wake_up->notified()) return true;
      if (shm::stop_requested()) return true;
      for (Port* port : ports) {
        const detail::PortImpl& p = *port->impl_;
        if (p.due->ready(std::memory_order_seq_cst) || p.in->ready(std::memory_order_seq_cst))
          return true;
      }
      return false;
    };
    // Also look at claims open at the heads (a killed pusher's is skipped, as receive does).
    Deadline wake_at = std::min(deadline, Clock::now() + kRecheckInterval);
    std::size_t n = 0;
    lockfree::Wakers wakers = lockfree::Wakers::fenced;  // light if any ring's pushers are
    for (Port* port : ports) {
      detail::PortImpl& p = *port->impl_;
      if (p.in->wakers() == lockfree::Wakers::light || p.due->wakers() == lockfree::Wakers::light)
        wakers = lockfree::Wakers::light;
      auto in_ready = p.in->poll_for_wait(wake_at);
      if (!in_ready) return std::move(in_ready).error();
      if (*in_ready) return {};
      lines[n++] = &p.in->data_line();
      lines[n++] = &p.due->data_line();
    }
    if (wake_up) lines[n++] = &wake_up->state_->line;
    shm::test_hook("wait_any.park");  // looked, not yet armed: what the re-check must catch
    const bool woken = lockfree::park_any({lines, n}, ready, wake_at, wakers) || ready();
    if (shm::stop_requested()) return shm::stopping_error("wait_any did not wait");
    if (woken) return {};
    if (Clock::now() >= deadline)
      return Error{Errc::timeout, "no message arrived before the deadline"};
    // A spurious or recheck wake-up: loop to look at open claims and sleep again.
    if (Clock::now() >= wake_at) return {};  // let the caller's drain look (it skips dead claims)
  }
}

}  // namespace bloccs
