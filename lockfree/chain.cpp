// SPDX-License-Identifier: Apache-2.0
// Chains of rings: growing an unbounded queue link by link (the protocol is in chain.hpp).
#include "lockfree/chain.hpp"

#include "shm/test_hooks.hpp"

#include <unistd.h>

#include <cstdio>

namespace bloccs::lockfree {
namespace {

// A tag for a new link's name: unique among this process's links, and (with the pid in it)
// rarely equal to another process's; an exclusive create settles the rare clash.
std::uint32_t new_tag() {
  static std::atomic<std::uint32_t> counter{0};
  // relaxed: only uniqueness matters.
  const std::uint32_t n = counter.fetch_add(1, std::memory_order_relaxed);
  return static_cast<std::uint32_t>(::getpid()) * 2654435761u + n * 40503u + 1;
}

// Moves `newest` on to `id` unless it is already there or further.
void raise_newest(std::atomic<std::uint64_t>& newest, LinkId id) {
  // acquire: a first guess for the CAS.
  std::uint64_t seen = newest.load(std::memory_order_acquire);
  // release (in the CAS): the link it names is published before anyone reads its id here.
  while (LinkId::unpack(seen).index < id.index &&
         !newest.compare_exchange_weak(seen, id.pack(), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
  }
}

bool closing(const ChainSpec& spec) {
  // seq_cst: the owner sets it before listing the segments to remove; a link we made before
  // our load is in that listing, one made after is ours to remove.
  return spec.closing && spec.closing->load(std::memory_order_seq_cst) != 0;
}

Error closed_error(const ChainSpec& spec) {
  return {Errc::closed, "the consumer of " + spec.base + " is going away; nothing was enqueued"};
}

// Creates and publishes a link named for (index, a fresh tag).
Result<LinkId> make_link(const ChainSpec& spec, std::uint32_t index) {
  for (;;) {
    const LinkId id{index, new_tag()};
    auto made = Ring::create_for(spec.ns, spec.link_name(id), spec.link, spec.owner);
    if (made) {
      if (!closing(spec)) return id;
      (void)shm::Segment::remove(spec.ns, spec.link_name(id));
      return closed_error(spec);
    }
    if (made.code() != Errc::already_exists) return std::move(made).error();
  }
}

Error sealed_chain(const ChainSpec& spec) {
  return {Errc::closed, "the consumer of " + spec.base +
                            " died and its port's next owner has read what it held; nothing was "
                            "enqueued. Push again: the key's new owner takes it"};
}

// The link a `next` word names, if it may follow `current`: a link is sealed only once its
// successor was offered, and a successor's index is one more. Anything else is a peer's
// scribble (a cycle would send every pusher round it for ever).
Result<LinkId> checked_next(const ChainSpec& spec, std::uint64_t next, LinkId current) {
  if (next == kNextSealed) return sealed_chain(spec);
  const LinkId n = LinkId::unpack(next);
  if (n.index != current.index + 1)
    return Error{Errc::corrupt, "link " + spec.link_name(current) + " names link " +
                                    std::to_string(n.index) +
                                    " as its successor: the chain is damaged; its owner must "
                                    "stop and start the port again"};
  return n;
}

// The successor of a sealed link whose control block is `control`: the one already offered,
// or one we make and offer now (removing ours if another offer won).
Result<LinkId> successor(const ChainSpec& spec, RingControl& control, LinkId current) {
  // acquire: pairs with the offering CAS; the successor was published before it.
  if (const std::uint64_t next = control.counters.next.load(std::memory_order_acquire))
    return checked_next(spec, next, current);
  auto mine = make_link(spec, current.index + 1);
  if (!mine) return std::move(mine).error();
  std::uint64_t expected = 0;
  // acq_rel: offers our published link (release), or learns the winner's (acquire).
  if (control.counters.next.compare_exchange_strong(expected, mine->pack(),
                                                    std::memory_order_acq_rel))
    return *mine;
  (void)shm::Segment::remove(spec.ns, spec.link_name(*mine));  // nobody will ever follow it
  return checked_next(spec, expected, current);
}

// Adds to `total` the stats of the links after `from` (followed by their published `next`), and
// counts them in `links`. Stops at a link that is missing or damaged.
void add_successors(const ChainSpec& spec, const shm::Segment& from, RingStats& total,
                    std::uint32_t& links) {
  // acquire: the links are followed by their published `next` (made before it was offered).
  std::uint64_t next = reinterpret_cast<const RingControl*>(from.base())
                           ->counters.next.load(std::memory_order_acquire);
  // Each successor's index is one more than its predecessor's: a `next` that is not (a peer's
  // scribble, a cycle) ends the walk, as does the end of the chain.
  for (std::uint32_t index = LinkId::unpack(next).index;
       spec.unbounded && next != 0 && next != kNextSealed && LinkId::unpack(next).index == index;
       ++index) {
    auto seg = shm::Segment::open(spec.ns, spec.link_name(LinkId::unpack(next)),
                                  shm::SegmentKind::ring, {.read_only = true});
    if (!seg) break;
    auto cfg = validated_config(*seg);
    if (!cfg) break;
    const RingStats s = read_stats(*seg, *cfg);
    total.depth += s.depth;
    total.bytes_used += s.bytes_used;
    total.abandoned += s.abandoned;
    total.aborted += s.aborted;
    ++links;
    // acquire: as above.
    next = reinterpret_cast<const RingControl*>(seg->base())
               ->counters.next.load(std::memory_order_acquire);
  }
}

}  // namespace

std::string ChainSpec::link_name(LinkId id) const {
  char tag[9];
  std::snprintf(tag, sizeof tag, "%08x", id.tag);
  return base + "." + std::to_string(id.index) + "." + tag;
}

Result<ChainConsumer> ChainConsumer::create(ChainSpec spec) {
  const LinkId first{0, new_tag()};
  auto ring = Ring::create(spec.ns, spec.link_name(first), spec.link);
  if (!ring) return std::move(ring).error();
  // release: the link exists before anyone reads its id.
  spec.newest->store(first.pack(), std::memory_order_release);
  // relaxed: for tools, which open the link by name and check it.
  if (spec.oldest) spec.oldest->store(first.pack(), std::memory_order_relaxed);
  return ChainConsumer(std::move(spec), std::move(ring).value(), first);
}

Status ChainConsumer::advance() {
  auto next = successor(spec_, *reinterpret_cast<RingControl*>(link_->segment().base()), id_);
  if (!next) return std::move(next).error();
  // Before the finished link goes: a pusher that finds it gone jumps to `newest`.
  raise_newest(*spec_.newest, *next);
  auto ring = Ring::adopt(spec_.ns, spec_.link_name(*next));
  if (!ring) return std::move(ring).error();
  const std::string finished = spec_.link_name(id_);
  abandoned_before_ += link_->abandoned();
  link_.emplace(std::move(ring).value());
  link_->set_spin(spin_);
  id_ = *next;
  // relaxed: for tools, as in create().
  if (spec_.oldest) spec_.oldest->store(id_.pack(), std::memory_order_relaxed);
  (void)shm::Segment::remove(spec_.ns, finished);  // pushers still on it keep their mapping
  return {};
}

Status ChainConsumer::wait(Deadline deadline, AlsoReady also) {
  if (!spec_.unbounded) return link_->wait(deadline, also);
  struct Both {
    const Ring* link;
    AlsoReady also;
  } both{&*link_, also};
  return link_->wait(deadline, {[](const void* ctx) {
                                  const auto* b = static_cast<const Both*>(ctx);
                                  // seq_cst: AlsoReady's contract.
                                  return b->link->sealed_and_drained(std::memory_order_seq_cst) ||
                                         b->also();
                                },
                                &both, also.line});
}

RingStats ChainConsumer::stats(std::uint32_t* links) const {
  RingStats total = link_->stats();
  std::uint32_t count = 1;
  add_successors(spec_, link_->segment(), total, count);
  if (links) *links = count;
  return total;
}

Result<RingStats> chain_stats(const ChainSpec& spec, std::uint32_t* links) {
  if (!spec.oldest)
    return Error{Errc::bad_config, "chain " + spec.base + " records no link being read ('oldest')"};
  // relaxed: a hint; the link is opened by name and checked.
  const LinkId first = LinkId::unpack(spec.oldest->load(std::memory_order_relaxed));
  auto seg = shm::Segment::open(spec.ns, spec.link_name(first), shm::SegmentKind::ring,
                                {.read_only = true});
  if (!seg) return std::move(seg).error();
  auto cfg = validated_config(*seg);
  if (!cfg) return std::move(cfg).error();
  RingStats total = read_stats(*seg, *cfg);
  std::uint32_t count = 1;
  add_successors(spec, *seg, total, count);
  if (links) *links = count;
  return total;
}

Result<ChainPusher> ChainPusher::open(ChainSpec spec) {
  ChainPusher pusher(std::move(spec));
  // acquire: pairs with whoever named the link newest (it was published before).
  const LinkId newest = LinkId::unpack(pusher.spec_.newest->load(std::memory_order_acquire));
  if (auto st = pusher.attach(newest); !st) return std::move(st).error();
  return pusher;
}

Status ChainPusher::attach(LinkId id) {
  // `newest` only grows; a peer that keeps rewriting it could keep us here: bounded.
  for (int attempt = 0;; ++attempt) {
    if (attempt == 64)
      return Error{Errc::corrupt, "the links of " + spec_.base +
                                      " keep vanishing as they are named newest: the chain is "
                                      "damaged; its owner must stop and start the port again"};
    auto link = RingPusher::open(spec_.ns, spec_.link_name(id));
    if (link) {
      link_.emplace(std::move(link).value());  // hands back our slot of the sealed link
      link_->set_park_ledger(spec_.parks);
      id_ = id;
      return {};
    }
    if (link.code() != Errc::not_found) return std::move(link).error();
    // Already read and removed (we slept through it): the newest link is where pushes go.
    // `newest` moved past it before its removal, and names a link that still exists.
    // acquire: as in open().
    const LinkId newest = LinkId::unpack(spec_.newest->load(std::memory_order_acquire));
    if (newest.pack() == id.pack() && closing(spec_)) return closed_error(spec_);
    if (newest.pack() == id.pack() || newest.index < id.index)
      return Error{Errc::corrupt, "the newest link " + spec_.link_name(id) +
                                      " of an unbounded queue is missing from /dev/shm; was it "
                                      "removed by hand? Restart the port's owner"};
    id = newest;
  }
}

template <class Attempt>
Status ChainPusher::on_a_link(Attempt&& attempt, const Patience& patience) {
  if (!spec_.unbounded) return attempt(*link_, patience);
  for (;;) {
    if (!moving_to_) {
      auto st = attempt(*link_, Patience{.deadline = kDontWait});
      if (st) return st;
      // Full, or sealed (another pusher moved on, or a take-over read it): either way the next
      // link is where pushes go, if there is one.
      if (st.code() != Errc::timeout && !(st.code() == Errc::closed && link_->sealed())) return st;
      // Make sure it has a successor first: if none can be made (no room in /dev/shm), the
      // link stays open and this push reports it, rather than seal a link nobody follows.
      auto next = successor(spec_, *link_->control(), id_);
      if (!next) return std::move(next).error();
      shm::test_hook("chain.seal");  // successor made, link still open (tests of waiters)
      link_->seal();  // nobody claims here any more; the consumer moves on after the end
      moving_to_ = *next;
    }
    raise_newest(*spec_.newest, *moving_to_);
    if (auto attached = attach(*moving_to_); !attached) return attached;
    moving_to_.reset();
  }
}

Status ChainPusher::push_on_links(std::span<const std::byte> head, std::span<const std::byte> body,
                                  Patience patience) {
  return on_a_link([&](RingPusher& link, const Patience& p) { return link.push(head, body, p); },
                   patience);
}

Status ChainPusher::push_batch(std::span<const std::byte> head,
                               std::span<const std::span<const std::byte>> bodies,
                               Patience patience, std::size_t& done) {
  return on_a_link(
      [&](RingPusher& link, const Patience& p) { return link.push_batch(head, bodies, p, done); },
      patience);
}

Result<RingLoan> ChainPusher::loan(std::uint32_t len, Patience patience) {
  RingLoan out;
  auto st = on_a_link(
      [&](RingPusher& link, const Patience& p) -> Status {
        auto l = link.loan(len, p);
        if (!l) return std::move(l).error();
        out = *l;
        return {};
      },
      patience);
  if (!st) return std::move(st).error();
  return out;
}

Result<OrphanRing> open_orphan_link(const ChainSpec& spec, const shm::ProcessId& dead, LinkId& id) {
  if (!spec.oldest)
    return Error{Errc::bad_config, "chain " + spec.base + " records no link being read ('oldest')"};
  // relaxed: written by the consumer, now dead; the link it names was published before.
  id = LinkId::unpack(spec.oldest->load(std::memory_order_relaxed));
  return OrphanRing::open(spec.ns, spec.link_name(id), dead);
}

Result<std::optional<OrphanRing>> open_orphan_successor(const ChainSpec& spec,
                                                        const shm::ProcessId& dead,
                                                        const OrphanRing& link, LinkId& id) {
  auto& next_word =
      const_cast<RingControl*>(reinterpret_cast<const RingControl*>(link.segment().base()))
          ->counters.next;
  std::uint64_t next = 0;
  // acq_rel: seals the chain here if no successor was offered (a pusher's offer then fails and
  // it gets Errc::closed), or learns the successor (acquire: it was published before).
  if (next_word.compare_exchange_strong(next, kNextSealed, std::memory_order_acq_rel,
                                        std::memory_order_acquire) ||
      next == kNextSealed)
    return std::optional<OrphanRing>{};
  auto n = checked_next(spec, next, id);
  if (!n) return std::move(n).error();
  auto ring = OrphanRing::open(spec.ns, spec.link_name(*n), dead);
  if (!ring) return std::move(ring).error();
  id = *n;
  return std::optional<OrphanRing>(std::move(ring).value());
}

std::uint64_t orphan_depth_after(const ChainSpec& spec, const OrphanRing& link) {
  RingStats total{};
  std::uint32_t links = 0;
  add_successors(spec, link.segment(), total, links);
  return total.depth;
}

}  // namespace bloccs::lockfree
