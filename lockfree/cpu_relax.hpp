// A polite busy-wait step: tells the core (and its SMT sibling) we are spinning.
#pragma once

namespace bloccs::lockfree {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace bloccs::lockfree
