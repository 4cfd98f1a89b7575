// The single-pusher discipline off its hot path: resuming, batches, loans.
#include "lockfree/spsc_pusher.hpp"

#include <string>

namespace bloccs::lockfree {

Result<SpscPusher> SpscPusher::open(std::string_view ns, std::string_view name) {
  auto attached = RingAttachment::open(ns, name);
  if (!attached) return std::move(attached).error();
  if (attached->kind() != RingKind::spsc)
    return Error{Errc::wrong_kind, "ring /dev/shm/" + std::string(name) +
                                       " is multi-pusher (MPSC), not single-pusher; open it "
                                       "with RingPusher or MpscPusher"};
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
  return pusher;
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
  const Cursor first = tail_;
  Cursor t = first;
  std::uint64_t first_word = 0;
  std::size_t i = done;
  // Every record but the first is written committed; the first word stays zero until the CAS
  // below, so the consumer sees none of them before it sees all of them.
  for (; i < bodies.size(); ++i) {
    const auto len = static_cast<std::uint32_t>(head.size() + bodies[i].size());
    const std::uint64_t bytes = record_size(len);
    if (!fits(t, bytes)) break;
    const std::uint64_t off = t.pos & mask;
    const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
    const std::uint64_t rec = pad ? 0 : off;
    // relaxed: the terminator (see claim_record); the records are published by the CAS.
    header_word(data(), (rec + bytes) & mask).store(0, std::memory_order_relaxed);
    write_payload(rec, head, bodies[i]);
    const std::uint64_t header = make_record_header(len, 0, true);
    const std::uint64_t pad_header =
        make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
    if (i == done) {
      if (pad) header_word(data(), 0).store(header, std::memory_order_relaxed);  // relaxed: ditto
      first_word = pad ? pad_header : header;
    } else {
      // relaxed: published by the CAS on the group's first word.
      if (pad) header_word(data(), off).store(pad_header, std::memory_order_relaxed);
      header_word(data(), rec).store(header, std::memory_order_relaxed);
    }
    t = t.advanced(pad + bytes);
  }
  // seq_cst CAS from zero: publishes the group (see publish).
  std::uint64_t found = 0;
  if (!header_word(data(), first.pos & mask)
           .compare_exchange_strong(found, first_word, std::memory_order_seq_cst,
                                    std::memory_order_relaxed))
    return tail_word_error(found, first.pos);
  done = i;
  tail_ = t;
  // release: as in publish.
  c->producer.tail.store(tail_.pack(), std::memory_order_release);
  wake(c->data.line, 1, std::memory_order_seq_cst);
  return {};
}

Result<RingLoan> SpscPusher::loan(std::uint32_t len, const Patience& patience) {
  if (!may_push(len)) return std::move(check_push(len)).error();
  RingClaim claim;
  if (Status st = claim_record(len, patience, claim); !st) return std::move(st).error();
  return RingLoan{claim, {data() + claim.rec + kRecordHeader, len}};
}

Status SpscPusher::commit(RingLoan& loan, std::uint32_t used) {
  if (Status st = check_commit(loan, used); !st) return st;
  return checked(publish(loan.claim, used));
}

}  // namespace bloccs::lockfree
