// SPDX-License-Identifier: Apache-2.0
// What a ring's consumer (ring.hpp) and its pushers (ring_pusher.hpp) share: how a ring is made,
// how long each side waits before it parks or gives up, what tools see of it, and the check that
// every opener of a segment made by someone else runs first.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "bloccs/result.hpp"
#include "lockfree/futex.hpp"
#include "lockfree/ring_layout.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

struct RingOptions {
  RingKind kind = RingKind::mpsc;
  std::uint32_t buffer = 1024;       // bound on queued messages (1 .. 2^23-1)
  std::uint32_t max_payload = 4096;  // bound on one payload, bytes
  // Data area in bytes, a power of two at least 2 * record_size(max_payload) + 8 (a record that
  // would run past the end is padded to the start: ring_layout.hpp). 0 picks
  // buffer * record_size(max_payload) rounded up, but no more than 64 MiB.
  std::uint64_t capacity = 0;
  std::uint32_t max_pushers = 64;  // MPSC pusher slots (SPSC always has 1)
  mode_t mode = 0600;              // 0660 lets the namespace's group push (a shared namespace)
  std::optional<shm::Sharing> sharing =
      std::nullopt;  // the namespace must be; nullopt: the environment
  std::chrono::microseconds abandon_after{10'000};
  // Where the cursors start: a byte position (a multiple of 8, below 2^40) and a message count
  // (below 2^24). Both wrap around in a long-lived ring; tests start them near the wrap.
  std::uint64_t start_position = 0;
  std::uint32_t start_count = 0;
  // Who pays for waking a parked consumer (kRingLightWakers, ring_layout.hpp): true, the
  // consumer, each time it parks (a heavy fence, microseconds); false, every push (a fence).
  // True suits a consumer that spins before it parks (SpinPolicy); false one that parks at once.
  bool light_wakers = true;
};

// How long each side busy-polls before parking (process-local, not part of the segment).
// A hand-off costs ~100 ns between cores; a futex wake-up costs tens of microseconds. Spinning
// a little first keeps latency at the cache-line floor while a parked side costs no CPU.
struct SpinPolicy {
  std::chrono::nanoseconds consumer{50'000};
  std::chrono::nanoseconds pusher{10'000};
};

// When a pusher of a full ring gives up: at `deadline`, or `timeout` after it first finds the
// ring full, whichever comes first. A timeout costs nothing until then: the fast path never
// reads the clock.
struct Patience {
  Deadline deadline = kNoDeadline;
  std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max();
  Deadline resolve() const {
    if (timeout == std::chrono::nanoseconds::max()) return deadline;
    const Deadline now = Clock::now();
    // A timeout past the clock's end is none: never add what would overflow.
    if (timeout >= Deadline::max() - now) return deadline;
    return std::min(deadline, now + timeout);
  }
};

// Something besides the ring's own next message that ends a consumer's wait (a second ring of the
// same consumer, a stop flag). `ready` must load with seq_cst; whoever makes it true wakes
// `line` (or calls Ring::wake_consumer()) afterwards, so that a parked consumer re-checks.
struct AlsoReady {
  bool (*ready)(const void* ctx) = nullptr;
  const void* ctx = nullptr;
  // Where the one who makes it true wakes us; without one, it calls Ring::wake_consumer().
  WaitLine* line = nullptr;
  bool operator()() const { return ready && ready(ctx); }
};

// A point-in-time view of a ring's control block, for tests and tools. Never blocks anyone.
struct RingStats {
  std::uint64_t depth;             // messages queued (claimed and not consumed)
  std::uint64_t bytes_used;        // of `capacity`
  std::uint32_t parked_pushers;    // announced on the space futex
  std::uint32_t parked_consumer;   // 0 or 1
  std::uint64_t abandoned;         // dead pushers' claims skipped
  std::uint64_t aborted;           // loans given back without a commit
  std::uint32_t attached_pushers;  // slots held (live or not yet reclaimed)
  bool sealed;                     // a chain's ring that pushers have left for the next link
};

// Copies a mapped ring's config and checks every length and offset in the copy. Callers use
// only the copy afterwards: a peer that rewrites the shared config later changes nothing.
Result<RingConfig> validated_config(const shm::Segment& segment);
RingStats read_stats(const shm::Segment& segment, const RingConfig& config);

}  // namespace bloccs::lockfree
