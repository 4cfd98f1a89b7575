// SPDX-License-Identifier: Apache-2.0
// The multi-pusher discipline off its hot path: pads, batches, loans.
#include "lockfree/mpsc_pusher.hpp"

#include <string>

#include "shm/test_hooks.hpp"

namespace bloccs::lockfree {

Result<MpscPusher> MpscPusher::open(std::string_view ns, std::string_view name) {
  auto attached = RingAttachment::open(ns, name, RingKind::mpsc);
  if (!attached) return std::move(attached).error();
  return MpscPusher(std::move(attached).value());
}

void MpscPusher::write_pad(PusherSlot& slot, Cursor tail, std::uint64_t pad) noexcept {
  // relaxed: our claim now starts at the record, for recovery once the consumer is past the
  // pad; the pad's release below publishes it.
  slot.intent.store(kIntentActive | ((tail.pos + pad) & kPosMask), std::memory_order_relaxed);
  // Between the two stores (tests of a pusher preempted here: recovery must see it alive).
  shm::test_hook("mpsc.pad");
  // release: a consumer that reads the pad sees the intent above.
  header_word(data(), tail.pos & (cfg_.capacity - 1))
      .store(
          make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader), slot_.index),
          std::memory_order_release);
}

void MpscPusher::pad_unused(const RingClaim& claim, std::uint32_t used,
                            std::uint64_t unused) noexcept {
  // relaxed: published by the commit's release after it; recovery skips it with the claim.
  header_word(data(), claim.rec + record_size(used))
      .store(make_typed_header(kTypePad, static_cast<std::uint32_t>(unused - kRecordHeader),
                               slot_.index),
             std::memory_order_relaxed);
}

// One claim per record, so that recovery can skip a dead pusher's claims one by one
// (ring_layout.hpp); the consumer is woken once per group: after the last record, and before
// parking for room (it may be asleep beside the records it is to free room from).
Status MpscPusher::push_batch(std::span<const std::byte> head,
                              std::span<const std::span<const std::byte>> bodies,
                              const Patience& patience, std::size_t& done) {
  if (Status st = check_batch(head, bodies, done); !st) return st;
  // A timeout counts from the call, for the whole batch (no clock read without one).
  const Deadline deadline = patience.resolve();
  while (done < bodies.size()) {
    const auto len = static_cast<std::uint32_t>(head.size() + bodies[done].size());
    RingClaim claim;
    Status st = claim_record(len, {.deadline = kDontWait}, claim);
    if (!st && st.code() == Errc::timeout) {
      finish();
      st = claim_record(len, {.deadline = deadline}, claim);
    }
    if (!st) return st;
    write_payload(claim.rec, head, bodies[done]);
    // release: commit; the consumer's acquire of the header makes the payload visible.
    header_word(data(), claim.rec)
        .store(make_record_header(len, slot_.index, true), std::memory_order_release);
    // release: a consumer that sees the slot idle also sees the commit above.
    my_slot().intent.store(0, std::memory_order_release);
    ++done;
    if (segment_.damaged()) [[unlikely]]
      return segment_.damage_error();
  }
  finish();
  return {};
}

Result<RingLoan> MpscPusher::loan(std::uint32_t len, const Patience& patience) {
  if (!may_push(len)) return std::move(check_push(len)).error();
  RingClaim claim;
  if (Status st = claim_record(len, patience, claim); !st) return std::move(st).error();
  return RingLoan{claim, {data() + claim.rec + kRecordHeader, len}};
}

Status MpscPusher::commit(RingLoan& loan, std::uint32_t used) {
  if (Status st = check_commit(loan, used); !st) return st;
  return checked(publish(loan.claim, used));
}

void MpscPusher::abort(RingLoan& loan) noexcept {
  count_abort();
  // release: the consumer's acquire sees the record as aborted (and skips it by its length).
  header_word(data(), loan.claim.rec)
      .store(make_typed_header(kTypeAborted, loan.claim.len, slot_.index),
             std::memory_order_release);
  finish();
}

}  // namespace bloccs::lockfree
