// SPDX-License-Identifier: Apache-2.0
// What a running port holds in its owner process (shared by owner.cpp and timer.cpp).
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "bloccs/port.hpp"
#include "lockfree/chain.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/spsc_pusher.hpp"
#include "port/port_layout.hpp"
#include "registry/registry.hpp"
#include "shm/segment.hpp"
#include "shm/thread.hpp"

namespace bloccs {

struct detail::PortImpl {
  PortKey key;
  std::string ns;
  std::string control_name;
  shm::Sharing sharing;  // what the namespace must be (PortOptions::group, or the environment)
  pid_t owner_pid = 0;  // a forked child's copy of the Port must not stop the parent's port
  std::optional<registry::Registry> registry;
  std::optional<registry::Registration> registration;
  std::optional<shm::Segment> control_segment;
  shm::HeldLock owner_lock;  // the port's liveness lock; after control_segment: goes first
  std::optional<lockfree::ChainConsumer> in;     // pushers -> consumer
  std::optional<lockfree::Ring> due;             // timer thread -> consumer
  std::optional<lockfree::ChainConsumer> later;  // pushers' push_after requests -> timer thread
  shm::Thread timer;                             // of its own stack: see shm/thread.hpp
  std::atomic<bool> stopping{false};  // tells the timer thread to finish
  lockfree::WaitLine stop_line{};     // ... and wakes it (a private futex is enough)
  bool stopped = false;
  PortTakeover takeover;  // what start carried over from a dead owner of the key
  port::QueueTimeRecorder queue_times;  // the consumer's side of the time-in-queue histogram

  port::PortControl& control() const {
    return *reinterpret_cast<port::PortControl*>(control_segment->base());
  }
  std::uint32_t buffer() const { return control().config.buffer; }
  void stop();
  // Adds one batch to the consumer's counters in the control segment.
  void count(std::uint64_t from_due, std::uint64_t from_in, std::uint64_t refused);
};

// The timer thread: moves push_after requests from `later` into a due-time heap and from there
// into `due`. Runs until impl.stopping.
void run_timer(detail::PortImpl& impl, lockfree::SpscPusher due_pusher);

}  // namespace bloccs
