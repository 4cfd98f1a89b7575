// SPDX-License-Identifier: Apache-2.0
// A pusher of a ring whose discipline it learns when it opens the ring: the ring's creator chose
// SPSC or MPSC. It holds the discipline's own pusher (spsc_pusher.hpp, mpsc_pusher.hpp); each
// call picks it with one predictable branch, and everything below is that discipline's code.
// Who knows the discipline when writing the code uses SpscPusher or MpscPusher directly.
//
// One RingPusher per thread; an SPSC ring admits one live pusher at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "bloccs/result.hpp"
#include "lockfree/mpsc_pusher.hpp"
#include "lockfree/spsc_pusher.hpp"

namespace bloccs::lockfree {

class RingPusher {
 public:
  static Result<RingPusher> open(std::string_view ns, std::string_view name);
  explicit RingPusher(SpscPusher pusher) : p_(std::in_place_index<0>, std::move(pusher)) {}
  explicit RingPusher(MpscPusher pusher) : p_(std::in_place_index<1>, std::move(pusher)) {}

  // Enqueues one message. Parks while the ring is full; Errc::timeout once `deadline` passes
  // (nothing enqueued); Errc::payload_too_large at once; Errc::owner_dead if the consumer died
  // while this call was parked; Errc::wrong_process in a child forked after open().
  Status push(std::span<const std::byte> payload, Deadline deadline = kNoDeadline) {
    return push(payload, {}, {.deadline = deadline});
  }
  // Enqueues `head` and `body` as one message (head first): a caller's framing without a copy.
  // Errc::closed if the owner closed the ring while this call waited for space, or a take-over
  // sealed it.
  [[gnu::always_inline]] Status push(std::span<const std::byte> head,
                                     std::span<const std::byte> body, const Patience& patience) {
    if (SpscPusher* s = spsc()) return s->push(head, body, patience);
    return mpsc().push(head, body, patience);
  }
  // Enqueues `head` + bodies[i] as one message each, in order, `done` counting those enqueued
  // (start it at 0; a call that fails part-way leaves it at how many went in, and calling again
  // with it goes on from there). As many as fit go in at once; then it parks for the rest as
  // push() does: no message is ever split. SPSC publishes each group with one store and one
  // wake-up; MPSC claims each record in turn (recovery skips a dead pusher's claims one by
  // one) and wakes once per group. A timeout counts from the call, for the whole batch.
  Status push_batch(std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> bodies, const Patience& patience,
                    std::size_t& done) {
    if (SpscPusher* s = spsc()) return s->push_batch(head, bodies, patience, done);
    return mpsc().push_batch(head, bodies, patience, done);
  }

  // Claims space for a record of `len` payload bytes, as push() would (parking while full, the
  // same errors), and hands it to the caller to write in place. Until it is committed or
  // aborted the claim holds up the consumer at it (an MPSC ring's later records wait behind
  // it; a dead holder's claim is skipped as a dead pusher's). One loan at a time per pusher.
  Result<RingLoan> loan(std::uint32_t len, const Patience& patience) {
    if (SpscPusher* s = spsc()) return s->loan(len, patience);
    return mpsc().loan(len, patience);
  }
  // Publishes the loan's first `used` bytes as one message (used <= loan.bytes.size(), else
  // Errc::bad_loan and the loan stays open). Errc::closed if the ring was sealed
  // meanwhile (SPSC: nothing was published).
  Status commit(RingLoan& loan, std::uint32_t used) {
    if (SpscPusher* s = spsc()) return s->commit(loan, used);
    return mpsc().commit(loan, used);
  }
  // Gives the loan back: no consumer sees anything of it (MPSC: an aborted record it skips).
  // Counted in the ring's `aborted`.
  void abort(RingLoan& loan) noexcept {
    if (SpscPusher* s = spsc()) return s->abort(loan);
    mpsc().abort(loan);
  }

  void seal() noexcept { attachment().seal(); }
  bool sealed() const noexcept { return attachment().sealed(); }
  void set_spin(SpinPolicy spin) noexcept { attachment().set_spin(spin); }
  void set_park_ledger(ParkLedger* ledger) noexcept { attachment().set_park_ledger(ledger); }
  const RingConfig& config() const noexcept { return attachment().config(); }
  std::uint32_t slot() const noexcept { return attachment().slot(); }
  RingControl* control() const noexcept { return attachment().control(); }

 private:
  SpscPusher* spsc() noexcept { return std::get_if<0>(&p_); }
  MpscPusher& mpsc() noexcept { return *std::get_if<1>(&p_); }
  RingAttachment& attachment() noexcept {
    return p_.index() == 0 ? static_cast<RingAttachment&>(*std::get_if<0>(&p_))
                           : static_cast<RingAttachment&>(*std::get_if<1>(&p_));
  }
  const RingAttachment& attachment() const noexcept {
    return const_cast<RingPusher*>(this)->attachment();
  }

  std::variant<SpscPusher, MpscPusher> p_;
};

}  // namespace bloccs::lockfree
