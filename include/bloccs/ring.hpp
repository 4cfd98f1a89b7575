// SPDX-License-Identifier: Apache-2.0
// The public face of a bloccs ring: a bounded SPSC or MPSC queue of variable-size messages in a
// named shared-memory segment, between processes of one host. See lockfree/ring.hpp for the
// full contract (who may call what, what happens when full, empty, or a process dies).
//
//   auto ring = bloccs::Ring::create("my-app", "orders", {.kind = bloccs::RingKind::mpsc});
//   auto pusher = bloccs::RingPusher::open("my-app", "orders");    // in any process
//   pusher->push(bytes);                                            // parks while full
//   ring->drain([](std::span<const std::byte> m) { ... }, 64);      // waits, then up to 64
#pragma once

#include "bloccs/result.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"

namespace bloccs {

using lockfree::Clock;
using lockfree::Deadline;
using lockfree::kNoDeadline;
using lockfree::Ring;
using lockfree::RingKind;
using lockfree::RingOptions;
using lockfree::RingPusher;
using lockfree::RingStats;
using lockfree::SpinPolicy;

}  // namespace bloccs
