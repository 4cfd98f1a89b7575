// SPDX-License-Identifier: Apache-2.0
// Bounded SPSC and MPSC rings of variable-size records in a named shared-memory segment: the
// consumer's side.
//
// Who may call what:
//   Ring        the owner. Creates the segment, is its only consumer, and unlinks it when
//               destroyed. One Ring per segment, used by one thread at a time.
//   RingPusher  (ring_pusher.hpp) any process (the owner included) that opens the ring by name
//               and pushes. One per thread; an SPSC ring admits one live pusher at a time.
//   OrphanRing  (orphan_ring.hpp) a port's next owner, reading once what a dead consumer left.
//
// What happens when:
//   full   push() spins briefly, then parks on a shared futex until the consumer frees space
//          or the deadline passes (Errc::timeout, nothing enqueued). Nothing is ever dropped.
//   empty  the consumer spins briefly, then parks until a pusher commits or its deadline passes.
//   a pusher dies mid-push (even SIGKILL between claim and commit): the consumer waits for the
//          claim for `abandon_after`, then checks whether its claimant is alive; a dead one's
//          claim is skipped and counted (abandoned()). Live pushers' messages are untouched.
//   the owner dies while pushers are parked: they wake within 100 ms with Errc::owner_dead.
//
// Ordering: records are consumed in claim order, so each pusher's messages arrive in the order
// it pushed them. Nothing on the push or pop path throws, and a successful push or pop never
// allocates (an error builds its message string).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bloccs/result.hpp"
#include "lockfree/futex.hpp"
#include "lockfree/ring_layout.hpp"
#include "lockfree/ring_types.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

class Ring {
 public:
  static Result<Ring> create(std::string_view ns, std::string_view name, RingOptions options = {});
  // Creates and publishes a ring whose consumer will be `owner`, and leaves it in /dev/shm: a
  // chain's pusher makes the next link for the owner, who adopts it.
  static Status create_for(std::string_view ns, std::string_view name, RingOptions options,
                           const shm::ProcessId& owner);
  // Becomes the consumer of a ring made by create_for for this process. The name stays in
  // /dev/shm until removed (a chain removes each link it has read to the end).
  static Result<Ring> adopt(std::string_view ns, std::string_view name);

  Ring(Ring&&) noexcept = default;
  // Not assignable: the consumer's lock must go before its segment is unmapped, which a
  // member-wise assignment would do the other way round.
  Ring& operator=(Ring&&) = delete;

  // Calls f(std::span<const std::byte>) for up to `max` queued messages without waiting, in
  // claim order; returns how many. The span is valid only during the call. Space is handed back
  // to pushers (and parked ones woken) once, after the batch. An f that returns bool may refuse
  // a message (false): it stays queued, and the batch ends there.
  template <class F>
  Result<std::size_t> try_drain(F&& f, std::size_t max = SIZE_MAX);

  // As try_drain, but first waits (spin, then park) until a message arrives or `deadline`
  // passes (Errc::timeout).
  template <class F>
  Result<std::size_t> drain(F&& f, std::size_t max, Deadline deadline = kNoDeadline);

  // Copies the next message into `out` and returns its size. Errc::timeout if none arrives by
  // `deadline`; Errc::buffer_too_small if it does not fit (it stays queued).
  Result<std::size_t> pop(std::span<std::byte> out, Deadline deadline = kNoDeadline);

  // Waits until a message is ready to consume, `also` holds, or `deadline` passes
  // (Errc::timeout).
  Status wait(Deadline deadline, AlsoReady also = {});
  // For a consumer that waits on several rings at once (bloccs::wait_any) instead of wait():
  // true if a message is ready; else, as wait() does, looks at a claim open at the head
  // (skipping a dead pusher's) and lowers `recheck_at` to when to look at it again.
  Result<bool> poll_for_wait(Deadline& recheck_at);
  // True if the next record is committed (load with `order`). Consumer thread only.
  bool ready(std::memory_order order) const noexcept {
    return header_committed(header_word(data(), head_.pos & (cfg_.capacity - 1)).load(order));
  }
  // A chain's ring: true once it is sealed and read to its end (the tail loaded with `order`;
  // acquire at least, so that every claim before the seal is seen).
  bool sealed_and_drained(std::memory_order order = std::memory_order_acquire) const noexcept;
  WaitLine& data_line() const noexcept { return control()->data.line; }
  // Wakes a consumer parked in wait(), for whoever made its AlsoReady true (after a seq_cst
  // store or fence). Any thread of any process that maps the ring.
  void wake_consumer() const noexcept;

  // Refuses further waiting for space: pushers parked now and later get Errc::closed. For the
  // owner's stop; the records already queued stay readable.
  void close() noexcept;

  void set_spin(SpinPolicy spin) noexcept { spin_ = spin; }
  const RingConfig& config() const noexcept { return cfg_; }
  // Who pays for waking this consumer (RingOptions::light_wakers): how it parks.
  Wakers wakers() const noexcept {
    return (cfg_.flags & kRingLightWakers) ? Wakers::light : Wakers::fenced;
  }
  RingStats stats() const { return read_stats(segment_, cfg_); }
  // Killed pushers' claims skipped (one load; stats() also walks every pusher slot).
  std::uint64_t abandoned() const noexcept {
    // relaxed: a counter this thread (the consumer) writes.
    return control()->counters.abandoned.load(std::memory_order_relaxed);
  }
  const shm::Segment& segment() const noexcept { return segment_; }
  // Where the record being handed to a try_drain callback (or the next one) starts.
  Cursor reading() const noexcept { return head_; }

 private:
  enum class State { ready, empty, pending, error };
  enum class Recovery { skipped, claimant_alive, corrupt };
  Ring(shm::Segment segment, const RingConfig& config);
  // Makes and publishes the segment; with `consumer`, this process holds its consumer's lock
  // (taken before the name appears, so nobody ever sees a named ring without its consumer).
  static Result<shm::Segment> build(std::string_view ns, std::string_view name,
                                    const RingOptions& options, const shm::ProcessId& owner,
                                    shm::HeldLock* consumer);

  RingControl* control() const noexcept { return reinterpret_cast<RingControl*>(segment_.base()); }
  std::byte* data() const noexcept { return segment_.base() + cfg_.data_offset; }

  // A batch of try_drain in one discipline: no branch on the ring's kind per record.
  template <RingKind K, class F>
  Result<std::size_t> drain_as(F& f, std::size_t max);
  // The next record, if one is committed. Inline for a committed message, the common case;
  // everything else (nothing yet, a pad, an aborted loan, damage) in peek().
  State peek_fast(std::span<const std::byte>& payload) noexcept;
  // The next record, if one is committed. Sets `error_` on a damaged record.
  State peek(std::span<const std::byte>& payload);
  // Advances the local head past the peeked record (MPSC: zeroing it first).
  template <RingKind K>
  void consume_as() {
    if constexpr (K == RingKind::mpsc) zero_consumed();
    head_ = head_.advanced(peeked_size_);
  }
  void consume();  // consume_as, for the ring's kind
  // The live consumer steps over a pad or an aborted loan at data offset `off` (MPSC: zeroes it).
  void skip_record(std::uint64_t off, std::uint64_t size);
  void zero_consumed();  // MPSC: the peeked record's space back to zeros (consumer.cpp)
  void publish_head();   // hands consumed space back and wakes parked pushers
  State pending_or_empty(std::span<const std::byte>& payload);
  // SPSC: empty, or (the tail has gone past a head that stays unpublished for abandon_after)
  // damaged: the record there was overwritten.
  State spsc_stalled_or_empty();
  // Records `what` as this ring's damage: error_ says it, and every pusher is refused from now on.
  State damage(const std::string& what);
  Recovery recover_abandoned();           // recovery.cpp
  void release_dead_slots_behind_head();  // recovery.cpp

  shm::Segment segment_;
  shm::HeldLock consumer_lock_;        // after segment_: let go of before it is unmapped
  RingConfig cfg_;                     // validated private copy; never re-read from shared memory
  std::uint32_t fork_generation_ = 0;  // only the creating process consumes
  Cursor head_{};                      // local copy; the shared head is published per batch
  std::uint64_t peeked_size_ = 0;
  std::uint64_t peeked_header_ = 0;
  bool skipped_ = false;  // head_ moved past a pad or an aborted loan since the last publish
  // MPSC: where the last consumed record's header still reads "consumed" (see consume()).
  static constexpr std::uint64_t kNoPending = ~std::uint64_t{0};
  std::uint64_t pending_zero_ = kNoPending;
  std::uint64_t sweep_mark_ = 0;  // head position / 2^30 at the last look for stale intents
  std::uint64_t stuck_pos_ = ~std::uint64_t{0};
  Clock::time_point stuck_since_{};
  // MPSC: empty peeks in a row. Only every kEmptyPeeksPerTailLook-th looks at the pushers' tail
  // (for a claim left open by a dead pusher): the look makes the consumer share the tail's line,
  // and the next pusher's compare-and-swap then pays a cache-line transfer to take it back.
  std::uint32_t empty_peeks_ = 0;
  static constexpr std::uint32_t kEmptyPeeksPerTailLook = 64;
  // Recovery's working space, sized once so that the pop path never allocates.
  struct SlotView {
    std::uint64_t intent;  // 0 or kIntentActive | pos
    bool alive;
  };
  std::vector<SlotView> slot_view_;
  std::vector<std::uint64_t> dead_starts_;
  std::vector<std::uint32_t> dead_slots_;
  SpinPolicy spin_{};
  Error error_{};
};

// ---- inline: the consumer's batch loop --------------------------------------------------------

template <class F>
Result<std::size_t> Ring::try_drain(F&& f, std::size_t max) {
  // One branch on the discipline per batch; each discipline's loop is its own.
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc))
    return drain_as<RingKind::spsc>(f, max);
  return drain_as<RingKind::mpsc>(f, max);
}

template <RingKind K, class F>
Result<std::size_t> Ring::drain_as(F& f, std::size_t max) {
  std::size_t n = 0;
  std::span<const std::byte> payload;
  State state = State::ready;
  while (n < max && (state = peek_fast(payload)) == State::ready) {
    if constexpr (std::is_same_v<std::invoke_result_t<F&, std::span<const std::byte>>, bool>) {
      if (!f(payload)) break;  // not taken: it stays queued, and the batch ends
    } else {
      f(payload);
    }
    consume_as<K>();
    ++n;
  }
  if (n || skipped_) publish_head();
  if (state == State::error && n == 0) return error_;
  return n;
}

inline Ring::State Ring::peek_fast(std::span<const std::byte>& payload) noexcept {
  // Checked here per record, as peek() does: a fork, or a fault in the mapping (the ring cut
  // short under us, shm/fence.hpp), sends the batch to peek(), which says so.
  if (fork_generation_ == shm::fork_generation() && !segment_.damaged()) [[likely]] {
    const std::uint64_t off = head_.pos & (cfg_.capacity - 1);
    // acquire: pairs with the pusher's release store of the committed header (payload visible).
    const std::uint64_t h = header_word(data(), off).load(std::memory_order_acquire);
    const std::uint32_t slot = header_slot_plus_one(h);
    const std::uint32_t len = header_length(h);
    // A committed message of a valid length and slot (committed_header_valid, for its type).
    if ((h & (kCommitBit | kHeaderReservedBits | (std::uint64_t{0x7f} << 48))) ==
            (kCommitBit | (kTypeData << 48)) &&
        slot != 0 && slot <= cfg_.slot_count && len <= cfg_.max_payload &&
        off + record_size(len) <= cfg_.capacity) [[likely]] {
      empty_peeks_ = 0;
      payload = {data() + off + kRecordHeader, len};  // in place: records never wrap
      peeked_size_ = record_size(len);
      peeked_header_ = h;
      return State::ready;
    }
  }
  return peek(payload);
}

template <class F>
Result<std::size_t> Ring::drain(F&& f, std::size_t max, Deadline deadline) {
  if (max == 0) return std::size_t{0};
  for (;;) {
    auto n = try_drain(f, max);
    if (!n || *n) return n;
    if (auto st = wait(deadline); !st) return std::move(st).error();
  }
}

}  // namespace bloccs::lockfree
