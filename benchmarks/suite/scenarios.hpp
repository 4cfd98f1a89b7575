// SPDX-License-Identifier: Apache-2.0
// The three measurements, each between real processes, each for any Transport:
//   round trip   the parent sends a message to an echo process over one channel and waits for
//                it to come back over another; one sample per round trip;
//   streaming    `pushers` processes push as fast as they can into one channel; the parent
//                receives in batches; messages per second over the whole transfer;
//   back-pressure  the same, with the parent doing `work` per message, slower than the pushers,
//                so they spend the run waiting for space; also their CPU time.
// The parent runs the receiving side on the CPU it is pinned to; children run on `child_cpu`.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "benchmarks/suite/histogram.hpp"
#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {

struct RoundTripPlan {
  std::string ns;            // the run's namespace
  std::string name;          // unique per measurement: the channels are <name>-a and <name>-b
  std::size_t bytes = 64;
  std::uint64_t warmup = 10'000;      // round trips before the timed ones
  std::uint64_t round_trips = 20'000;
  int child_cpu = -1;
};

// Adds one sample per round trip to `into`.
Status measure_round_trips(const Transport& t, const RoundTripPlan& plan, LatencyHistogram& into);

struct StreamPlan {
  std::string ns;
  std::string name;
  std::size_t bytes = 64;
  std::uint32_t pushers = 1;
  std::uint64_t per_pusher = 100'000;  // messages each pusher sends
  std::uint32_t capacity = 256;        // messages the channel holds, where it has a bound
  std::chrono::nanoseconds work{0};    // the receiver's busy work per message
  int child_cpu = -1;
};

struct StreamResult {
  std::uint64_t messages = 0;
  double seconds = 0;            // from the start signal to the last message received
  double pusher_cpu_seconds = 0;  // CPU time of each pusher while it pushed, averaged
  double msgs_per_s() const { return seconds > 0 ? double(messages) / seconds : 0; }
};

Result<StreamResult> measure_stream(const Transport& t, const StreamPlan& plan);

// Busy-waits `work` (the back-pressure consumer's stand-in for real work per message).
void busy_work(std::chrono::nanoseconds work);

}  // namespace bloccs::bench
