#include "lockfree/pusher_slots.hpp"

#include <string>

#include "shm/process.hpp"

namespace bloccs::lockfree {

std::uint64_t self_token() {
  const shm::ProcessId me = shm::self_process();
  return ((me.start_time & 0xffffffffull) << 32) | me.pid;
}

bool token_alive(std::uint64_t token) {
  if (token == 0) return false;
  return shm::is_alive({token_pid(token), token >> 32}, 0xffffffffull);
}

Result<std::uint32_t> attach_slot(std::span<PusherSlot> slots, std::uint64_t head_pos,
                                  std::string_view ring_name, bool single_pusher) {
  const std::uint64_t me = self_token();
  if (shm::self_process().start_time == 0)
    return Error{Errc::system_error,
                 "cannot read this process's start time from /proc/self/stat (out of file "
                 "descriptors?); without it other processes could not tell whether it is alive"};
  std::uint32_t live_holder = 0;
  for (std::uint32_t i = 0; i < slots.size(); ++i) {
    PusherSlot& s = slots[i];
    // acquire: if the owner is dead we read its last intent below, written before its death.
    std::uint64_t owner = s.owner.load(std::memory_order_acquire);
    if (owner != 0) {
      if (token_alive(owner)) {
        live_holder = token_pid(owner);
        continue;
      }
      // A dead owner's open claim (intent at or past the consumer) must stay visible to the
      // consumer's recovery; only an idle slot, or one whose claim was passed, is taken over.
      const std::uint64_t intent = s.intent.load(std::memory_order_acquire);
      if (intent != 0 && !pos_before(intent & kPosMask, head_pos)) continue;
    }
    // acq_rel: the winner alone owns the slot; it then resets the intent it inherited.
    if (s.owner.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) {
      s.intent.store(0, std::memory_order_relaxed);  // relaxed: nobody acts on it until we push
      return i;
    }
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

void release_slot(PusherSlot& slot, std::uint64_t owner, std::uint64_t intent) {
  // acquire: pairs with the CAS that made `owner` the holder. A forked child that inherited a
  // pusher, or a consumer late to clear a dead owner, must not touch another holder's slot.
  if (slot.owner.load(std::memory_order_acquire) != owner) return;
  // acq_rel: clears only the intent that was judged; pairs with attach's acquire.
  slot.intent.compare_exchange_strong(intent, 0, std::memory_order_acq_rel);
  // acq_rel: only clears the slot if `owner` still holds it (a new owner may have taken it).
  slot.owner.compare_exchange_strong(owner, 0, std::memory_order_acq_rel);
}

}  // namespace bloccs::lockfree
