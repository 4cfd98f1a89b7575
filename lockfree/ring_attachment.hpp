// SPDX-License-Identifier: Apache-2.0
// What every pusher of a ring holds, whichever its discipline (spsc_pusher.hpp, mpsc_pusher.hpp),
// and what the two share below their hot paths: the checks that refuse a push, the room check,
// writing a payload in place, parking while the ring is full, sealing a chain's link, errors.
//
// A discipline's push is its own inline function built from these steps; nothing here branches
// on the ring's kind on the way of a push.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "bloccs/result.hpp"
#include "lockfree/asymmetric_fence.hpp"
#include "lockfree/park_ledger.hpp"
#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring_layout.hpp"
#include "lockfree/ring_types.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

// Space taken in a ring for one record (and the pad before it, if any), not yet published.
struct RingClaim {
  Cursor at{};            // where the claim starts: the pad, or else the record
  std::uint64_t rec = 0;  // data offset of the record's header (0 after a pad)
  std::uint32_t len = 0;  // payload bytes claimed
  bool padded = false;
};

// A claim handed to the caller to write in place (a pusher's loan()). `bytes` is the record's
// payload, in the ring; it stays writable until the loan is committed or aborted.
struct RingLoan {
  RingClaim claim;
  std::span<std::byte> bytes;
};

// memcpy, out of line: where a copy of a length the compiler cannot bound is inlined, GCC 12
// takes the impossible lengths of its callers' paths for real ones (-Wstringop-overflow).
[[gnu::noinline]] inline void copy_large(std::byte* to, const std::byte* from,
                                         std::size_t n) noexcept {
  std::memcpy(to, from, n);
}

// Copies n bytes. Inline up to 64 (a message's meta, a small message): a call to memcpy costs
// more than such a copy. Overlapping moves of 4, 8 or 16 bytes, as memcpy's own small cases do.
[[gnu::always_inline]] inline void copy_bytes(std::byte* to, const std::byte* from,
                                              std::size_t n) noexcept {
  if (n > 64) [[unlikely]]
    return copy_large(to, from, n);
  if (n >= 16) {
    unsigned char a[16], b[16];
    std::memcpy(a, from, 16);
    std::memcpy(b, from + n - 16, 16);
    if (n > 32) {
      unsigned char c[16], d[16];
      std::memcpy(c, from + 16, 16);
      std::memcpy(d, from + n - 32, 16);
      std::memcpy(to + 16, c, 16);
      std::memcpy(to + n - 32, d, 16);
    }
    std::memcpy(to, a, 16);
    std::memcpy(to + n - 16, b, 16);
    return;
  }
  if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, from, 8);
    std::memcpy(&b, from + n - 8, 8);
    std::memcpy(to, &a, 8);
    std::memcpy(to + n - 8, &b, 8);
    return;
  }
  if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, from, 4);
    std::memcpy(&b, from + n - 4, 4);
    std::memcpy(to, &a, 4);
    std::memcpy(to + n - 4, &b, 4);
    return;
  }
  if (n) {
    to[0] = from[0];
    to[n / 2] = from[n / 2];
    to[n - 1] = from[n - 1];
  }
}

class RingAttachment {
 public:
  // Opens ring `name` of namespace `ns` and takes one of its pusher slots (Errc::pusher_limit
  // while every one is held by a live process). A discipline's pusher is made from it.
  static Result<RingAttachment> open(std::string_view ns, std::string_view name);
  // As open, for a ring of the discipline `kind` only (Errc::wrong_kind otherwise).
  static Result<RingAttachment> open(std::string_view ns, std::string_view name, RingKind kind);

  RingAttachment(RingAttachment&& other) noexcept;
  RingAttachment& operator=(RingAttachment&&) = delete;
  RingAttachment(const RingAttachment&) = delete;
  RingAttachment& operator=(const RingAttachment&) = delete;
  ~RingAttachment();  // gives the slot back (a forked child's copy leaves its parent's alone)

  RingKind kind() const noexcept { return static_cast<RingKind>(cfg_.kind); }
  // Seals a chain's ring (see kSealCount) and wakes its consumer. Idempotent.
  void seal() noexcept;
  // True once the ring is sealed (a chain's pusher moved on, or a take-over read it): a push
  // then fails with Errc::closed.
  bool sealed() const noexcept;
  void set_spin(SpinPolicy spin) noexcept { spin_ = spin; }
  // Where this pusher's parks are counted (park_ledger.hpp); null: nowhere.
  void set_park_ledger(ParkLedger* ledger) noexcept { ledger_ = ledger; }
  const RingConfig& config() const noexcept { return cfg_; }
  std::uint32_t slot() const noexcept { return slot_.index; }
  // The ring's control block (a chain follows its successor word there).
  RingControl* control() const noexcept { return reinterpret_cast<RingControl*>(segment_.base()); }

 protected:
  RingAttachment(shm::Segment segment, const RingConfig& config, AttachedSlot slot);

  std::byte* data() const noexcept { return segment_.base() + cfg_.data_offset; }
  PusherSlot& my_slot() const noexcept {
    return reinterpret_cast<PusherSlot*>(segment_.base() + cfg_.slots_offset)[slot_.index];
  }

  // The checks before a claim, one compare each, so that a push pays no call for them.
  [[gnu::always_inline]] bool may_push(std::size_t len) const noexcept {
    // relaxed: flags set once (a consumer that found damage, a take-over's seal); the line is
    // the tail's, which pushes touch anyway. An SPSC publication orders its own look by a fence.
    return fork_generation_ == shm::fork_generation() && len <= cfg_.max_payload &&
           control()->producer.refused.load(std::memory_order_relaxed) == 0;
  }
  Status check_push(std::size_t len) const;  // why may_push said no
  Error refusal() const;                     // why `refused` is set: sealed, or damaged
  // may_push for every message of a batch from `done` on.
  Status check_batch(std::span<const std::byte> head,
                     std::span<const std::span<const std::byte>> bodies, std::size_t done) const;

  // Room for a record of `bytes` at `tail` by the head last seen: the record, the pad before it
  // if it would run past the end, and kRecordHeader of slack (an SPSC record's terminator).
  [[gnu::always_inline]] bool fits(Cursor tail, std::uint64_t bytes) const noexcept {
    const std::uint64_t claim =
        pad_before(tail.pos & (cfg_.capacity - 1), bytes, cfg_.capacity) + bytes;
    return pos_distance(tail.pos, cached_head_.pos) + claim + kRecordHeader <= cfg_.capacity &&
           count_distance(tail.count, cached_head_.count) < cfg_.buffer;
  }
  // fits(), looking at the consumer's head again if the one last seen says no.
  [[gnu::always_inline]] bool room(Cursor tail, std::uint64_t bytes) noexcept {
    if (fits(tail, bytes)) [[likely]]
      return true;
    // acquire: pairs with the consumer's release of head; freed space is ours to overwrite.
    cached_head_ = Cursor::unpack(control()->consumer.head.load(std::memory_order_acquire));
    return fits(tail, bytes);
  }
  // Waits for room (spinning, then parked on the space line) until `deadline`. `shared_tail`:
  // re-read the tail (MPSC, where other pushers move it) rather than keep `tail`.
  Status wait_for_space(Cursor tail, std::uint64_t bytes, Deadline deadline, bool shared_tail);

  // Writes head + body as the payload of the record whose header is at data offset `rec`.
  [[gnu::always_inline]] void write_payload(std::uint64_t rec, std::span<const std::byte> head,
                                            std::span<const std::byte> body) noexcept {
    std::byte* at = data() + rec + kRecordHeader;  // records never wrap: one span
    // The consumer polls the header's cache line. Write the bytes beyond that line first, and
    // the ones sharing it last, right before the header: the line is then taken from the
    // consumer once, not once for the payload and again for the header.
    const std::size_t in_line = static_cast<std::size_t>((rec | 63) + 1 - (rec + kRecordHeader));
    const std::size_t total = head.size() + body.size();
    if (total > in_line && head.size() <= in_line) [[likely]] {
      const std::size_t body_in_line = in_line - head.size();
      copy_bytes(at + in_line, body.data() + body_in_line, total - in_line);
      copy_bytes(at, head.data(), head.size());
      copy_bytes(at + head.size(), body.data(), body_in_line);
      return;
    }
    copy_bytes(at, head.data(), head.size());  // all in the header's line, or a long head
    copy_bytes(at + head.size(), body.data(), body.size());
  }

  // st, unless the mapping faulted meanwhile (the ring was cut short, shm/fence.hpp): whatever
  // the call wrote then reached nobody.
  [[gnu::always_inline]] Status checked(Status st) const {
    if (segment_.damaged()) [[unlikely]]
      return segment_.damage_error();
    return st;
  }
  [[gnu::always_inline]] Status checked() const {
    if (segment_.damaged()) [[unlikely]]
      return segment_.damage_error();
    return {};
  }
  // Errc::bad_loan if `used` exceeds what the loan claimed.
  Status check_commit(const RingLoan& loan, std::uint32_t used) const;
  void count_abort() noexcept;

  Error sealed_error() const;
  // Every record starts 8-aligned: a tail that is not was written by no pusher.
  Error misaligned_tail(Cursor tail) const;

  shm::Segment segment_;
  RingConfig cfg_;                     // validated private copy; never re-read
  AttachedSlot slot_;                  // after segment_: let go of before it is unmapped
  std::uint32_t fork_generation_ = 0;  // a forked child must open its own pusher
  Cursor cached_head_{};               // the consumer's head as last seen
  SpinPolicy spin_{};
  ParkLedger* ledger_ = nullptr;
  // This process takes heavy fences (asymmetric_fence.hpp): a fence a take-over's seal pairs
  // with is a compiler one (light_), and so is the one before a wake if the ring's consumer
  // makes heavy fences when it parks (light_wake_: kRingLightWakers).
  bool light_ = false;
  bool light_wake_ = false;

 private:
  Error damaged_error() const;
};

}  // namespace bloccs::lockfree
