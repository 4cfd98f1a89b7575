// SPDX-License-Identifier: Apache-2.0
// The multi-pusher discipline (RingKind::mpsc): any number of pushers, each in its own slot.
// A claim is one compare-and-swap on the shared tail, after the pusher wrote in its slot where it
// is claiming (its intent: recovery finds a dead pusher's claim by it); the pusher then writes
// the record's header without the commit bit (so that a claim that holds anything is never all
// zeros), the payload, and the header with the commit bit (ring_layout.hpp).
//
// One MpscPusher per thread; it holds one pusher slot of the ring.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "bloccs/result.hpp"
#include "lockfree/ring_attachment.hpp"

namespace bloccs::lockfree {

class MpscPusher : public RingAttachment {
 public:
  // Errc::wrong_kind if ring `name` is not multi-pusher; RingAttachment::open's errors.
  static Result<MpscPusher> open(std::string_view ns, std::string_view name);
  // `attached` must be to an MPSC ring.
  explicit MpscPusher(RingAttachment attached) : RingAttachment(std::move(attached)) {}

  MpscPusher(MpscPusher&&) noexcept = default;

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
  // As RingPusher::push_batch: each record is claimed in turn (recovery skips a dead pusher's
  // claims one by one), and the consumer is woken once per group.
  Status push_batch(std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> bodies, const Patience& patience,
                    std::size_t& done);
  Result<RingLoan> loan(std::uint32_t len, const Patience& patience);
  Status commit(RingLoan& loan, std::uint32_t used);
  // The claim becomes an aborted record, which the consumer skips.
  void abort(RingLoan& loan) noexcept;

 private:
  // Inline in push(): the hot path pays no calls between its steps.
  [[gnu::always_inline]] Status claim_record(std::uint32_t len, const Patience& patience,
                                             RingClaim& claim) {
    RingControl* c = control();
    PusherSlot& slot = my_slot();
    const std::uint64_t mask = cfg_.capacity - 1;
    const std::uint64_t bytes = record_size(len);
    Deadline deadline{};  // resolved when the ring is first found full
    // relaxed: only a first guess for the CAS, which validates it.
    std::uint64_t observed = c->producer.tail.load(std::memory_order_relaxed);
    Cursor tail;
    std::uint64_t pad;
    for (;;) {
      tail = Cursor::unpack(observed);
      if (tail.pos % kRecordHeader != 0) [[unlikely]]
        return misaligned_tail(tail);
      if (!room(tail, bytes)) [[unlikely]] {
        slot.intent.store(0, std::memory_order_relaxed);  // relaxed: never park with an intent
        if (deadline == Deadline{}) deadline = patience.resolve();
        if (Status st = wait_for_space(tail, bytes, deadline, true); !st) return st;
        observed = c->producer.tail.load(std::memory_order_relaxed);  // relaxed: the CAS checks
        continue;
      }
      pad = pad_before(tail.pos & mask, bytes, cfg_.capacity);
      // relaxed: published to the consumer by the CAS's release below.
      slot.intent.store(kIntentActive | tail.pos, std::memory_order_relaxed);
      // release: our intent is visible to whoever acquires this tail or a later one (recovery).
      if (c->producer.tail.compare_exchange_weak(observed, tail.advanced(pad + bytes).pack(),
                                                 std::memory_order_release,
                                                 std::memory_order_relaxed))
        break;
    }
    claim = RingClaim{tail, pad ? 0 : tail.pos & mask, len, pad != 0};
    if (pad) [[unlikely]]
      write_pad(slot, tail, pad);
    // relaxed: the uncommitted header only names the claimant and what it claimed, for recovery
    // if we die now (it skips the whole claim by that length, a loan's unused tail included).
    header_word(data(), claim.rec)
        .store(make_record_header(len, slot_.index, false), std::memory_order_relaxed);
    // The header must reach memory before the payload (recovery reads "header zero" as "nothing
    // written"): keep the compiler from sinking it; x86-64 keeps stores in program order.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return {};
  }
  // The pad before a claim at the end of the data area (its record starts at offset 0).
  void write_pad(PusherSlot& slot, Cursor tail, std::uint64_t pad) noexcept;

  // Commits the first `used` payload bytes of `claim`. Inline in push().
  [[gnu::always_inline]] Status publish(const RingClaim& claim, std::uint32_t used) {
    const std::uint64_t unused = record_size(claim.len) - record_size(used);
    if (unused) [[unlikely]]  // a loan committed shorter: its tail becomes a pad to skip
      pad_unused(claim, used, unused);
    // release: commit; the consumer's acquire of the header makes the payload visible.
    header_word(data(), claim.rec)
        .store(make_record_header(used, slot_.index, true), std::memory_order_release);
    finish();
    return {};
  }
  void pad_unused(const RingClaim& claim, std::uint32_t used, std::uint64_t unused) noexcept;

  // The slot idle again, and the consumer woken.
  [[gnu::always_inline]] void finish() noexcept {
    // release: a consumer that sees the slot idle also sees the commit before.
    my_slot().intent.store(0, std::memory_order_release);
    // The light side of the Dekker pair with a consumer going to sleep (futex.hpp): the commit
    // before the look at whether it sleeps.
    light_fence(light_wake_);
    wake(control()->data.line, 1);
  }
};

}  // namespace bloccs::lockfree
