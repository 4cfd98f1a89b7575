// Pusher slots: which processes are attached to a ring, and which claim each one has open.
//
// The consumer reads them only to tell a dead pusher's abandoned claim from a slow live one;
// a pusher writes only its own slot. See PusherSlot in ring_layout.hpp for the two words.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "bloccs/result.hpp"
#include "lockfree/ring_layout.hpp"

namespace bloccs::lockfree {

// The calling process as a slot owner word: (start time mod 2^32) << 32 | pid.
std::uint64_t self_token();
// True if the process named by an owner word still runs (same pid, same start time).
bool token_alive(std::uint64_t token);
inline std::uint32_t token_pid(std::uint64_t token) {
  return static_cast<std::uint32_t>(token);
}

// Takes a free slot, or one whose owner is dead and holds no open claim. Errc::pusher_limit
// when every slot is held by a live process.
Result<std::uint32_t> attach_slot(std::span<PusherSlot> slots, std::uint64_t head_pos,
                                  std::string_view ring_name, bool single_pusher);

// Gives the slot back (its owner is detaching, or the consumer cleared a dead owner's claim):
// only if `owner` still holds it and its intent is still `intent`, the value judged. A new owner
// that took the slot meanwhile keeps its own intent (always at or past the head, so never equal).
void release_slot(PusherSlot& slot, std::uint64_t owner, std::uint64_t intent);

}  // namespace bloccs::lockfree
