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
// Reading a ring whose consumer died (Ring::open_orphan, seal_orphan, read_orphan). The reader
// seals the ring first, so that its tail (MPSC) or its last record (SPSC) is final, then starts
// at the head the dead consumer published last, p, and writes nothing else. A header word at p
// that is not committed is one of these:
//   - written, not committed: as case 1. A dead claimant's record is skipped by its length; a
//     live claimant's is waited for (until the reader's give_up).
//   - consumed: a record the dead consumer had handed over and was zeroing (ring_layout.hpp):
//     skipped by its length, never handed over again.
//   - zero: the tail (the end), or a claim nothing of which was written (dead claimant: skipped;
//     live claimant, whose intent is p: waited for), or records the dead consumer had handed
//     over and zeroed without publishing the head past them. All but live claims are skipped
//     together, up to the first live intent, the first non-zero word (a header: the consumer
//     zeroes a record's header only after its payload), or the tail. A non-zero word that is
//     not a header there is damage.
// An SPSC ring needs none of this: its consumer zeroes nothing and its pusher publishes a record
// whole by its header, so the first header not committed (the seal) is the end.
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring.hpp"

namespace bloccs::lockfree {
namespace {

bool in_span(std::uint64_t x, std::uint64_t from, std::uint64_t to) {
  return x == from || (pos_before(from, x) && pos_before(x, to));
}

bool header_in_range(std::uint64_t h, const RingConfig& cfg) {
  const std::uint32_t slot = header_slot_plus_one(h);
  return header_type(h) == kTypeData && !(h & kHeaderReservedBits) &&
         header_length(h) <= cfg.max_payload && slot != 0 && slot <= cfg.slot_count;
}

// How long an orphan's reader sleeps between looks at a live pusher's open claim.
constexpr auto kOrphanPoll = std::chrono::microseconds(50);

}  // namespace

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
      if (x == p) return Recovery::claimant_alive;
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
      if (!in_span(v.intent & kPosMask, p, boundary)) continue;
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

Ring::State Ring::orphan_peek(std::span<const std::byte>& payload, Deadline give_up,
                              OrphanRead& r) {
  RingControl* c = control();
  const RingConfig& cfg = cfg_;
  const std::uint64_t mask = cfg.capacity - 1;
  const bool spsc = cfg.kind == static_cast<std::uint32_t>(RingKind::spsc);
  auto* slots = reinterpret_cast<PusherSlot*>(segment_.base() + cfg.slots_offset);
  auto corrupt = [&](const std::string& what) {
    error_ = Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() + ": " + what +
                                      "; what follows it cannot be read"};
    return State::error;
  };
  // Every step moves the head forward by at least a word, towards a tail at most `capacity`
  // ahead (checked): bounded.
  for (;;) {
    const std::uint64_t p = head_.pos;
    // acquire: pairs with the pusher's release store of the committed header (payload visible).
    std::uint64_t h = header_word(data(), p & mask).load(std::memory_order_acquire);
    if (header_committed(h) && header_type(h) != kTypeData &&
        committed_header_valid(h, p & mask, cfg.capacity, cfg.max_payload, cfg.slot_count)) {
      // A pad, or an aborted loan: no message. Stepped over without writing anything.
      const std::uint64_t size = record_size(header_length(h));
      head_ = header_type(h) == kTypePad ? head_.skipped(size) : head_.advanced(size);
      continue;
    }
    if (header_committed(h)) {
      const State s = peek(payload);  // checks it as the consumer does
      // The consumer's advice on a damaged record (restart the owner) does not apply here.
      if (s == State::error && error_.code == Errc::corrupt)
        error_.message = "ring /dev/shm/" + segment_.name() + " holds a damaged record at byte " +
                         std::to_string(p) + " (header " + std::to_string(h) +
                         "): a length or slot is out of range";
      return s;
    }
    if (spsc) {  // the first record not published is the end (the seal, or a lagging tail)
      // acquire: a sealed tail (a chain's pusher moved on) carries every record before it.
      const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
      r.sealed = tail_sealed(tail, head_);
      return State::empty;
    }
    // acquire: a tail past p carries (release sequence of the CASes) every claimant's intent.
    const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
    if (tail.pos == p) {
      r.sealed = tail_sealed(tail, head_);
      return State::empty;
    }
    if (pos_distance(tail.pos, p) > cfg.capacity)
      return corrupt("its tail is further ahead of the head than its capacity");
    // Every claim starts and ends 8-aligned: a tail that is not would become our head (found
    // by the ring_records fuzz target).
    if (tail.pos % kRecordHeader != 0)
      return corrupt("its tail " + std::to_string(tail.pos) + " is not 8-byte aligned");

    if (header_type(h) == kTypeConsumed) {  // handed over by the dead consumer, being zeroed
      const std::uint64_t skip = record_size(header_length(h));
      if ((h & kHeaderReservedBits) || header_length(h) > cfg.max_payload ||
          skip > pos_distance(tail.pos, p) || (p & mask) + skip > cfg.capacity)
        return corrupt("the consumed record at byte " + std::to_string(p) + " has a bad header");
      head_ = head_.advanced(skip);
      continue;
    }

    bool live_at_p = false;
    std::uint64_t boundary = tail.pos;  // the zero span ends at the first live intent past p
    std::vector<SlotView>& view = slot_view_;
    for (std::uint32_t i = 0; i < cfg.slot_count; ++i) {
      view[i].alive = shm::held(slots[i].holder);  // first: see recover_abandoned
      // acquire: a slot seen idle means its holder's commit (written before) is visible to us.
      view[i].intent = slots[i].intent.load(std::memory_order_acquire);
      if (!view[i].alive || !(view[i].intent & kIntentActive)) continue;
      const std::uint64_t x = view[i].intent & kPosMask;
      if (x % kRecordHeader != 0)  // it would become our head
        return corrupt("pusher slot " + std::to_string(i) + " claims byte " + std::to_string(x) +
                       ", which is not 8-byte aligned");
      if (x == p) live_at_p = true;
      if (pos_before(p, x) && pos_before(x, boundary)) boundary = x;
    }
    // acquire: the header may have been written or committed meanwhile.
    h = header_word(data(), p & mask).load(std::memory_order_acquire);
    if (header_committed(h)) continue;

    if (h != 0) {  // written, not committed
      if (!header_in_range(h, cfg))
        return corrupt("the open record at byte " + std::to_string(p) + " has a bad header");
      const SlotView& v = view[header_slot_plus_one(h) - 1];
      if (!v.alive) {
        if (v.intent != (kIntentActive | p))
          return corrupt("the open record at byte " + std::to_string(p) + " names pusher slot " +
                         std::to_string(header_slot_plus_one(h) - 1) + ", which did not claim it");
        const std::uint64_t skip = record_size(header_length(h));
        if (skip > pos_distance(tail.pos, p)) return corrupt("an open record runs past the tail");
        head_ = Cursor{(p + skip) & kPosMask, (head_.count + 1) & kCountMask};
        ++r.abandoned;
        continue;
      }
    } else if (!live_at_p) {  // a zero span: consumed by the dead consumer, or dead claims
      for (std::uint64_t w = (p + kRecordHeader) & kPosMask; pos_before(w, boundary);
           w = (w + kRecordHeader) & kPosMask) {
        // acquire: a header found here is read as a record next (its commit, if any, pairs).
        const std::uint64_t x = header_word(data(), w & mask).load(std::memory_order_acquire);
        if (x == 0) continue;
        // The first non-zero word after zeros is a header (ring_layout.hpp, consumed).
        const bool consumed = header_type(x) == kTypeConsumed && !(x & kHeaderReservedBits) &&
                              header_length(x) <= cfg.max_payload;
        const bool header = consumed || (header_committed(x) ? committed_header_valid(
                                                                   x, w & mask, cfg.capacity,
                                                                   cfg.max_payload, cfg.slot_count)
                                                             : header_in_range(x, cfg));
        if (!header || record_size(header_length(x)) > pos_distance(tail.pos, w))
          return corrupt("byte " + std::to_string(w) + " holds a word that is not a header " +
                         "where only zeros and headers can be");
        boundary = w;
        break;
      }
      // The dead claims in the span are its messages we know of (a claim's intent holds its
      // start); the dead consumer's records in it left no trace, so head_.count lags by them.
      std::vector<std::uint64_t>& starts = dead_starts_;
      starts.clear();
      for (const SlotView& v : view)
        if (!v.alive && (v.intent & kIntentActive) && in_span(v.intent & kPosMask, p, boundary))
          starts.push_back(v.intent & kPosMask);
      std::sort(starts.begin(), starts.end());
      const auto dead_claims =
          static_cast<std::uint64_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
      head_ = Cursor{boundary, (head_.count + dead_claims) & kCountMask};
      r.abandoned += dead_claims;
      continue;
    }
    // A live pusher's claim at p: it commits within nanoseconds unless stopped or descheduled.
    if (Clock::now() >= give_up) return State::pending;
    std::this_thread::sleep_for(kOrphanPoll);
  }
}

Status Ring::seal_orphan() {
  RingControl* c = control();
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::mpsc)) {
    // relaxed: a first guess for the CAS, which validates it.
    std::uint64_t observed = c->producer.tail.load(std::memory_order_relaxed);
    for (;;) {
      Cursor t = Cursor::unpack(observed);
      if (tail_sealed(t, head_)) return {};
      t.count = (t.count + kSealCount) & kCountMask;
      // acq_rel: the sealed tail we read up to carries every claim before it (acquire), and a
      // pusher whose CAS fails on it sees the seal (release).
      if (c->producer.tail.compare_exchange_weak(observed, t.pack(), std::memory_order_acq_rel,
                                                 std::memory_order_relaxed))
        return {};
    }
  }
  // SPSC: walk the published records from the head to the first word that is not one, and put
  // the seal there; the pusher's compare-and-swap from zero then fails. Bounded by capacity.
  const std::uint64_t mask = cfg_.capacity - 1;
  Cursor at = head_;
  for (std::uint64_t walked = 0; walked <= cfg_.capacity;) {
    auto word = header_word(data(), at.pos & mask);
    std::uint64_t h = 0;
    // acq_rel: a record published meanwhile is read (acquire); our seal is seen by the CAS.
    if (word.compare_exchange_strong(h, kSealHeader, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      return {};
    if (h == kSealHeader) return {};  // sealed before (an earlier take-over that died)
    if (!header_committed(h) ||
        !committed_header_valid(h, at.pos & mask, cfg_.capacity, cfg_.max_payload, cfg_.slot_count))
      return Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() + " holds word " +
                                      std::to_string(h) + " at byte " + std::to_string(at.pos) +
                                      " where a record or its end must be"};
    const std::uint64_t size = record_size(header_length(h));
    walked += size;
    at = header_type(h) == kTypePad ? at.skipped(size) : at.advanced(size);
  }
  return Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() +
                                  " holds more published records than its capacity"};
}

std::uint64_t Ring::orphan_unread() const noexcept {
  // relaxed: a count for a report; the dead consumer's ring changes no more (but for a live
  // pusher's commit, which orders nothing we read here).
  const Cursor tail = Cursor::unpack(control()->producer.tail.load(std::memory_order_relaxed));
  if (pos_before(tail.pos, head_.pos)) return 0;  // an SPSC tail that lags its last record
  std::uint64_t n = count_distance(tail.count, head_.count);
  if (n >= kSealCount) n -= kSealCount;
  return std::min<std::uint64_t>(n, cfg_.buffer);  // a damaged tail cannot make it absurd
}

}  // namespace bloccs::lockfree
