// SPDX-License-Identifier: Apache-2.0
// Pusher slots: which processes are attached to a ring, and which claim each one has open.
//
// The consumer reads them only to tell a dead pusher's abandoned claim from a slow live one;
// a pusher writes only its own slot. See PusherSlot in ring_layout.hpp for its words.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "bloccs/result.hpp"
#include "lockfree/ring_layout.hpp"
#include "shm/liveness.hpp"

namespace bloccs::lockfree {

// A slot this process holds: its index, and the liveness lock that makes it ours.
struct AttachedSlot {
  std::uint32_t index = 0;
  shm::HeldLock lock;
};

// Takes a free slot of the ring whose control block is `control`, or one whose holder is dead
// and left no open claim (a claim whose start the tail has passed and the head has not: the
// consumer still has to skip it). A dead holder's intent that no claim followed (it died before
// its compare-and-swap: the tail never passed it) is no claim. Errc::pusher_limit when every
// slot is held by a live process.
Result<AttachedSlot> attach_slot(std::span<PusherSlot> slots, const RingControl& control,
                                 std::string_view ring_name, bool single_pusher);

// Gives our slot back (a pusher at rest has no open claim).
void detach_slot(PusherSlot& slot, AttachedSlot& attached) noexcept;

// Clears a dead holder's intent once the consumer has dealt with its claim: only if the slot is
// still not held and its intent is still `intent`, the value judged. A new holder that took the
// slot meanwhile has reset the intent itself.
void clear_dead_intent(PusherSlot& slot, std::uint64_t intent) noexcept;

}  // namespace bloccs::lockfree
