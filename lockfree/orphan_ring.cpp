// SPDX-License-Identifier: Apache-2.0
// OrphanRing: reading out a ring whose consumer died.
//
// The reader seals the ring first, so that its tail (MPSC) or its last record (SPSC) is final,
// then starts at the head the dead consumer published last, p, and writes nothing else. A
// header word at p that is not committed is one of these (recovery.cpp says how claims are
// made):
//   - written, not committed: an open claim. A dead claimant's record is skipped by its
//     length; a live claimant's is waited for (until the reader's give_up).
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
#include "lockfree/orphan_ring.hpp"

#include <algorithm>
#include <string>
#include <thread>

#include "lockfree/asymmetric_fence.hpp"
#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring.hpp"

namespace bloccs::lockfree {
namespace {

// How long the reader sleeps between looks at a live pusher's open claim.
constexpr auto kOrphanPoll = std::chrono::microseconds(50);

}  // namespace

Result<OrphanRing> OrphanRing::open(std::string_view ns, std::string_view name,
                                    const shm::ProcessId& dead) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::ring);
  if (!seg) return std::move(seg).error();
  auto config = validated_config(*seg);
  if (!config) return std::move(config).error();
  if (config->owner_pid != dead.pid || config->owner_start_time != dead.start_time)
    return Error{Errc::wrong_process, "ring /dev/shm/" + seg->name() + " was made for pid " +
                                          std::to_string(config->owner_pid) + ", not for pid " +
                                          std::to_string(dead.pid) +
                                          "; it is not that one's to read"};
  if (shm::held(reinterpret_cast<RingControl*>(seg->base())->consumer_alive.lock))
    return Error{Errc::wrong_process, "the consumer of ring /dev/shm/" + seg->name() + ", pid " +
                                          std::to_string(dead.pid) +
                                          ", still runs; only a dead consumer's ring is read out"};
  const RingConfig cfg = *config;
  auto* c = reinterpret_cast<RingControl*>(seg->base());
  // acquire: the head the dead consumer published last, after its zeroing of what it consumed.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  if (head.pos % 8 != 0)  // every record starts 8-aligned
    return Error{Errc::segment_invalid, "ring /dev/shm/" + seg->name() + " is damaged: its head " +
                                            std::to_string(head.pos) +
                                            " is not 8-byte aligned; remove it (shmctl rm)"};
  return OrphanRing(std::move(seg).value(), cfg, head);
}

OrphanRing::OrphanRing(shm::Segment segment, const RingConfig& config, Cursor head)
    : segment_(std::move(segment)), cfg_(config), head_(head) {
  slot_view_.resize(cfg_.slot_count);
  dead_starts_.reserve(cfg_.slot_count);
}

OrphanRing::Step OrphanRing::corrupt(const std::string& what) {
  error_ = Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() + ": " + what +
                                    "; what follows it cannot be read"};
  return Step::error;
}

OrphanRing::Step OrphanRing::next(std::span<const std::byte>& payload, Deadline give_up,
                                  OrphanRead& r) {
  RingControl* c = control();
  const RingConfig& cfg = cfg_;
  const std::uint64_t mask = cfg.capacity - 1;
  const bool spsc = cfg.kind == static_cast<std::uint32_t>(RingKind::spsc);
  auto* slots = reinterpret_cast<PusherSlot*>(segment_.base() + cfg.slots_offset);
  if (segment_.damaged()) [[unlikely]] {  // cut short under us (shm/fence.hpp)
    error_ = segment_.damage_error();
    return Step::error;
  }
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
      if (!committed_header_valid(h, p & mask, cfg.capacity, cfg.max_payload, cfg.slot_count))
        return corrupt("it holds a damaged record at byte " + std::to_string(p) + " (header " +
                       std::to_string(h) + "): a length or slot is out of range");
      payload = {data() + (p & mask) + kRecordHeader, header_length(h)};  // records never wrap
      record_size_ = record_size(header_length(h));
      return Step::record;
    }
    if (spsc) {  // the first record not published is the end (the seal, or a lagging tail)
      // acquire: a sealed tail (a chain's pusher moved on) carries every record before it.
      const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
      r.sealed = tail_sealed(tail, head_);
      return Step::end;
    }
    // acquire: a tail past p carries (release sequence of the CASes) every claimant's intent.
    const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
    if (tail.pos == p) {
      r.sealed = tail_sealed(tail, head_);
      return Step::end;
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
      if (!open_header_valid(h, cfg.max_payload, cfg.slot_count))
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
        const bool header =
            consumed ||
            (header_committed(x) ? committed_header_valid(x, w & mask, cfg.capacity,
                                                          cfg.max_payload, cfg.slot_count)
                                 : open_header_valid(x, cfg.max_payload, cfg.slot_count));
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
        if (!v.alive && (v.intent & kIntentActive) && pos_in_span(v.intent & kPosMask, p, boundary))
          starts.push_back(v.intent & kPosMask);
      std::sort(starts.begin(), starts.end());
      const auto dead_claims =
          static_cast<std::uint64_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
      head_ = Cursor{boundary, (head_.count + dead_claims) & kCountMask};
      r.abandoned += dead_claims;
      continue;
    }
    // A live pusher's claim at p: it commits within nanoseconds unless stopped or descheduled.
    if (Clock::now() >= give_up) return Step::pending;
    std::this_thread::sleep_for(kOrphanPoll);
  }
}

Status OrphanRing::seal(Deadline give_up) {
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
  // SPSC: refuse every publication from now on, then wait for one under way to end (the Dekker
  // pair of ring_layout.hpp, "Sealing": the pusher announces, then looks at `refused`).
  // seq_cst: before the heavy fence, which orders our look at `in_push` after it everywhere.
  c->producer.refused.fetch_or(kRefusedSealed, std::memory_order_seq_cst);
  // Where the kernel refuses a heavy fence, a store still on its way from another CPU lands
  // within microseconds (x86-64 drains store buffers in order); 10 ms is a wide margin.
  if (!heavy_fence()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto* slot = reinterpret_cast<const PusherSlot*>(segment_.base() + cfg_.slots_offset);
  for (;;) {
    // acquire: pairs with the pusher's release of in_push; what it published is visible.
    const std::uint32_t announced = c->producer.in_push.load(std::memory_order_acquire);
    // A pusher killed mid-publication leaves its announcement: nothing more comes from it.
    if (announced == 0 || !shm::held(slot->holder)) break;
    if (Clock::now() >= give_up) {
      in_flight_ = announced;  // it may still publish them: counted as unread, never as read
      break;
    }
    std::this_thread::sleep_for(kOrphanPoll);
  }
  // Walk the published records from the head to the first word that is not one, and put the
  // seal there, for tools and for a later take-over. Bounded by capacity.
  const std::uint64_t mask = cfg_.capacity - 1;
  Cursor at = head_;
  for (std::uint64_t walked = 0; walked <= cfg_.capacity;) {
    auto word = header_word(data(), at.pos & mask);
    std::uint64_t h = 0;
    // acq_rel: a record published meanwhile (by a pusher given up on) is read (acquire).
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

std::uint64_t OrphanRing::unread() const noexcept {
  // relaxed: a count for a report; the dead consumer's ring changes no more (but for a live
  // pusher's commit, which orders nothing we read here).
  const Cursor tail = Cursor::unpack(control()->producer.tail.load(std::memory_order_relaxed));
  if (pos_before(tail.pos, head_.pos)) return 0;  // an SPSC tail that lags its last record
  std::uint64_t n = count_distance(tail.count, head_.count);
  if (n >= kSealCount) n -= kSealCount;
  return std::min<std::uint64_t>(n, cfg_.buffer);  // a damaged tail cannot make it absurd
}

}  // namespace bloccs::lockfree
