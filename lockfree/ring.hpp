// Bounded SPSC and MPSC rings of variable-size records in a named shared-memory segment.
//
// Who may call what:
//   Ring        the owner. Creates the segment, is its only consumer, and unlinks it when
//               destroyed. One Ring per segment, used by one thread at a time.
//   RingPusher  any process (the owner included) that opens the ring by name and pushes.
//               One RingPusher per thread; an SPSC ring admits one live pusher at a time.
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
#include "lockfree/pusher_slots.hpp"
#include "lockfree/ring_layout.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"

namespace bloccs::lockfree {

struct RingOptions {
  RingKind kind = RingKind::mpsc;
  std::uint32_t buffer = 1024;       // bound on queued messages (1 .. 2^23-1)
  std::uint32_t max_payload = 4096;  // bound on one payload, bytes
  // Data area in bytes, a power of two at least 2 * record_size(max_payload) + 8 (a record that
  // would run past the end is padded to the start: ring_layout.hpp). 0 picks
  // buffer * record_size(max_payload) rounded up, but no more than 64 MiB.
  std::uint64_t capacity = 0;
  std::uint32_t max_pushers = 64;  // MPSC pusher slots (SPSC always has 1)
  mode_t mode = 0600;              // 0660 lets the namespace's group push (a shared namespace)
  std::optional<shm::Sharing> sharing =
      std::nullopt;  // the namespace must be; nullopt: the environment
  std::chrono::microseconds abandon_after{10'000};
  // Where the cursors start: a byte position (a multiple of 8, below 2^40) and a message count
  // (below 2^24). Both wrap around in a long-lived ring; tests start them near the wrap.
  std::uint64_t start_position = 0;
  std::uint32_t start_count = 0;
};

// How long each side busy-polls before parking (process-local, not part of the segment).
// A hand-off costs ~100 ns between cores; a futex wake-up costs tens of microseconds. Spinning
// a little first keeps latency at the cache-line floor while a parked side costs no CPU.
struct SpinPolicy {
  std::chrono::nanoseconds consumer{50'000};
  std::chrono::nanoseconds pusher{10'000};
};

// When a pusher of a full ring gives up: at `deadline`, or `timeout` after it first finds the
// ring full, whichever comes first. A timeout costs nothing until then: the fast path never
// reads the clock.
struct Patience {
  Deadline deadline = kNoDeadline;
  std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max();
  Deadline resolve() const {
    if (timeout == std::chrono::nanoseconds::max()) return deadline;
    const Deadline now = Clock::now();
    // A timeout past the clock's end is none: never add what would overflow.
    if (timeout >= Deadline::max() - now) return deadline;
    return std::min(deadline, now + timeout);
  }
};

// Something besides the ring's own next message that ends a consumer's wait (a second ring of the
// same consumer, a stop flag). `ready` must load with seq_cst; whoever makes it true wakes
// `line` (or calls Ring::wake_consumer()) afterwards, so that a parked consumer re-checks.
struct AlsoReady {
  bool (*ready)(const void* ctx) = nullptr;
  const void* ctx = nullptr;
  // Where the one who makes it true wakes us; without one, it calls Ring::wake_consumer().
  WaitLine* line = nullptr;
  bool operator()() const { return ready && ready(ctx); }
};

// A point-in-time view of a ring's control block, for tests and tools. Never blocks anyone.
struct RingStats {
  std::uint64_t depth;             // messages queued (claimed and not consumed)
  std::uint64_t bytes_used;        // of `capacity`
  std::uint32_t parked_pushers;    // announced on the space futex
  std::uint32_t parked_consumer;   // 0 or 1
  std::uint64_t abandoned;         // dead pushers' claims skipped
  std::uint64_t aborted;           // loans given back without a commit
  std::uint32_t attached_pushers;  // slots held (live or not yet reclaimed)
  bool sealed;                     // a chain's ring that pushers have left for the next link
};

// Copies a mapped ring's config and checks every length and offset in the copy. Callers use
// only the copy afterwards: a peer that rewrites the shared config later changes nothing.
Result<RingConfig> validated_config(const shm::Segment& segment);
RingStats read_stats(const shm::Segment& segment, const RingConfig& config);

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

  // The next record, if one is committed. Sets `error_` on a damaged record.
  State peek(std::span<const std::byte>& payload);
  void consume();       // advances the local head past the peeked record
  // The live consumer steps over a pad or an aborted loan at data offset `off` (MPSC: zeroes it).
  void skip_record(std::uint64_t off, std::uint64_t size);
  void zero_consumed();  // MPSC: the peeked record's space back to zeros (consumer.cpp)
  void publish_head();  // hands consumed space back and wakes parked pushers
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

// Space taken in a ring for one record (and the pad before it, if any), not yet published.
struct RingClaim {
  Cursor at{};            // where the claim starts: the pad, or else the record
  std::uint64_t rec = 0;  // data offset of the record's header (0 after a pad)
  std::uint32_t len = 0;  // payload bytes claimed
  bool padded = false;
};

// A claim handed to the caller to write in place (RingPusher::loan). `bytes` is the record's
// payload, in the ring; it stays writable until the loan is committed or aborted.
struct RingLoan {
  RingClaim claim;
  std::span<std::byte> bytes;
};

class RingPusher {
 public:
  static Result<RingPusher> open(std::string_view ns, std::string_view name);

  RingPusher(RingPusher&& other) noexcept;
  RingPusher& operator=(RingPusher&&) = delete;
  RingPusher(const RingPusher&) = delete;
  ~RingPusher();

  // Enqueues one message. Parks while the ring is full; Errc::timeout once `deadline` passes
  // (nothing enqueued); Errc::payload_too_large at once; Errc::owner_dead if the consumer died
  // while this call was parked; Errc::wrong_process in a child forked after open().
  Status push(std::span<const std::byte> payload, Deadline deadline = kNoDeadline) {
    return push(payload, {}, {.deadline = deadline});
  }
  // Enqueues `head` and `body` as one message (head first): a caller's framing without a copy.
  // Errc::closed if the owner closed the ring while this call waited for space.
  Status push(std::span<const std::byte> head, std::span<const std::byte> body,
              Patience patience) {
    // One branch on the kind, here at the caller; each kind's push is its own function, with
    // its claim and commit inlined and nothing of the other kind's (measured: ~1.5 ns a push).
    return spsc_ ? push_spsc(head, body, patience) : push_mpsc(head, body, patience);
  }
  // Enqueues `head` + bodies[i] as one message each, in order, `done` counting those enqueued
  // (start it at 0; a call that fails part-way leaves it at how many went in, and calling again
  // with it goes on from there). As many as fit go in at once; then it parks for the rest as
  // push() does: no message is ever split. SPSC publishes each group with one store and one
  // wake-up; MPSC claims each record in turn (recovery skips a dead pusher's claims one by
  // one) and wakes once per group.
  Status push_batch(std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> bodies, Patience patience,
                    std::size_t& done);

  // Claims space for a record of `len` payload bytes, as push() would (parking while full, the
  // same errors), and hands it to the caller to write in place. Until it is committed or
  // aborted the claim holds up the consumer at it (an MPSC ring's later records wait behind
  // it; a dead holder's claim is skipped as a dead pusher's). One loan at a time per pusher.
  Result<RingLoan> loan(std::uint32_t len, Patience patience);
  // Publishes the loan's first `used` bytes as one message (used <= loan.bytes.size(), else
  // Errc::bad_loan and the loan stays open). Errc::closed if the ring was sealed
  // meanwhile (SPSC: nothing was published).
  Status commit(RingLoan& loan, std::uint32_t used);
  // Gives the loan back: no consumer sees anything of it (MPSC: an aborted record it skips).
  // Counted in the ring's `aborted`.
  void abort(RingLoan& loan) noexcept;

  // Seals a chain's ring (see kSealCount) and wakes its consumer. Idempotent.
  void seal() noexcept;
  // True once the ring is sealed (a chain's pusher moved on, or a take-over read it): push()
  // then fails with Errc::closed.
  bool sealed() const noexcept;
  // SPSC: the byte position the next record will take (the due lane's timer records it).
  std::uint64_t next_position() const noexcept { return spsc_tail_.pos; }

  void set_spin(SpinPolicy spin) noexcept { spin_ = spin; }
  const RingConfig& config() const noexcept { return cfg_; }
  std::uint32_t slot() const noexcept { return slot_.index; }

 private:
  RingPusher(shm::Segment segment, const RingConfig& config, AttachedSlot slot);
  friend class ChainPusher;  // follows a chain's successor word in our control block
  RingControl* control() const noexcept { return reinterpret_cast<RingControl*>(segment_.base()); }
  std::byte* data() const noexcept { return segment_.base() + cfg_.data_offset; }
  PusherSlot& my_slot() const noexcept;

  bool fits(Cursor tail, std::uint64_t bytes) const noexcept;
  Error sealed_error() const;
  // An SPSC claim found `found` at its tail word `pos`, where only zero can be.
  Error tail_word_error(std::uint64_t found, std::uint64_t pos) const;
  Error damaged_error() const;
  Status wait_for_space(Cursor tail, std::uint64_t bytes, Deadline deadline);
  // The checks before a claim: one compare each, so that a push pays no call for them.
  bool may_push(std::size_t len) const noexcept {
    // relaxed: a flag the consumer sets once; the line is ours on every push anyway.
    return fork_generation_ == shm::fork_generation() && len <= cfg_.max_payload &&
           control()->producer.damaged.load(std::memory_order_relaxed) == 0;
  }
  Status check_push(std::size_t len) const;  // why may_push said no
  Status checked(Status st) const;           // st, unless the mapping faulted meanwhile
  // Writes head + body as the payload of the record whose header is at data offset `rec`.
  void write_payload(std::uint64_t rec, std::span<const std::byte> head,
                     std::span<const std::byte> body);
  // Every push and loan is a claim, then a commit of what was written.
  Status claim_spsc(std::uint32_t len, const Patience& patience, RingClaim& claim);
  Status commit_spsc(const RingClaim& claim, std::uint32_t used);
  Status claim_mpsc(std::uint32_t len, const Patience& patience, RingClaim& claim);
  Status push_spsc(std::span<const std::byte> head, std::span<const std::byte> body,
                   const Patience& patience);
  Status push_mpsc(std::span<const std::byte> head, std::span<const std::byte> body,
                   const Patience& patience);
  Status push_batch_spsc(std::span<const std::byte> head,
                         std::span<const std::span<const std::byte>> bodies, Deadline deadline,
                         std::size_t& done);
  Status push_batch_mpsc(std::span<const std::byte> head,
                         std::span<const std::span<const std::byte>> bodies, Deadline deadline,
                         std::size_t& done);
  // The records of bodies[done..] that fit now, written and published at once (SPSC).
  Status publish_group_spsc(std::span<const std::byte> head,
                            std::span<const std::span<const std::byte>> bodies, std::size_t& done);
  Status commit_mpsc(const RingClaim& claim, std::uint32_t used);
  void finish_mpsc() noexcept;  // the slot idle again, and the consumer woken

  shm::Segment segment_;
  RingConfig cfg_;  // validated private copy
  AttachedSlot slot_;                  // after segment_: let go of before the segment is unmapped
  std::uint32_t fork_generation_ = 0;  // a forked child must open its own pusher
  bool spsc_ = false;                  // cfg_.kind, as the push dispatch reads it
  Cursor cached_head_{};
  Cursor spsc_tail_{};  // SPSC: the pusher is the only writer of the tail
  SpinPolicy spin_{};
};

// ---- inline: the consumer's batch loop --------------------------------------------------------

template <class F>
Result<std::size_t> Ring::try_drain(F&& f, std::size_t max) {
  std::size_t n = 0;
  std::span<const std::byte> payload;
  State state = State::ready;
  while (n < max && (state = peek(payload)) == State::ready) {
    if constexpr (std::is_same_v<std::invoke_result_t<F&, std::span<const std::byte>>, bool>) {
      if (!f(payload)) break;  // not taken: it stays queued, and the batch ends
    } else {
      f(payload);
    }
    consume();
    ++n;
  }
  if (n || skipped_) publish_head();
  if (state == State::error && n == 0) return error_;
  return n;
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
