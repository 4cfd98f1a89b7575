// SPDX-License-Identifier: Apache-2.0
#include "lockfree/pusher_slots.hpp"

#include <string>

#include "shm/process.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs::lockfree {

Result<AttachedSlot> attach_slot(std::span<PusherSlot> slots, const RingControl& control,
                                 std::string_view ring_name, bool single_pusher) {
  // A dead holder's claim that the consumer has not reached yet must stay visible to its
  // recovery: a claim is open if it starts at or past the head and the tail has passed it.
  auto open_claim = [&](std::uint64_t intent) {
    // acquire: the consumer's head and the claims' tail as published (with what they carry).
    const std::uint64_t head =
        Cursor::unpack(control.consumer.head.load(std::memory_order_acquire)).pos;
    const std::uint64_t tail =
        Cursor::unpack(control.producer.tail.load(std::memory_order_acquire)).pos;
    const std::uint64_t at = intent & kPosMask;
    return (intent & kIntentActive) && !pos_before(at, head) && pos_before(at, tail);
  };
  std::uint32_t live_holder = 0;
  for (std::uint32_t i = 0; i < slots.size(); ++i) {
    PusherSlot& s = slots[i];
    if (shm::held(s.holder)) {
      live_holder = s.pid.load(std::memory_order_relaxed);  // relaxed: for the message only
      continue;
    }
    // acquire: the intent was written before the holder's death (or its detach).
    if (open_claim(s.intent.load(std::memory_order_acquire))) continue;
    shm::test_hook("slot.take");  // judged free, not yet taken (tests of a holder between)
    auto taken = shm::HeldLock::take(
        s.holder, "pusher slot " + std::to_string(i) + " of ring " + std::string(ring_name));
    if (!taken) {
      if (taken.code() == Errc::already_exists) continue;  // another attacher won it just now
      return std::move(taken).error();
    }
    // Judged again now that the slot is ours: since the look above, another process may have
    // taken it, claimed, and died holding its claim (its death is what let us take the lock).
    // Keeping the slot would make that claim look alive to the consumer for ever.
    // acquire: as above.
    if (open_claim(s.intent.load(std::memory_order_acquire))) continue;  // `taken` lets go
    // relaxed: nobody acts on them until we push (our pushes publish with release).
    s.intent.store(0, std::memory_order_relaxed);
    s.pid.store(shm::self_process().pid, std::memory_order_relaxed);
    return AttachedSlot{i, std::move(taken).value()};
  }
  const std::string ring(ring_name);
  if (single_pusher)
    return Error{Errc::pusher_limit,
                 "ring " + ring + " is single-pusher (SPSC) and pid " +
                     std::to_string(live_holder) +
                     " already pushes into it; stop that process first, or create the ring as "
                     "MPSC to push from several processes"};
  return Error{Errc::pusher_limit,
               "all " + std::to_string(slots.size()) + " pusher slots of ring " + ring +
                   " are held by live processes; create it with a larger max_pushers"};
}

void detach_slot(PusherSlot& slot, AttachedSlot& attached) noexcept {
  if (!attached.lock.holds()) return;
  // release: our last commit happens-before whoever takes the slot next.
  slot.intent.store(0, std::memory_order_release);
  slot.pid.store(0, std::memory_order_relaxed);  // relaxed: for tools
  attached.lock.release();
}

void clear_dead_intent(PusherSlot& slot, std::uint64_t intent) noexcept {
  if (shm::held(slot.holder)) return;  // a new holder: its intent is its own
  // acq_rel: clears only the intent that was judged.
  slot.intent.compare_exchange_strong(intent, 0, std::memory_order_acq_rel);
}

}  // namespace bloccs::lockfree
