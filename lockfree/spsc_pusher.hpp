// The single-pusher discipline (RingKind::spsc): this pusher is the only writer of the ring's
// tail. A claim is a look at its own tail and the room before the head last seen, with no
// read-modify-write; a record is published whole by one compare-and-swap of its header word
// from zero (ring_layout.hpp): the word at the true tail is always zero, because each record
// zeroes the word after it (its terminator) before it is published, and a take-over that read
// the ring writes a seal header there, which makes a late publication fail (Errc::closed).
//
// One SpscPusher per ring at a time (its one pusher slot), used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "bloccs/result.hpp"
#include "lockfree/ring_attachment.hpp"

namespace bloccs::lockfree {

class SpscPusher : public RingAttachment {
 public:
  // Errc::wrong_kind if ring `name` is not single-pusher; RingAttachment::open's errors.
  static Result<SpscPusher> open(std::string_view ns, std::string_view name);
  // Resumes where the ring's last pusher stopped (it may have published records without
  // storing the tail: this steps over them). `attached` must be to an SPSC ring.
  static Result<SpscPusher> resume(RingAttachment attached);

  SpscPusher(SpscPusher&&) noexcept = default;

  // As RingPusher::push.
  [[gnu::always_inline]] Status push(std::span<const std::byte> head,
                                     std::span<const std::byte> body, const Patience& patience) {
    const std::size_t len = head.size() + body.size();
    if (!may_push(len)) [[unlikely]]
      return check_push(len);
    RingClaim claim;
    if (Status st = claim_record(static_cast<std::uint32_t>(len), patience, claim); !st)
        [[unlikely]]
      return st;
    write_payload(claim.rec, head, body);
    return checked(publish(claim, claim.len));
  }
  // As RingPusher::push_batch: the records that fit are written, then published at once by one
  // compare-and-swap, one tail store and one wake-up.
  Status push_batch(std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> bodies, const Patience& patience,
                    std::size_t& done);
  Result<RingLoan> loan(std::uint32_t len, const Patience& patience);
  Status commit(RingLoan& loan, std::uint32_t used);
  // Nothing of a loan is shared before its commit: an abort only counts it.
  void abort(RingLoan&) noexcept { count_abort(); }

  // The byte position the next record will take (the due lane's timer records it).
  std::uint64_t next_position() const noexcept { return tail_.pos; }

 private:
  explicit SpscPusher(RingAttachment attached) : RingAttachment(std::move(attached)) {}

  // Inline in push(): the hot path pays no calls between its steps.
  [[gnu::always_inline]] Status claim_record(std::uint32_t len, const Patience& patience,
                                             RingClaim& claim) {
    const std::uint64_t bytes = record_size(len);
    if (!room(tail_, bytes)) [[unlikely]] {
      if (Status st = wait_for_space(tail_, bytes, patience.resolve(), false); !st) return st;
    }
    const std::uint64_t mask = cfg_.capacity - 1;
    const std::uint64_t off = tail_.pos & mask;
    const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
    claim = RingClaim{tail_, pad ? 0 : off, len, pad != 0};
    // relaxed: the terminator. The word after our record reads zero ("nothing yet") before the
    // publication's CAS, so the consumer stops there, whatever the last lap left. Written now,
    // well before the CAS: a consumer that has caught up polls the line it lies on next, and
    // should not have it taken away right before the record lands. Nothing else is written yet:
    // the claim becomes visible whole at its publication.
    header_word(data(), (claim.rec + bytes) & mask).store(0, std::memory_order_relaxed);
    return {};
  }

  // Publishes the first `used` payload bytes of `claim`. Inline in push().
  [[gnu::always_inline]] Status publish(const RingClaim& claim, std::uint32_t used) {
    RingControl* c = control();
    const std::uint64_t mask = cfg_.capacity - 1;
    const std::uint64_t bytes = record_size(used);
    // relaxed: a loan committed shorter ends earlier: its terminator moves there (see
    // claim_record).
    if (bytes != record_size(claim.len)) [[unlikely]]
      header_word(data(), (claim.rec + bytes) & mask).store(0, std::memory_order_relaxed);
    std::uint64_t first = make_record_header(used, 0, true);
    std::uint64_t claimed = bytes;
    if (claim.padded) [[unlikely]] {
      // relaxed: published with the pad by the CAS below; read only by a consumer past the pad.
      header_word(data(), 0).store(first, std::memory_order_relaxed);
      const std::uint64_t pad = cfg_.capacity - (claim.at.pos & mask);
      first = make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
      claimed += pad;
    }
    // seq_cst CAS from zero: publishes the claim (pad, record, terminator) to the consumer's
    // acquire, and fails only where a take-over sealed the ring (ring_layout.hpp, seal), so
    // that no record goes where nobody will read it. It is also the Dekker store before the
    // wake below (a locked instruction, as the fence it replaces was).
    std::uint64_t found = 0;
    if (!header_word(data(), claim.at.pos & mask)
             .compare_exchange_strong(found, first, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) [[unlikely]]
      return tail_word_error(found, claim.at.pos);
    tail_ = claim.at.advanced(claimed);
    // release: the tail tells tools the depth, a successor where to resume, and a waiting
    // consumer that the record at its head was published (a consumer that sees the tail past
    // its head and no record there knows the ring is damaged); it reads records by their
    // headers, never by this.
    c->producer.tail.store(tail_.pack(), std::memory_order_release);
    wake(c->data.line, 1, std::memory_order_seq_cst);
    return {};
  }

  // The records of bodies[done..] that fit now, written and published at once.
  Status publish_group(std::span<const std::byte> head,
                       std::span<const std::span<const std::byte>> bodies, std::size_t& done);

  Cursor tail_{};  // the true tail: this pusher is its only writer
};

}  // namespace bloccs::lockfree
