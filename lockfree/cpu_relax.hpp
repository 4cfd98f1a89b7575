// SPDX-License-Identifier: Apache-2.0
// CPU hints for spin loops: a polite busy-wait step, and pulling a cache line in early.
#pragma once

namespace bloccs::lockfree {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Reads one byte at `p` to bring its cache line here, in a way the language (and
// ThreadSanitizer) does not see as an access: the value is discarded, and another process may
// be writing the line. On x86 a real load does this better than a prefetch, which the CPU may
// drop or serve late.
inline void pull_line(const void* p) noexcept {
#if defined(__x86_64__)
  int discarded;
  asm volatile("movzbl (%1), %0" : "=r"(discarded) : "r"(p));
#else
  __builtin_prefetch(p);
#endif
}

}  // namespace bloccs::lockfree
