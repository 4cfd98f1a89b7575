// SPDX-License-Identifier: Apache-2.0
// A pusher's attachment to a ring, and the slow paths both disciplines share.
#include "lockfree/ring_attachment.hpp"

#include <string>

#include "lockfree/cpu_relax.hpp"
#include "shm/stop_request.hpp"

namespace bloccs::lockfree {
namespace {

// A parked pusher looks at the owner this often, so that it never sleeps on a dead ring.
constexpr auto kOwnerCheckInterval = std::chrono::milliseconds(100);

}  // namespace

Result<RingAttachment> RingAttachment::open(std::string_view ns, std::string_view name) {
  auto seg = shm::Segment::open(ns, name, shm::SegmentKind::ring);
  if (!seg) return std::move(seg).error();
  auto validated = validated_config(*seg);
  if (!validated) return std::move(validated).error();
  const RingConfig cfg = *validated;
  auto* slots = reinterpret_cast<PusherSlot*>(seg->base() + cfg.slots_offset);
  auto slot = attach_slot({slots, cfg.slot_count}, *reinterpret_cast<RingControl*>(seg->base()),
                          seg->name(), cfg.kind == static_cast<std::uint32_t>(RingKind::spsc));
  if (!slot) return std::move(slot).error();
  return RingAttachment(std::move(seg).value(), cfg, std::move(slot).value());
}

Result<RingAttachment> RingAttachment::open(std::string_view ns, std::string_view name,
                                            RingKind kind) {
  auto attached = open(ns, name);
  if (!attached || attached->kind() == kind) return attached;
  auto said = [](RingKind k) {
    return k == RingKind::spsc ? "single-pusher (SPSC)" : "multi-pusher (MPSC)";
  };
  return Error{Errc::wrong_kind, "ring /dev/shm/" + std::string(name) + " is " +
                                     said(attached->kind()) + ", not " + said(kind) +
                                     "; open it with RingPusher, which takes either"};
}

RingAttachment::RingAttachment(shm::Segment segment, const RingConfig& config, AttachedSlot slot)
    : segment_(std::move(segment)),
      cfg_(config),
      slot_(std::move(slot)),
      fork_generation_(shm::fork_generation()),
      light_(register_light_side()),
      light_wake_(light_ && (config.flags & kRingLightWakers) != 0) {
  // acquire: pairs with the consumer's release of head.
  cached_head_ = Cursor::unpack(control()->consumer.head.load(std::memory_order_acquire));
}

RingAttachment::RingAttachment(RingAttachment&& other) noexcept
    : segment_(std::move(other.segment_)),
      cfg_(other.cfg_),
      slot_(std::move(other.slot_)),
      fork_generation_(other.fork_generation_),
      cached_head_(other.cached_head_),
      spin_(other.spin_),
      ledger_(other.ledger_),
      light_(other.light_),
      light_wake_(other.light_wake_) {}

RingAttachment::~RingAttachment() {
  // A moved-from attachment holds nothing; a forked child's copy holds its parent's slot
  // (holds() is false there) and leaves it alone.
  if (segment_.base() != nullptr && slot_.lock.holds()) detach_slot(my_slot(), slot_);
}

Status RingAttachment::check_push(std::size_t len) const {
  if (fork_generation_ != shm::fork_generation())
    return Error{Errc::wrong_process,
                 "this pusher of ring /dev/shm/" + segment_.name() +
                     " was opened before a fork and belongs to the parent; open a new "
                     "RingPusher in the child"};
  // relaxed: flags set once.
  if (control()->producer.refused.load(std::memory_order_relaxed) != 0) return refusal();
  if (len > cfg_.max_payload)
    return Error{Errc::payload_too_large,
                 "payload of " + std::to_string(len) + " bytes exceeds the ring's max_payload of " +
                     std::to_string(cfg_.max_payload) +
                     "; split it, or create the ring with a larger max_payload"};
  return {};
}

Status RingAttachment::check_batch(std::span<const std::byte> head,
                                   std::span<const std::span<const std::byte>> bodies,
                                   std::size_t done) const {
  for (std::size_t i = done; i < bodies.size(); ++i)
    if (!may_push(head.size() + bodies[i].size()))
      return check_push(head.size() + bodies[i].size());
  return {};
}

Status RingAttachment::check_commit(const RingLoan& loan, std::uint32_t used) const {
  if (used > loan.claim.len)
    return Error{Errc::bad_loan, "a loan of " + std::to_string(loan.claim.len) +
                                     " bytes cannot commit " + std::to_string(used) +
                                     "; commit at most what was loaned"};
  return {};
}

void RingAttachment::count_abort() noexcept {
  // relaxed: a statistic; aborts are rare and their count orders nothing.
  control()->counters.aborted.fetch_add(1, std::memory_order_relaxed);
}

Error RingAttachment::misaligned_tail(Cursor tail) const {
  // Following such a tail would put headers at misaligned addresses (split locks; found by the
  // ring_records fuzz target).
  return {Errc::corrupt, "ring /dev/shm/" + segment_.name() + " has its tail at byte " +
                             std::to_string(tail.pos) +
                             ", where no record can start (not 8-byte aligned); nothing was "
                             "enqueued. Remove it (shmctl rm) and restart its owner"};
}

Error RingAttachment::refusal() const {
  // relaxed: flags set once.
  if (control()->producer.refused.load(std::memory_order_relaxed) & kRefusedSealed)
    return sealed_error();
  return damaged_error();
}

Error RingAttachment::sealed_error() const {
  return {Errc::closed, "ring /dev/shm/" + segment_.name() +
                            " was sealed: its consumer died and the port's next owner has read "
                            "what it held; nothing was enqueued. Push again: the key's new "
                            "owner takes it"};
}

Error RingAttachment::damaged_error() const {
  return {Errc::corrupt, "ring /dev/shm/" + segment_.name() +
                             " was found damaged by its consumer (a record or a cursor no pusher "
                             "could have written); nothing was enqueued. Its owner must stop "
                             "and start the port again"};
}

bool RingAttachment::sealed() const noexcept {
  RingControl* c = control();
  // acquire: with the head's acquire, a tail seen sealed carries every claim before the seal.
  const Cursor head = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
  return tail_sealed(Cursor::unpack(c->producer.tail.load(std::memory_order_acquire)), head);
}

void RingAttachment::seal() noexcept {
  RingControl* c = control();
  // relaxed: a first guess for the CAS, which validates it.
  std::uint64_t observed = c->producer.tail.load(std::memory_order_relaxed);
  for (;;) {
    Cursor t = Cursor::unpack(observed);
    // acquire: the head as the consumer published it; any head at or behind the tail will do.
    if (tail_sealed(t, Cursor::unpack(c->consumer.head.load(std::memory_order_acquire)))) break;
    t.count = (t.count + kSealCount) & kCountMask;
    // seq_cst: a release for the consumer's acquire of the sealed tail (every claim before
    // it included), and the Dekker store before the wake below. An SPSC ring has no other
    // tail writer, so the CAS succeeds first time there.
    if (c->producer.tail.compare_exchange_weak(observed, t.pack(), std::memory_order_seq_cst,
                                               std::memory_order_relaxed))
      break;
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  wake(c->data.line, 1);
}

Status RingAttachment::wait_for_space(Cursor tail, std::uint64_t bytes, Deadline deadline,
                                      bool shared_tail) {
  RingControl* c = control();
  auto current_tail = [&] {
    // relaxed: MPSC re-reads the tail only to judge fit; the CAS validates it later.
    return shared_tail ? Cursor::unpack(c->producer.tail.load(std::memory_order_relaxed)) : tail;
  };
  auto timeout = [] {
    return Error{Errc::timeout, "the ring stayed full until the deadline; nothing was enqueued"};
  };
  auto closed = [&] {
    // relaxed: a flag that orders nothing; the re-check after parking is seq_cst.
    return c->counters.closed.load(std::memory_order_relaxed) != 0;
  };
  auto closed_error = [&] {
    return Error{Errc::closed, "the owner closed ring /dev/shm/" + segment_.name() +
                                   " (its port stopped) while this push waited for space; "
                                   "nothing was enqueued"};
  };
  // A take-over (or, in a chain, a pusher that moved on) sealed the ring: it never has room again.
  auto now_sealed = [&] { return tail_sealed(current_tail(), cached_head_); };
  if (now_sealed()) return sealed_error();
  if (deadline == kDontWait) return closed() ? closed_error() : timeout();

  const auto spin_end = Clock::now() + spin_.pusher;
  for (unsigned i = 1;; ++i) {
    // acquire: pairs with the consumer's release of head.
    cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
    const Cursor now_tail = current_tail();
    if (fits(now_tail, bytes)) return {};
    if (tail_sealed(now_tail, cached_head_)) return sealed_error();
    // Never trust shared memory: a head ahead of the tail would make us wait for ever. (The
    // head was read first, so a tail far ahead of it is only a stale view, not damage.)
    if (pos_before(now_tail.pos, cached_head_.pos))
      return Error{Errc::corrupt, "ring /dev/shm/" + segment_.name() +
                                      " has its head ahead of its tail; the ring cannot be "
                                      "trusted, remove it (shmctl rm) and restart its owner"};
    if ((i & 63) == 0 || spin_.pusher.count() == 0) {
      if (segment_.damaged()) return segment_.damage_error();
      if (closed()) return closed_error();
      const auto now = Clock::now();
      if (now >= deadline) return timeout();
      if (now >= spin_end) break;
    }
    cpu_relax();
  }

  // Parked from here until we return, the owner checks between sleeps included: tools that
  // count parked pushers never see us leave and come back.
  const WaiterCount parked(c->space.line);
  ParkEntry ledger_entry(ledger_);
  for (;;) {
    const auto fit_now = [&] {
      // seq_cst: the Dekker re-check after arming (see futex.hpp); close() wakes us too.
      cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_seq_cst));
      return fits(current_tail(), bytes) || c->counters.closed.load(std::memory_order_seq_cst) ||
             shm::stop_requested();
    };
    // What ended the sleep (space, a close, a stop request, the owner check) is judged below.
    (void)park(c->space.line, fit_now, std::min(deadline, Clock::now() + kOwnerCheckInterval),
               nullptr, false);
    if (closed()) {
      ledger_entry.sent_away();
      return closed_error();
    }
    if (segment_.damaged()) return segment_.damage_error();
    // acquire: pairs with the consumer's release of head (it may have moved while we slept).
    cached_head_ = Cursor::unpack(c->consumer.head.load(std::memory_order_acquire));
    if (fits(current_tail(), bytes)) return {};
    if (now_sealed()) return sealed_error();
    if (Clock::now() >= deadline) return timeout();
    if (shm::stop_requested()) return shm::stopping_error("nothing was enqueued");
    if (!shm::held(c->consumer_alive.lock)) {
      ledger_entry.sent_away();
      return Error{Errc::owner_dead, "the ring's owner (pid " + std::to_string(cfg_.owner_pid) +
                                         ") died while this push waited for space; nothing was "
                                         "enqueued. Restart the owner and push again"};
    }
  }
}

}  // namespace bloccs::lockfree
