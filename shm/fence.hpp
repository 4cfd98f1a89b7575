// SPDX-License-Identifier: Apache-2.0
// A fence around every bloccs mapping: a peer that truncates a segment under us (one with write
// access to it can) makes the pages past the new end fault with SIGBUS in whoever touches them.
// That must cost the process its use of that segment, never its life.
//
// Every Segment registers its mapping here. A SIGBUS handler (installed with the first mapping,
// chaining to any handler that was there before it for addresses not ours) looks the faulting
// address up; inside a bloccs mapping it maps zero pages over the rest of that mapping (anonymous,
// private: nothing written there reaches anyone), marks the mapping damaged, and returns, so the
// faulting instruction reads zeros and goes on. The segment's next call then reports
// Errc::segment_invalid, naming it. A futex call on such a page fails with EFAULT instead of a
// signal: the caller marks the mapping through fence_mark().
#pragma once

#include <atomic>
#include <cstddef>

namespace bloccs::shm {

// Registers the mapping [base, base + size); returns its slot, or -1 if the table is full (the
// mapping is then not fenced: a fault in it is fatal, as it would be without bloccs).
int fence_register(void* base, std::size_t size, bool writable) noexcept;
void fence_unregister(int slot) noexcept;
// True once a fault hit the mapping (one relaxed load of this process's own memory).
bool fence_damaged(int slot) noexcept;
// The flag fence_damaged reads, for a holder that checks it on every push (resolved once per
// mapping; slot -1 gets a flag that is never set). Valid until the slot is unregistered.
const std::atomic<bool>& fence_flag(int slot) noexcept;
// Marks the fenced mapping that holds `addr` damaged, if any; true if there was one.
bool fence_mark(const void* addr) noexcept;

}  // namespace bloccs::shm
