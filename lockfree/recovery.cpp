// SPDX-License-Identifier: Apache-2.0
// Skipping the claims of pushers that died between claim and commit (MPSC only).
//
// A pusher claims [p, p+size) with one CAS on the tail, having first written p into its slot's
// intent. Right after the CAS it stores the record header (uncommitted), copies the payload,
// and stores the header again, committed. Consumed space is zeroed. So when the record at the
// consumer's head p stays uncommitted for abandon_after, exactly one of these holds:
//
//   1. the header is written but not committed: its slot names the claimant. A dead claimant's
//      record is skipped using the header's length (checked against max_payload).
//   2. the header is zero: nothing of the claim was written. If a live slot's intent is p, its
//      owner is about to write it: keep waiting. Otherwise every claim from p up to the first
//      live intent, the first non-zero word (the next written header) or the tail belongs to a
//      dead pusher that wrote nothing; all are skipped together. How many messages they were is
//      the number of distinct dead intents in that span: every tail value is a claim start,
//      and each dead claimant's intent still holds its claim's start.
//
// The header-before-payload order is kept by a compiler barrier and x86-64's in-order stores.
//
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring.hpp"

namespace bloccs::lockfree {

Ring::Recovery Ring::recover_abandoned() {
  RingControl* c = control();
  const RingConfig& cfg = cfg_;
  const std::uint64_t mask = cfg.capacity - 1;
  const std::uint64_t p = head_.pos;
  auto* slots = reinterpret_cast<PusherSlot*>(segment_.base() + cfg.slots_offset);
  auto corrupt = [&](const std::string& what) {
    damage(what);
    return Recovery::corrupt;
  };

  // acquire: a tail past p carries (release sequence of the CASes) every claimant's intent.
  const std::uint64_t tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire)).pos;
  if (tail == p) return Recovery::claimant_alive;  // nothing claimed: just empty
  if (pos_distance(tail, p) > cfg.capacity)
    return corrupt("its tail is further ahead of the head than its capacity");
  // Every claim starts and ends 8-aligned: a tail that is not would become our head.
  if (tail % kRecordHeader != 0)
    return corrupt("its tail " + std::to_string(tail) + " is not 8-byte aligned");
  std::vector<SlotView>& view = slot_view_;
  for (std::uint32_t i = 0; i < cfg.slot_count; ++i) {
    // Alive first, then the intent: a holder seen dead wrote its last intent before dying.
    view[i].alive = shm::held(slots[i].holder);
    // acquire: a slot seen idle means its holder's commit (written before) is visible to us.
    view[i].intent = slots[i].intent.load(std::memory_order_acquire);
  }
  // acquire: the header may have been committed meanwhile, with its payload.
  const std::uint64_t h = header_word(data(), p & mask).load(std::memory_order_acquire);
  if (header_committed(h)) return Recovery::claimant_alive;

  std::uint64_t skip_bytes = 0;
  std::uint64_t skip_messages = 0;
  std::vector<std::uint32_t>& dead_slots = dead_slots_;
  dead_slots.clear();
  if (h != 0) {  // case 1: written, not committed
    const std::uint32_t slot = header_slot_plus_one(h);
    if (header_type(h) != kTypeData || (h & kHeaderReservedBits) ||
        header_length(h) > cfg.max_payload || slot == 0 || slot > cfg.slot_count)
      return corrupt("the open record at byte " + std::to_string(p) + " has a bad header");
    const SlotView& v = view[slot - 1];
    if (v.alive) return Recovery::claimant_alive;
    if (v.intent != (kIntentActive | p))
      return corrupt("the open record at byte " + std::to_string(p) + " names pusher slot " +
                     std::to_string(slot - 1) + ", which did not claim it");
    skip_bytes = record_size(header_length(h));
    if (skip_bytes > pos_distance(tail, p) || (p & mask) + skip_bytes > cfg.capacity)
      return corrupt("an open record runs past the tail or the end of the data area");
    skip_messages = 1;
    dead_slots.push_back(slot - 1);
  } else {  // case 2: nothing written
    std::uint64_t boundary = tail;
    for (const SlotView& v : view) {
      if (!v.alive || !(v.intent & kIntentActive)) continue;
      const std::uint64_t x = v.intent & kPosMask;
      if (intent_claims(x, p, cfg.capacity)) return Recovery::claimant_alive;
      if (x % kRecordHeader != 0)  // it would become our head
        return corrupt("a pusher slot claims byte " + std::to_string(x) +
                       ", which is not 8-byte aligned");
      if (pos_before(p, x) && pos_before(x, boundary)) boundary = x;
    }
    for (std::uint64_t w = (p + kRecordHeader) & kPosMask; pos_before(w, boundary);
         w = (w + kRecordHeader) & kPosMask) {
      // relaxed: these words belong to dead claims; the first non-zero one is a header.
      if (header_word(data(), w & mask).load(std::memory_order_relaxed) != 0) {
        boundary = w;
        break;
      }
    }
    std::vector<std::uint64_t>& starts = dead_starts_;
    starts.clear();
    for (std::uint32_t i = 0; i < cfg.slot_count; ++i) {
      const SlotView& v = view[i];
      if (v.alive || !(v.intent & kIntentActive)) continue;
      if (!pos_in_span(v.intent & kPosMask, p, boundary)) continue;
      starts.push_back(v.intent & kPosMask);
      dead_slots.push_back(i);
    }
    std::sort(starts.begin(), starts.end());
    skip_messages =
        static_cast<std::uint64_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
    if (skip_messages == 0)
      return corrupt("the claim at byte " + std::to_string(p) + " has no claimant, live or dead");
    skip_bytes = pos_distance(boundary, p);
  }

  zero_ring(data(), cfg.capacity, p & mask, static_cast<std::size_t>(skip_bytes));
  head_ = Cursor{(p + skip_bytes) & kPosMask, (head_.count + skip_messages) & kCountMask};
  for (std::uint32_t i : dead_slots) clear_dead_intent(slots[i], view[i].intent);
  // relaxed: a statistic; only the consumer writes it.
  c->counters.abandoned.store(c->counters.abandoned.load(std::memory_order_relaxed) + skip_messages,
                              std::memory_order_relaxed);
  publish_head();
  return Recovery::skipped;
}

// A pusher killed after committing (or before its CAS) leaves an intent behind in its slot.
// Once the head has passed it nobody needs it, but left alone for 2^39 bytes it would look
// like a position ahead again: publish_head clears such slots each time the head has moved
// another 2^30 bytes.
void Ring::release_dead_slots_behind_head() {
  auto* slots = reinterpret_cast<PusherSlot*>(segment_.base() + cfg_.slots_offset);
  for (std::uint32_t i = 0; i < cfg_.slot_count; ++i) {
    // relaxed: a hint; clear_dead_intent re-checks both before it touches the slot.
    const std::uint64_t intent = slots[i].intent.load(std::memory_order_relaxed);
    if (!(intent & kIntentActive) || !pos_before(intent & kPosMask, head_.pos)) continue;
    if (!shm::held(slots[i].holder)) clear_dead_intent(slots[i], intent);
  }
}

}  // namespace bloccs::lockfree
