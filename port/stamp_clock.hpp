// SPDX-License-Identifier: Apache-2.0
// The clock a port's messages are stamped with as they are pushed, so that its consumer can
// tell how long each waited in the queue (time_in_queue.hpp). The owner picks it once, at
// start, and writes it into the port's config; pushers follow what it says.
//
// The TSC when the CPU says it is invariant (constant_tsc and nonstop_tsc: one rate on every
// core, through sleep states): one instruction, a few ns, where even the vDSO's clock_gettime
// costs ~20 ns per push. Otherwise CLOCK_MONOTONIC in ns. The consumer turns TSC ticks into ns
// with a rate it measures once per process against CLOCK_MONOTONIC.
#pragma once

#include <x86intrin.h>

#include <cstdint>
#include <ctime>

namespace bloccs::port {

__extension__ typedef unsigned __int128 StampWide;  // products of ticks and a scale

enum class StampClock : std::uint32_t { steady = 0, tsc = 1 };

// The clock this machine's ports stamp with (what /proc/cpuinfo says, read once).
StampClock best_stamp_clock();

[[gnu::always_inline]] inline std::uint64_t stamp_now(StampClock clock) noexcept {
  if (clock == StampClock::tsc) [[likely]]
    return __rdtsc();
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Turns differences of stamps into ns: ns = ticks * scale / 2^32.
class StampScale {
 public:
  // The scale of `clock` (the TSC's rate is measured at the first call, ~2 ms, once per process).
  static StampScale of(StampClock clock);
  // ns from `then` to `now`; 0 if `then` is later (another core's stamp, a moment ahead).
  [[gnu::always_inline]] std::uint64_t ns_between(std::uint64_t then,
                                                  std::uint64_t now) const noexcept {
    if (now <= then) return 0;
    return static_cast<std::uint64_t>(
        (static_cast<StampWide>(now - then) * scale_) >> 32);
  }
  // ticks in `ns` (for tests and for turning a due time into a stamp).
  std::uint64_t ticks_in(std::uint64_t ns) const noexcept {
    return static_cast<std::uint64_t>((static_cast<StampWide>(ns) << 32) / scale_);
  }

 private:
  explicit StampScale(std::uint64_t scale) : scale_(scale) {}
  std::uint64_t scale_;  // ns per tick, times 2^32
};

}  // namespace bloccs::port
