// SPDX-License-Identifier: Apache-2.0
// The consumer side of a ring: peek, consume, hand space back, and park when empty.
#include <climits>
#include <string>
#include <thread>

#include "lockfree/cpu_relax.hpp"
#include "lockfree/ring.hpp"
#include "shm/process.hpp"
#include "shm/test_hooks.hpp"

namespace bloccs::lockfree {
namespace {

// A parked consumer looks again this often even if nobody wakes it.
constexpr auto kRecheckInterval = std::chrono::milliseconds(100);

}  // namespace

Ring::State Ring::peek(std::span<const std::byte>& payload) {
  if (fork_generation_ != shm::fork_generation()) [[unlikely]] {
    error_ = Error{Errc::wrong_process, "ring /dev/shm/" + segment_.name() +
                                            " is consumed by the process that created it, not "
                                            "by a child forked from it"};
    return State::error;
  }
  if (segment_.damaged()) [[unlikely]] {  // cut short under us (shm/fence.hpp)
    error_ = segment_.damage_error();
    return State::error;
  }
  RingControl* c = control();
  const RingConfig& cfg = cfg_;
  for (;;) {  // each pass either returns or moves head_ forward past a pad or an aborted loan
    const std::uint64_t off = head_.pos & (cfg.capacity - 1);
    // acquire: pairs with the pusher's release store of the committed header (payload
    // visible). Both kinds publish a record by its header, so the consumer polls the line it
    // then reads and never touches the pushers' tail line on the fast path.
    const std::uint64_t h = header_word(data(), off).load(std::memory_order_acquire);
    if (!header_committed(h)) {
      // The waiting path (wait) looks at the tail itself once it stops spinning.
      if (++empty_peeks_ < kEmptyPeeksPerTailLook) return State::empty;
      empty_peeks_ = 0;
      if (cfg.kind == static_cast<std::uint32_t>(RingKind::spsc)) return spsc_stalled_or_empty();
      return pending_or_empty(payload);
    }
    empty_peeks_ = 0;
    if (!committed_header_valid(h, off, cfg.capacity, cfg.max_payload, cfg.slot_count))
        [[unlikely]] {
      c->counters.corrupt.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
      return damage("it holds a damaged record at byte " + std::to_string(head_.pos) + " (header " +
                    std::to_string(h) + "): its type, length or slot is out of range");
    }
    const std::uint64_t size = record_size(header_length(h));
    if (header_type(h) != kTypeData) [[unlikely]] {  // a pad, or an aborted loan: no message
      skip_record(off, size);
      head_ = header_type(h) == kTypePad ? head_.skipped(size) : head_.advanced(size);
      continue;
    }
    payload = {data() + off + kRecordHeader, header_length(h)};  // in place: records never wrap
    peeked_size_ = size;
    peeked_header_ = h;
    return State::ready;
  }
}

void Ring::skip_record(std::uint64_t off, std::uint64_t size) {
  skipped_ = true;  // the batch hands this space back even if it hands over no message
  if (cfg_.kind != static_cast<std::uint32_t>(RingKind::mpsc)) return;
  // MPSC space ends up zero (recovery reads a zero header as "nothing written"): the body first
  // (a loan wrote it), then the header, so that a reader behind us (shmctl peek) finds a header
  // or zeros, never a body word where a header should be.
  std::memset(data() + off + kRecordHeader, 0, size - kRecordHeader);
  // release: the zeroing above stays before it (free on x86-64); the head's release publishes.
  header_word(data(), off).store(0, std::memory_order_release);
}

Ring::State Ring::pending_or_empty(std::span<const std::byte>& payload) {
  RingControl* c = control();
  // acquire: if a claim is open at our head, we see its claimant's slot intent (recovery).
  const Cursor tail = Cursor::unpack(c->producer.tail.load(std::memory_order_acquire));
  if (tail.pos == head_.pos) return State::empty;
  if (pos_distance(tail.pos, head_.pos) > cfg_.capacity)
    return damage("its tail is further ahead of its head than its capacity");
  // A claim is open at our head. Usually its pusher commits within nanoseconds; if it stays
  // open for abandon_after, ask whether the claimant is still alive.
  const auto now = Clock::now();
  if (stuck_pos_ != head_.pos) {
    stuck_pos_ = head_.pos;
    stuck_since_ = now;
    return State::pending;
  }
  if (now - stuck_since_ < std::chrono::microseconds(cfg_.abandon_after_us)) return State::pending;
  stuck_since_ = now;  // whatever recovery finds, look again only after another interval
  switch (recover_abandoned()) {
    case Recovery::skipped:
      return peek(payload);
    case Recovery::corrupt:
      return State::error;
    case Recovery::claimant_alive:
      return State::pending;
  }
  return State::pending;
}

Ring::State Ring::spsc_stalled_or_empty() {
  // acquire: pairs with the pusher's release of its tail, stored after it published the record
  // before it: a tail past our head means the record at our head was published.
  const Cursor tail = Cursor::unpack(control()->producer.tail.load(std::memory_order_acquire));
  if (!pos_before(head_.pos, tail.pos)) return State::empty;  // caught up (or a lagging tail)
  // acquire: as in peek.
  if (header_committed(
          header_word(data(), head_.pos & (cfg_.capacity - 1)).load(std::memory_order_acquire)))
    return State::empty;  // published meanwhile: the next peek reads it
  if (pos_distance(tail.pos, head_.pos) > cfg_.capacity)
    return damage("its tail is further ahead of its head than its capacity");
  const auto now = Clock::now();
  if (stuck_pos_ != head_.pos) {
    stuck_pos_ = head_.pos;
    stuck_since_ = now;
    return State::empty;
  }
  if (now - stuck_since_ < std::chrono::microseconds(cfg_.abandon_after_us)) return State::empty;
  return damage("the record at byte " + std::to_string(head_.pos) +
                " is not published, though its pusher has gone on past it: it was overwritten");
}

Ring::State Ring::damage(const std::string& what) {
  error_ = Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() + " is damaged: " + what +
                                    "; it cannot be trusted: its owner must stop and start the "
                                    "port again (shmctl rm removes a dead owner's)"};
  // relaxed: a flag pushers load on every push; what they then refuse orders nothing.
  control()->producer.refused.fetch_or(kRefusedDamaged, std::memory_order_relaxed);
  return State::error;
}

void Ring::consume() {
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::mpsc)) return consume_as<RingKind::mpsc>();
  consume_as<RingKind::spsc>();
}

void Ring::zero_consumed() {
  // Consumed space ends up zero (recovery reads a zero header as "nothing written"), in an
  // order that leaves nothing between the published head and us but zeros and headers
  // (ring_layout.hpp, consumed): this record's header says "consumed" first, then its payload
  // is zeroed, then the previous record's header. A reader that copied the record and finds
  // its header changed afterwards knows it lost the race (shmctl peek).
  // relaxed: nobody synchronises on them; the head's release publishes them.
  const RingConfig& cfg = cfg_;
  const std::uint64_t mask = cfg.capacity - 1;
  const std::uint64_t off = head_.pos & mask;
  header_word(data(), off).store(consumed_header(peeked_header_), std::memory_order_relaxed);
  // release fence: the zeroing below stays after that store (free on x86-64).
  std::atomic_thread_fence(std::memory_order_release);
  std::memset(data() + off + kRecordHeader, 0, peeked_size_ - kRecordHeader);
  if (pending_zero_ != kNoPending)
    header_word(data(), pending_zero_).store(0, std::memory_order_relaxed);
  pending_zero_ = off;
}

void Ring::publish_head() {
  RingControl* c = control();
  skipped_ = false;
  if (pending_zero_ != kNoPending) {  // the last consumed record's header: its payload is zero
    header_word(data(), pending_zero_).store(0, std::memory_order_relaxed);  // relaxed: as above
    pending_zero_ = kNoPending;
  }
  // release: our reads of the consumed records (and the zeroing) happen-before a pusher reuses
  // the space after its acquire of head.
  c->consumer.head.store(head_.pack(), std::memory_order_release);
  // seq_cst fence: Dekker with a parking pusher (see futex.hpp): it sees the new head, or we see
  // it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(c->space.line, INT_MAX);
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::mpsc) && (head_.pos >> 30) != sweep_mark_) {
    sweep_mark_ = head_.pos >> 30;  // one publish moves at most 64 MiB: no GiB is skipped
    release_dead_slots_behind_head();
  }
}

Status Ring::wait(Deadline deadline, AlsoReady also) {
  RingControl* c = control();
  const RingConfig& cfg = cfg_;
  const bool spsc = cfg.kind == static_cast<std::uint32_t>(RingKind::spsc);
  // Re-reads head_ each time: recovery may move it past a dead pusher's claim. `also` is
  // checked at the same points (its loads are seq_cst, at least as strong as ours).
  auto ready = [&](std::memory_order order) { return this->ready(order) || also(); };

  // Spin: a hand-off between cores takes ~100 ns; a futex wake-up tens of microseconds. The
  // clock is read only every 64 polls: a message that is about to land costs no clock read.
  // While spinning, also read the cache line after the header's: a record of more than 56
  // bytes spills into it, and reading both lines in every poll lets the two line transfers
  // overlap when the record lands instead of following one another.
  const std::uint64_t line_after =
      ((head_.pos & (cfg.capacity - 1) & ~std::uint64_t{63}) + 64) & (cfg.capacity - 1);
  Deadline spin_end{};
  for (unsigned i = 1;; ++i) {
    // acquire: pairs with the pusher's release store of the committed header.
    if (ready(std::memory_order_acquire)) return {};
    if (spin_.consumer.count() <= 0) break;  // told to park at once
    pull_line(data() + line_after);
    if ((i & 63) == 0) {
      const auto now = Clock::now();
      if (spin_end == Deadline{}) spin_end = now + spin_.consumer;
      if (now >= spin_end || now >= deadline) break;
    }
    cpu_relax();
  }

  for (;;) {
    if (segment_.damaged()) return segment_.damage_error();
    Deadline wake_at = deadline;
    if (spsc && spsc_stalled_or_empty() == State::error) return error_;
    if (spsc && stuck_pos_ == head_.pos)  // wake in time to judge a record left unpublished
      wake_at = std::min(deadline, stuck_since_ + std::chrono::microseconds(cfg.abandon_after_us));
    if (!spsc) {
      // An open claim at our head: wake in time to check whether its pusher died.
      std::span<const std::byte> ignored;
      const State s = pending_or_empty(ignored);  // may skip a dead pusher's claim
      if (s == State::error) return error_;
      // acquire: pairs with the pusher's release store of the committed header.
      if (s == State::ready || ready(std::memory_order_acquire)) return {};
      if (s == State::pending)
        wake_at =
            std::min(deadline, stuck_since_ + std::chrono::microseconds(cfg.abandon_after_us));
    }
    // Wake at least every kRecheckInterval: a pusher killed between its commit and its wake
    // must not leave us asleep beside a message. (Not where a test proves that no wake-up is
    // ever lost, which this look would hide.)
    if (!shm::test_flag("consumer.no_recheck"))
      wake_at = std::min(wake_at, Clock::now() + kRecheckInterval);
    // seq_cst: the Dekker re-check after arming (see futex.hpp); wakers(): who fences.
    if (park(
            c->data.line, [&] { return ready(std::memory_order_seq_cst); }, wake_at, also.line,
            true, wakers()))
      return {};
    if (ready(std::memory_order_acquire)) return {};  // acquire: as above, after a wake-up
    if (Clock::now() >= deadline)
      return Error{Errc::timeout, "no message arrived before the deadline"};
  }
}

Result<bool> Ring::poll_for_wait(Deadline& recheck_at) {
  // acquire: pairs with the pusher's release store of the committed header.
  if (ready(std::memory_order_acquire)) return true;
  if (cfg_.kind == static_cast<std::uint32_t>(RingKind::spsc)) return false;
  std::span<const std::byte> ignored;
  const State s = pending_or_empty(ignored);  // may skip a dead pusher's claim
  if (s == State::error) return error_;
  if (s == State::ready) return true;
  if (s == State::pending)
    recheck_at =
        std::min(recheck_at, stuck_since_ + std::chrono::microseconds(cfg_.abandon_after_us));
  return false;
}

void Ring::wake_consumer() const noexcept {
  // seq_cst fence: Dekker with the parking consumer, after the caller's store (see futex.hpp).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(control()->data.line, 1);
}

bool Ring::sealed_and_drained(std::memory_order order) const noexcept {
  // A sealed tail carries every claim before it (release sequence of the claims).
  const Cursor tail = Cursor::unpack(control()->producer.tail.load(order));
  return tail_sealed(tail, head_) && tail.pos == head_.pos;
}

void Ring::close() noexcept {
  RingControl* c = control();
  // seq_cst: pushers re-check it after arming the space line (Dekker, see futex.hpp).
  c->counters.closed.store(1, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(c->space.line, INT_MAX);
}

Result<std::size_t> Ring::pop(std::span<std::byte> out, Deadline deadline) {
  for (;;) {
    std::span<const std::byte> payload;
    switch (peek(payload)) {
      case State::ready:
        if (payload.size() > out.size())
          return Error{Errc::buffer_too_small,
                       "the next message is " + std::to_string(payload.size()) +
                           " bytes but the buffer holds " + std::to_string(out.size()) +
                           "; pass a buffer of max_payload bytes (it stays queued)"};
        if (!payload.empty()) std::memcpy(out.data(), payload.data(), payload.size());
        consume();
        publish_head();
        return payload.size();
      case State::error:
        return error_;
      case State::empty:
      case State::pending:
        if (auto st = wait(deadline); !st) return std::move(st).error();
    }
  }
}

}  // namespace bloccs::lockfree
