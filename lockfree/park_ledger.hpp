// SPDX-License-Identifier: Apache-2.0
// What pushers that waited for room have cost: how many parked, for how long in all, the
// longest wait, and how many were sent away (the consumer closed the ring or died) while
// parked. It lives in shared memory where the ring's owner puts it (a port's control segment);
// a pusher adds to it only after spinning found no room, so the push path never touches it.
//
//   0        8          16           24     32
//   +--------+----------+------------+------+
//   | waits  | wait_ns  | longest_ns | gone |
//   +--------+----------+------------+------+
#pragma once

#include <atomic>
#include <cstdint>

#include "bloccs/deadline.hpp"

namespace bloccs::lockfree {

struct ParkLedger {
  std::atomic<std::uint64_t> waits;       // pushes that parked (counted as they park)
  std::atomic<std::uint64_t> wait_ns;     // their time parked, in all (added as they leave)
  std::atomic<std::uint64_t> longest_ns;  // the longest single park
  std::atomic<std::uint64_t> gone;        // parked pushes ended by a close or a dead consumer
};
static_assert(sizeof(ParkLedger) == 32);

// Counts one park in a ledger (or nothing, for a null one) from construction to destruction.
class ParkEntry {
 public:
  explicit ParkEntry(ParkLedger* ledger) : ledger_(ledger) {
    // relaxed: statistics for tools, which read them with relaxed loads.
    if (ledger_) ledger_->waits.fetch_add(1, std::memory_order_relaxed);
  }
  ~ParkEntry() {
    if (!ledger_) return;
    const auto ns = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since_).count());
    // relaxed: statistics, as above.
    ledger_->wait_ns.fetch_add(ns, std::memory_order_relaxed);
    std::uint64_t longest = ledger_->longest_ns.load(std::memory_order_relaxed);
    while (ns > longest &&
           !ledger_->longest_ns.compare_exchange_weak(longest, ns, std::memory_order_relaxed)) {
    }
    if (gone_) ledger_->gone.fetch_add(1, std::memory_order_relaxed);
  }
  // The wait ends because nobody will make room: the consumer closed the ring or died.
  void sent_away() noexcept { gone_ = true; }
  ParkEntry(const ParkEntry&) = delete;
  ParkEntry& operator=(const ParkEntry&) = delete;

 private:
  ParkLedger* ledger_;
  Clock::time_point since_ = Clock::now();
  bool gone_ = false;
};

}  // namespace bloccs::lockfree
