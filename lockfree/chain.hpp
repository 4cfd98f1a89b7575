// SPDX-License-Identifier: Apache-2.0
// A queue of rings. A bounded queue is one ring (link 0). An unbounded one grows: a pusher that
// finds its link full seals it (ring_layout.hpp, kSealCount) and goes on to the link's
// successor, creating one if there is none yet; the consumer reads each link to the end of its
// sealed tail, then follows the same successor and removes the link it finished. Pushers never
// wait, each pusher's messages keep their order, and memory is handed back link by link.
//
// Which link follows which is written in the links themselves, never inferred from a name:
//   - a successor is made under a name of its own ("<base>.<index>.<tag>", the tag unique
//     among live links), published, and only then offered to its predecessor with one CAS
//     on the predecessor's `next` word. The loser of that race removes its link and follows
//     the winner's. So a link is reachable only once it is complete, every sealed link has
//     exactly one successor, and a pusher that slept through many links can never bring a
//     finished one back: it finds `next` set and follows it.
//   - `newest` (a word in the caller's shared memory) names the newest link anyone has
//     reached; it only grows. A pusher whose successor was already read and removed (it slept
//     a long while) jumps there. The consumer moves it on before it removes a link, so it
//     always names a link that exists.
// A creator killed between creating a link and offering it leaves an orphan nobody follows;
// the port's owner removes the whole family (orphans included) when it stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "lockfree/orphan_ring.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"

namespace bloccs::lockfree {

// A link's identity: its index in the chain and a tag that makes its name unique.
struct LinkId {
  std::uint32_t index = 0;
  std::uint32_t tag = 0;
  static LinkId unpack(std::uint64_t w) noexcept {
    return {static_cast<std::uint32_t>(w >> 32), static_cast<std::uint32_t>(w)};
  }
  std::uint64_t pack() const noexcept { return std::uint64_t{index} << 32 | tag; }
};

struct ChainSpec {
  std::string ns;
  std::string base;                    // links are "<base>.<index>.<tag>"
  std::atomic<std::uint64_t>* newest;  // in shared memory: the newest link's LinkId
  bool unbounded = false;              // false: link 0 only, full pushers park
  // In shared memory, or null: nonzero once the consumer is going away. A link made after it
  // is set would outlive the consumer's clean-up, so its maker removes it again.
  const std::atomic<std::uint32_t>* closing = nullptr;
  // In shared memory, or null: the consumer records here the LinkId of the link it reads, so
  // that tools can walk the chain from there.
  std::atomic<std::uint64_t>* oldest = nullptr;
  // In shared memory, or null: where pushers count their waits for room (park_ledger.hpp).
  ParkLedger* parks = nullptr;
  RingOptions link;      // how links are made (buffer = kMaxBuffer if unbounded)
  shm::ProcessId owner;  // the consumer, for links made by pushers
  std::string link_name(LinkId id) const;
};

class ChainConsumer {
 public:
  // Creates link 0 (the owner, at start) and points `newest` at it.
  static Result<ChainConsumer> create(ChainSpec spec);

  // As Ring::try_drain, across links.
  template <class F>
  Result<std::size_t> try_drain(F&& f, std::size_t max = SIZE_MAX);
  // As Ring::wait; a link sealed and read to its end counts as a reason to wake (the next
  // try_drain moves on).
  Status wait(Deadline deadline, AlsoReady also = {});
  // A message is ready, or (unbounded) the link is sealed and read to its end, so the next
  // try_drain moves on: a waiter's Dekker re-check must see that too, or it sleeps on a link
  // nobody pushes into any more.
  bool ready(std::memory_order order) const noexcept {
    return link_->ready(order) || (spec_.unbounded && link_->sealed_and_drained(order));
  }
  // As Ring::poll_for_wait; a link sealed and read to its end counts as ready (as in wait).
  Result<bool> poll_for_wait(Deadline& recheck_at) {
    if (spec_.unbounded && link_->sealed_and_drained()) return true;
    return link_->poll_for_wait(recheck_at);
  }
  // Where the current link's pushers wake its consumer.
  WaitLine& data_line() const noexcept { return link_->data_line(); }
  Wakers wakers() const noexcept { return link_->wakers(); }
  void wake_consumer() const noexcept { link_->wake_consumer(); }
  void close() noexcept { link_->close(); }
  // As Ring::set_spin, for every link from now on.
  void set_spin(SpinPolicy spin) noexcept {
    spin_ = spin;
    link_->set_spin(spin);
  }
  // The sum over the links not yet read; `links` how many there are.
  RingStats stats(std::uint32_t* links = nullptr) const;
  const ChainSpec& spec() const noexcept { return spec_; }
  LinkId link_id() const noexcept { return id_; }
  // Where the record being handed to a try_drain callback lies: its link and its cursor there.
  std::pair<LinkId, Cursor> reading() const noexcept { return {id_, link_->reading()}; }
  // Killed pushers' claims skipped so far, over every link read.
  std::uint64_t abandoned() const noexcept { return abandoned_before_ + link_->abandoned(); }

 private:
  ChainConsumer(ChainSpec spec, Ring link, LinkId id)
      : spec_(std::move(spec)), link_(std::move(link)), id_(id) {}
  Status advance();  // the current link is sealed and read: adopt its successor, remove it

  ChainSpec spec_;
  std::optional<Ring> link_;
  LinkId id_;
  std::uint64_t abandoned_before_ = 0;  // in links already finished
  SpinPolicy spin_{};
};

class ChainPusher {
 public:
  // Attaches to the newest link.
  static Result<ChainPusher> open(ChainSpec spec);

  // As RingPusher::push. An unbounded chain never waits: a full link gets a successor, is
  // sealed, and the message goes to the successor. Errc::out_of_memory if /dev/shm cannot hold
  // another link (the full link stays open then, and the next push tries again); Errc::closed
  // once the consumer is going away.
  [[gnu::always_inline]] Status push(std::span<const std::byte> head,
                                     std::span<const std::byte> body, const Patience& patience) {
    if (!spec_.unbounded) return link_->push(head, body, patience);  // one ring: no call between
    return push_on_links(head, body, patience);
  }
  // As RingPusher::push_batch, across links as push() goes.
  Status push_batch(std::span<const std::byte> head,
                    std::span<const std::span<const std::byte>> bodies, Patience patience,
                    std::size_t& done);
  // As RingPusher::loan, on the link push() would use (moving on as push() does). The loan
  // stays on that link until it is committed or aborted.
  Result<RingLoan> loan(std::uint32_t len, Patience patience);
  Status commit(RingLoan& loan, std::uint32_t used) { return link_->commit(loan, used); }
  void abort(RingLoan& loan) noexcept { link_->abort(loan); }

 private:
  explicit ChainPusher(ChainSpec spec) : spec_(std::move(spec)) {}
  Status attach(LinkId id);  // to `id`, or (if it is gone) to the newest link
  Status push_on_links(std::span<const std::byte> head, std::span<const std::byte> body,
                       Patience patience);
  // Runs `attempt(link, patience)` on the link pushes go to: for an unbounded chain, without
  // waiting, and on the next link (made if need be) when this one is full or sealed.
  template <class Attempt>
  Status on_a_link(Attempt&& attempt, const Patience& patience);

  ChainSpec spec_;
  std::optional<RingPusher> link_;
  LinkId id_;
  std::optional<LinkId> moving_to_;  // our link is sealed: never push into it again
};

// The sum over a chain's links, from the one its consumer reads (`*spec.oldest`), read-only:
// for tools, and for a look at a dead consumer's chain. `links` how many there are.
Result<RingStats> chain_stats(const ChainSpec& spec, std::uint32_t* links = nullptr);

// ---- A chain whose consumer died (a port's next owner salvaging it) ----
// Reads what chain `spec` still holds for its dead consumer `dead`, as OrphanRing::read does
// for one ring: from the link that consumer was reading (`*spec.oldest`), following each
// sealed link's successor. Each link is sealed before it is read (OrphanRing::seal), and the
// last one's `next` is sealed too (kNextSealed), so no push made after its reading can land
// anywhere: a pusher past its checks gets Errc::closed, never ok. Creates, removes and hands
// back nothing. f(payload), or f(payload, LinkId, Cursor) with where the record lies. On an
// early stop, `unread` also counts what the links after the stopping one hold (from their
// cursors).
template <class F>
OrphanRead read_orphan_chain(const ChainSpec& spec, const shm::ProcessId& dead, F&& f,
                             Deadline give_up);
// Its steps (chain.cpp): the first link, a sealed link's successor (both as OrphanRing::open;
// `id` names the link opened; sealed: kNextSealed now ends the chain there), and the messages
// queued in the links after `link`.
Result<OrphanRing> open_orphan_link(const ChainSpec& spec, const shm::ProcessId& dead, LinkId& id);
Result<std::optional<OrphanRing>> open_orphan_successor(const ChainSpec& spec,
                                                        const shm::ProcessId& dead,
                                                        const OrphanRing& link, LinkId& id);
std::uint64_t orphan_depth_after(const ChainSpec& spec, const OrphanRing& link);

template <class F>
OrphanRead read_orphan_chain(const ChainSpec& spec, const shm::ProcessId& dead, F&& f,
                             Deadline give_up) {
  OrphanRead total;
  LinkId id;
  auto first = open_orphan_link(spec, dead, id);
  if (!first) {
    total.status = std::move(first).error();
    return total;
  }
  std::optional<OrphanRing> link(std::move(first).value());
  for (;;) {
    if (auto st = link->seal(give_up); !st) {
      total.unread += orphan_depth_after(spec, *link);
      total.status = std::move(st);
      return total;
    }
    const OrphanRead r = link->read(
        [&](std::span<const std::byte> payload, Cursor at) {
          if constexpr (std::is_invocable_v<F&, std::span<const std::byte>, LinkId, Cursor>)
            f(payload, id, at);
          else
            f(payload);
        },
        give_up);
    total.read += r.read;
    total.abandoned += r.abandoned;
    total.unread += r.unread;
    total.end = r.end;
    if (!r.status || r.unread) {  // stopped early: the later links are unread too
      total.unread += orphan_depth_after(spec, *link);
      total.status = r.status;
      return total;
    }
    if (!spec.unbounded) return total;  // one ring
    auto next = open_orphan_successor(spec, dead, *link, id);
    if (!next) {
      total.unread += orphan_depth_after(spec, *link);
      total.status = std::move(next).error();
      return total;
    }
    if (!*next) return total;  // the chain's end, sealed
    link.emplace(std::move(**next));
  }
}

template <class F>
Result<std::size_t> ChainConsumer::try_drain(F&& f, std::size_t max) {
  std::size_t n = 0;
  for (;;) {
    auto got = link_->try_drain(f, max - n);
    if (!got) {
      if (n) return n;
      return got;
    }
    n += *got;
    if (n == max || !spec_.unbounded || !link_->sealed_and_drained()) return n;
    if (auto st = advance(); !st) {
      if (n) return n;
      return std::move(st).error();
    }
  }
}

}  // namespace bloccs::lockfree
