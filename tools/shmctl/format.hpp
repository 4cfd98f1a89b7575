// SPDX-License-Identifier: Apache-2.0
// How shmctl writes numbers for people: durations and rates, short and in ASCII (a column of
// them lines up in any terminal).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace bloccs::shmctl {

// "740 ns", "12.3 us", "4.56 ms", "1.20 s", "3.0 min".
inline std::string duration_text(std::uint64_t ns) {
  char buf[32];
  const auto d = static_cast<double>(ns);
  if (ns < 1'000)
    std::snprintf(buf, sizeof buf, "%llu ns", static_cast<unsigned long long>(ns));
  else if (ns < 1'000'000)
    std::snprintf(buf, sizeof buf, "%.3g us", d / 1e3);
  else if (ns < 1'000'000'000)
    std::snprintf(buf, sizeof buf, "%.3g ms", d / 1e6);
  else if (ns < 120'000'000'000ull)
    std::snprintf(buf, sizeof buf, "%.3g s", d / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f min", d / 60e9);
  return buf;
}

// "0", "950", "12.3k", "4.56M" (per second).
inline std::string rate_text(double per_s) {
  char buf[32];
  if (per_s < 1'000)
    std::snprintf(buf, sizeof buf, "%.0f", per_s);
  else if (per_s < 1e6)
    std::snprintf(buf, sizeof buf, "%.3gk", per_s / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.3gM", per_s / 1e6);
  return buf;
}

}  // namespace bloccs::shmctl
