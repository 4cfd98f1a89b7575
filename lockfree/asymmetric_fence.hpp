// SPDX-License-Identifier: Apache-2.0
// Asymmetric fences, with membarrier(2): for a Dekker pair whose one side runs on every push and
// whose other side is rare.
//
//   light side (a pusher):   store X; light_fence(); load Y     on every push
//   heavy side (rare):       store Y; heavy_fence(); load X     a consumer about to sleep, a
//                                                               take-over sealing a ring
//
// Either the light side's load sees Y, or the heavy side's load sees X, as with two full fences.
// heavy_fence() makes every CPU that runs a thread of a registered process execute a full memory
// barrier before it returns (MEMBARRIER_CMD_GLOBAL_EXPEDITED): wherever the light side was, its
// store was either drained by that barrier (so the heavy side's load, after it, sees X) or its
// load comes after the barrier, and so after the heavy side's store (it sees Y). A thread that
// was not running passes a full barrier when it is scheduled again. So the light side needs only
// a compiler barrier, once its process is registered.
//
// A process whose registration the kernel (or a seccomp filter) refuses keeps full fences on its
// light side: correct, only slower; a heavy side the kernel refuses falls back as its caller
// says. BLOCCS_NO_MEMBARRIER=1 makes a process behave as if the kernel refused both (for
// comparisons, for the tests of those fallbacks, and for a kernel where membarrier misbehaves).
#pragma once

#include <atomic>

namespace bloccs::lockfree {

// Registers this process for heavy fences (once; a forked child anew, as the kernel does not
// carry the registration over a fork). True if its light sides may use compiler barriers.
bool register_light_side() noexcept;

// The light side's fence: a compiler barrier where `registered` (register_light_side() said
// true when this side was set up), else a full fence.
inline void light_fence(bool registered) noexcept {
  if (registered) [[likely]]
    std::atomic_signal_fence(std::memory_order_seq_cst);
  else
    std::atomic_thread_fence(std::memory_order_seq_cst);
}

// The heavy side's fence. False if the kernel refused every way of making one (membarrier
// unavailable): the caller must then not rely on the light sides' stores being seen, and
// looks again after a bounded time instead (see each caller).
bool heavy_fence() noexcept;

}  // namespace bloccs::lockfree
