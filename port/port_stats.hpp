// SPDX-License-Identifier: Apache-2.0
// What a port's control segment says of pushers' waits and of time in queue, as PortStats puts
// it: for the owner (Port::stats) and for tools that map the segment (shmctl).
#pragma once

#include <chrono>

#include "bloccs/port.hpp"
#include "port/port_layout.hpp"
#include "port/time_in_queue.hpp"

namespace bloccs::port {

inline QueueTimes queue_times(const QueueTimeSnapshot& s) {
  using std::chrono::nanoseconds;
  QueueTimes t;
  t.count = s.count();
  t.total = nanoseconds(s.sum_ns);
  t.p50 = nanoseconds(s.percentile(0.5));
  t.p90 = nanoseconds(s.percentile(0.9));
  t.p99 = nanoseconds(s.percentile(0.99));
  t.p999 = nanoseconds(s.percentile(0.999));
  t.max = nanoseconds(t.count ? s.max_ns : 0);
  return t;
}

inline QueueTimes queue_times(const PortControl& c) {
  return queue_times(QueueTimeSnapshot::read(c.time_in_queue));
}

inline void pusher_waits(const PortControl& c, PortStats& s) {
  const lockfree::ParkLedger& parks = c.pushers.parks;
  // relaxed: a snapshot for people.
  s.pushes_waited = parks.waits.load(std::memory_order_relaxed);
  s.waited = std::chrono::nanoseconds(parks.wait_ns.load(std::memory_order_relaxed));
  s.longest_wait = std::chrono::nanoseconds(parks.longest_ns.load(std::memory_order_relaxed));
  s.no_producer_while_waiting = parks.gone.load(std::memory_order_relaxed);
  s.timed_out = c.pushers.timed_out.load(std::memory_order_relaxed);
}

}  // namespace bloccs::port
