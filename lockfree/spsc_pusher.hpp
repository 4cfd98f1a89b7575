// SPDX-License-Identifier: Apache-2.0
// The single-pusher discipline (RingKind::spsc): this pusher is the only writer of the ring's
// tail. A claim is a look at its own tail and the room before the head last seen, with no
// read-modify-write; a record is published whole by one store of its header over the zero at the
// true tail (ring_layout.hpp: each record zeroes the word after it first). No push takes a
// read-modify-write nor a fence: a take-over that seals the ring waits for the publication
// announced in the producer line instead (ring_layout.hpp, "Sealing"), and a consumer about to
// sleep makes every CPU pass a full barrier (asymmetric_fence.hpp).
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
    announce(1);
    if (!may_push(len)) [[unlikely]]
      return unannounce(check_push(len));
    RingClaim claim;
    if (Status st = claim_record(static_cast<std::uint32_t>(len), patience, 1, claim); !st)
        [[unlikely]]
      return unannounce(std::move(st));
    write_payload(claim.rec, head, body);
    publish(claim, claim.len);
    return checked();
  }
  // As RingPusher::push_batch: the records that fit are written, then published at once by one
  // store of the first one's header, one tail store and one wake-up.
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

  // Announces the publication of `records` before the look at `refused` that decides it: the
  // light side of the Dekker pair with a sealer (ring_layout.hpp, "Sealing").
  [[gnu::always_inline]] void announce(std::uint32_t records) noexcept {
    // relaxed: the fence orders it before the caller's look at `refused`.
    control()->producer.in_push.store(records, std::memory_order_relaxed);
    light_fence(light_);
  }
  // Ends an announced publication that published nothing (refused, or no room).
  Status unannounce(Status st) noexcept {
    // relaxed: nothing was published; a sealer waits only for the value to be zero.
    control()->producer.in_push.store(0, std::memory_order_relaxed);
    return st;
  }

  // Room for a record of `len` at the tail; `announced` records are announced meanwhile (0 for
  // a loan, which announces only its commit). Inline in push(): no calls between its steps.
  [[gnu::always_inline]] Status claim_record(std::uint32_t len, const Patience& patience,
                                             std::uint32_t announced, RingClaim& claim) {
    const std::uint64_t bytes = record_size(len);
    if (!room(tail_, bytes)) [[unlikely]] {
      if (Status st = make_room(bytes, patience, announced); !st) return st;
    }
    const std::uint64_t mask = cfg_.capacity - 1;
    const std::uint64_t off = tail_.pos & mask;
    const std::uint64_t pad = pad_before(off, bytes, cfg_.capacity);
    claim = RingClaim{tail_, pad ? 0 : off, len, pad != 0};
    // relaxed: the terminator. The word after our record reads zero ("nothing yet") before the
    // publication's store, so the consumer stops there, whatever the last lap left. Written
    // now, well before that store: a consumer that has caught up polls the line it lies on
    // next, and should not have it taken away right before the record lands. Nothing else is
    // written yet: the claim becomes visible whole at its publication.
    header_word(data(), (claim.rec + bytes) & mask).store(0, std::memory_order_relaxed);
    return {};
  }
  // Waits for room, announcing nothing while it waits (a sealer never waits for a parked
  // pusher), then announces `announced` again and looks at `refused` again.
  Status make_room(std::uint64_t bytes, const Patience& patience, std::uint32_t announced);

  // Publishes the first `used` payload bytes of `claim`, and ends the announced publication.
  // Inline in push().
  [[gnu::always_inline]] void publish(const RingClaim& claim, std::uint32_t used) noexcept {
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
      // relaxed: published with the pad by the store below; read only by a consumer past the pad.
      header_word(data(), 0).store(first, std::memory_order_relaxed);
      const std::uint64_t pad = cfg_.capacity - (claim.at.pos & mask);
      first = make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), 0);
      claimed += pad;
    }
    // release: publishes the claim (pad, record, terminator) to the consumer's acquire of the
    // header. The word was zero: the true tail's terminator, and no seal (we announced, then
    // found `refused` clear, so no sealer has read the ring: it waits for us).
    header_word(data(), claim.at.pos & mask).store(first, std::memory_order_release);
    tail_ = claim.at.advanced(claimed);
    // release: the tail tells tools the depth, a successor where to resume, and a waiting
    // consumer that the record at its head was published (a consumer that sees the tail past
    // its head and no record there knows the ring is damaged); it reads records by their
    // headers, never by this.
    c->producer.tail.store(tail_.pack(), std::memory_order_release);
    // release: a sealer that reads zero here reads the record above too.
    c->producer.in_push.store(0, std::memory_order_release);
    // The light side of the Dekker pair with a consumer going to sleep (futex.hpp): the record
    // before the look at whether it sleeps.
    light_fence(light_wake_);
    wake(c->data.line, 1);
  }

  // The records of bodies[done..] that fit now, written and published at once.
  Status publish_group(std::span<const std::byte> head,
                       std::span<const std::span<const std::byte>> bodies, std::size_t& done);

  Cursor tail_{};  // the true tail: this pusher is its only writer
};

}  // namespace bloccs::lockfree
