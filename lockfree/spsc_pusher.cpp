// SPDX-License-Identifier: Apache-2.0
// The single-pusher discipline off its hot path: resuming, batches, loans.
#include "lockfree/spsc_pusher.hpp"

#include <string>

#include "shm/test_hooks.hpp"

namespace bloccs::lockfree {

Result<SpscPusher> SpscPusher::open(std::string_view ns, std::string_view name) {
  auto attached = RingAttachment::open(ns, name, RingKind::spsc);
  if (!attached) return std::move(attached).error();
  return resume(std::move(attached).value());
}

Result<SpscPusher> SpscPusher::resume(RingAttachment attached) {
  SpscPusher pusher(std::move(attached));
  RingControl* c = pusher.control();
  const RingConfig& cfg = pusher.cfg_;
  // The shared tail lags the true one if a predecessor was killed between publishing its last
  // record and storing the tail: step over committed records. The word at the true tail is
  // always zero (the terminator), so this stops there.
  // acquire: with the headers' acquire below, the predecessor's last writes are visible.
  Cursor t = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
  if (t.pos % kRecordHeader != 0) return pusher.misaligned_tail(t);
  for (std::uint64_t walked = 0;;) {
    const std::uint64_t off = t.pos & (cfg.capacity - 1);
    const std::uint64_t h = header_word(pusher.data(), off).load(std::memory_order_acquire);
    if (!header_committed(h)) break;
    const std::uint64_t size = record_size(header_length(h));
    walked += size;
    if (!committed_header_valid(h, off, cfg.capacity, cfg.max_payload, cfg.slot_count) ||
        walked > cfg.capacity)
      return Error{Errc::corrupt, "ring /dev/shm/" + pusher.segment_.name() +
                                      " has committed records past its tail that do not fit; "
                                      "remove it (shmctl rm) and restart its owner"};
    t = header_type(h) == kTypePad ? t.skipped(size) : t.advanced(size);
  }
  pusher.tail_ = t;
  // relaxed: only tools and successors read it (see publish).
  c->producer.tail.store(t.pack(), std::memory_order_relaxed);
  // relaxed: a predecessor killed mid-publication left its announcement; we publish nothing yet.
  c->producer.in_push.store(0, std::memory_order_relaxed);
  return pusher;
}

Status SpscPusher::make_room(std::uint64_t bytes, const Patience& patience,
                             std::uint32_t announced) {
  // relaxed: parked, we publish nothing (a sealer must not wait for us meanwhile).
  control()->producer.in_push.store(0, std::memory_order_relaxed);
  if (Status st = wait_for_space(tail_, bytes, patience.resolve(), false); !st) return st;
  if (announced == 0) return {};
  announce(announced);
  // relaxed: ordered after the announcement by its fence (a sealer may have come meanwhile).
  if (control()->producer.refused.load(std::memory_order_relaxed) != 0) return refusal();
  shm::test_hook("spsc.announced");  // announced and not refused, not yet published
  return {};
}

Status SpscPusher::push_batch(std::span<const std::byte> head,
                              std::span<const std::span<const std::byte>> bodies,
                              const Patience& patience, std::size_t& done) {
  if (Status st = check_batch(head, bodies, done); !st) return st;
  // A timeout counts from the call, for the whole batch (no clock read without one).
  const Deadline deadline = patience.resolve();
  while (done < bodies.size()) {
    const std::uint64_t bytes = record_size(head.size() + bodies[done].size());
    if (!room(tail_, bytes)) {
      if (Status st = wait_for_space(tail_, bytes, deadline, false); !st) return st;
    }
    if (Status st = checked(publish_group(head, bodies, done)); !st) return st;
  }
  return {};
}

Status SpscPusher::publish_group(std::span<const std::byte> head,
                                 std::span<const std::span<const std::byte>> bodies,
                                 std::size_t& done) {
  RingControl* c = control();
  const std::uint64_t mask = cfg_.capacity - 1;
  // The records that fit now, counted first: the announcement says how many (a sealer that
  // gives up waiting for us counts them as lost).
  std::size_t end = done;
  for (Cursor t = tail_; end < bodies.size(); ++end) {
    const std::uint64_t bytes = record_size(head.size() + bodies[end].size());
    if (!fits(t, bytes)) break;
    t = t.advanced(pad_before(t.pos & mask, bytes, cfg_.capacity) + bytes);
  }
  announce(static_cast<std::uint32_t>(end - done));
  // relaxed: ordered after the announcement by its fence.
  if (c->producer.refused.load(std::memory_order_relaxed) != 0) return unannounce(refusal());
  const Cursor first = tail_;
  Cursor t = first;
  std::uint64_t first_word = 0;
  // Every record but the first is written committed; the first word stays zero until the store
  // below, so the consumer sees none of them before it sees all of them.
  for (std::size_t i = done; i < end; ++i) {
    const auto len = static_cast<std::uint32_t>(head.size() + bodies[i].size());
    const std::uint64_t bytes = record_size(len);
    const std::uint64_t off = t.pos & mask;
    const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
    const std::uint64_t rec = pad ? 0 : off;
    // relaxed: the terminator (see claim_record); the records are published by the store below.
    header_word(data(), (rec + bytes) & mask).store(0, std::memory_order_relaxed);
    write_payload(rec, head, bodies[i]);
    const std::uint64_t header = make_record_header(len, 0, true);
    const std::uint64_t pad_header =
        make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
    if (i == done) {
      if (pad) header_word(data(), 0).store(header, std::memory_order_relaxed);  // relaxed: ditto
      first_word = pad ? pad_header : header;
    } else {
      // relaxed: published by the store of the group's first word.
      if (pad) header_word(data(), off).store(pad_header, std::memory_order_relaxed);
      header_word(data(), rec).store(header, std::memory_order_relaxed);
    }
    t = t.advanced(pad + bytes);
  }
  // release: publishes the group (see publish).
  header_word(data(), first.pos & mask).store(first_word, std::memory_order_release);
  done = end;
  tail_ = t;
  // release: as in publish.
  c->producer.tail.store(tail_.pack(), std::memory_order_release);
  // release: a sealer that reads zero here reads the group too.
  c->producer.in_push.store(0, std::memory_order_release);
  light_fence(light_wake_);  // the group before the look at a sleeping consumer (see publish)
  wake(c->data.line, 1);
  return {};
}

Result<RingLoan> SpscPusher::loan(std::uint32_t len, const Patience& patience) {
  if (!may_push(len)) return std::move(check_push(len)).error();
  RingClaim claim;
  // Announced only at its commit: the claim writes nothing a sealer reads (its terminator lies
  // past the true tail, where a seal goes).
  if (Status st = claim_record(len, patience, 0, claim); !st) return std::move(st).error();
  return RingLoan{claim, {data() + claim.rec + kRecordHeader, len}};
}

Status SpscPusher::commit(RingLoan& loan, std::uint32_t used) {
  if (Status st = check_commit(loan, used); !st) return st;
  announce(1);
  // relaxed: ordered after the announcement by its fence.
  if (control()->producer.refused.load(std::memory_order_relaxed) != 0)
    return unannounce(refusal());
  publish(loan.claim, used);
  return checked();
}

}  // namespace bloccs::lockfree
