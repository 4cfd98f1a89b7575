// SPDX-License-Identifier: Apache-2.0
// Which clock stamps messages, and the TSC's rate.
#include "port/stamp_clock.hpp"

#include <fstream>
#include <string>

namespace bloccs::port {
namespace {

std::uint64_t steady_ns() noexcept {
  return stamp_now(StampClock::steady);
}

// The TSC's ns per tick times 2^32, measured over ~2 ms against CLOCK_MONOTONIC. Each end is
// the TSC read between two clock reads that lie closest together, so a preemption in between
// costs no accuracy: the error is a few ns in 2 ms, about 10^-5.
std::uint64_t measure_tsc_scale() {
  auto bracket = [](std::uint64_t& ns, std::uint64_t& ticks) {
    std::uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; ++i) {
      const std::uint64_t a = steady_ns();
      const std::uint64_t t = __rdtsc();
      const std::uint64_t b = steady_ns();
      if (b - a < best) {
        best = b - a;
        ns = a + (b - a) / 2;
        ticks = t;
      }
    }
  };
  std::uint64_t ns0 = 0, t0 = 0, ns1 = 0, t1 = 0;
  bracket(ns0, t0);
  while (steady_ns() < ns0 + 2'000'000) {
  }
  bracket(ns1, t1);
  if (t1 <= t0) return std::uint64_t{1} << 32;  // a TSC that does not move: treat ticks as ns
  return static_cast<std::uint64_t>((static_cast<StampWide>(ns1 - ns0) << 32) / (t1 - t0));
}

}  // namespace

StampClock best_stamp_clock() {
  static const StampClock clock = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (!line.starts_with("flags")) continue;
      const auto has = [&](const char* flag) {
        return (" " + line + " ").find(std::string(" ") + flag + " ") != std::string::npos;
      };
      return has("constant_tsc") && has("nonstop_tsc") ? StampClock::tsc : StampClock::steady;
    }
    return StampClock::steady;
  }();
  return clock;
}

StampScale StampScale::of(StampClock clock) {
  if (clock != StampClock::tsc) return StampScale(std::uint64_t{1} << 32);
  static const std::uint64_t tsc = measure_tsc_scale();
  return StampScale(tsc);
}

}  // namespace bloccs::port
