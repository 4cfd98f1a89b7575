// SPDX-License-Identifier: Apache-2.0
// What the data-path bench's processes do to their CPU and their messages, shared by its
// bloccs and iceoryx measurements: pin to a CPU, and read every byte of a message.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace bloccs::bench {

inline bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// Reads every 8-byte word of `p` (the consumer's "use" of a message): their XOR.
inline std::uint64_t read_all(const void* p, std::size_t n) {
  const auto* b = static_cast<const std::byte*>(p);
  std::uint64_t x = 0;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, b + i, 8);
    x ^= w;
  }
  for (; i < n; ++i) x ^= static_cast<std::uint64_t>(b[i]);
  return x;
}

// Where read_all's results go, so that the reading is never optimised away.
inline std::atomic<std::uint64_t> g_sink{0};

}  // namespace bloccs::bench
