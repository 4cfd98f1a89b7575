// Chains of rings: growing an unbounded queue link by link (the protocol is in chain.hpp).
#include "lockfree/chain.hpp"

#include <thread>

namespace bloccs::lockfree {
namespace {

// How long a link may stay half-made (not ready, creator alive) before we give up on it.
constexpr auto kLinkPatience = std::chrono::seconds(5);

// Moves `newest` from j to j + 1 once link j is sealed (losing the race is fine).
void bump_newest(std::atomic<std::uint64_t>& newest, std::uint64_t j) {
  std::uint64_t expected = j;
  // acq_rel: orders our view of link j's seal before the link we then open (and publishes it).
  newest.compare_exchange_strong(expected, j + 1, std::memory_order_acq_rel,
                                 std::memory_order_acquire);
}

// Calls `open` for link k until it succeeds, creating the link when it is missing and still the
// newest (or, for the consumer, the next it must read), and replacing one whose creator died
// before publishing it.
template <class Open>
auto open_link(const ChainSpec& spec, std::uint64_t k, bool create_if_missing, Open&& open)
    -> decltype(open(std::string{})) {
  const std::string name = spec.link_name(k);
  const auto give_up = Clock::now() + kLinkPatience;
  for (;;) {
    auto link = open(name);
    if (link) return link;
    if (link.code() == Errc::not_found) {
      if (!create_if_missing) return link;  // the caller re-reads `newest` and decides
      auto made = Ring::create_for(spec.ns, name, spec.link, spec.owner);
      if (!made && made.code() != Errc::already_exists) return std::move(made).error();
      continue;
    }
    if (link.code() != Errc::not_ready) return link;
    // Being made: wait for its creator, or replace the link if the creator died meanwhile.
    if (shm::Segment::remove_if_abandoned(spec.ns, name, std::chrono::seconds(1))) continue;
    if (Clock::now() >= give_up) return link;
    std::this_thread::yield();
  }
}

}  // namespace

Result<ChainConsumer> ChainConsumer::create(ChainSpec spec) {
  auto ring = Ring::create(spec.ns, spec.link_name(0), spec.link);
  if (!ring) return std::move(ring).error();
  // release: the link exists before anyone reads its index.
  spec.newest->store(0, std::memory_order_release);
  return ChainConsumer(std::move(spec), std::move(ring).value());
}

Status ChainConsumer::advance() {
  const std::uint64_t next = index_ + 1;
  bump_newest(*spec_.newest, index_);
  auto ring = open_link(spec_, next, true,
                        [&](const std::string& name) { return Ring::adopt(spec_.ns, name); });
  if (!ring) return std::move(ring).error();
  const std::string finished = spec_.link_name(index_);
  link_.emplace(std::move(ring).value());
  index_ = next;
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
                                  return b->link->sealed(std::memory_order_seq_cst) || b->also();
                                },
                                &both, also.line});
}

RingStats ChainConsumer::stats(std::uint32_t* links) const {
  RingStats total = link_->stats();
  // relaxed: a snapshot for people.
  const std::uint64_t newest = spec_.newest->load(std::memory_order_relaxed);
  std::uint32_t count = 1;
  for (std::uint64_t k = index_ + 1; spec_.unbounded && k <= newest; ++k) {
    auto seg = shm::Segment::open(spec_.ns, spec_.link_name(k), shm::SegmentKind::ring,
                                  {.read_only = true});
    if (!seg) continue;
    auto cfg = validated_config(*seg);
    if (!cfg) continue;
    const RingStats s = read_stats(*seg, *cfg);
    total.depth += s.depth;
    total.bytes_used += s.bytes_used;
    total.abandoned += s.abandoned;
    ++count;
  }
  if (links) *links = count;
  return total;
}

Result<ChainPusher> ChainPusher::open(ChainSpec spec) {
  ChainPusher pusher(std::move(spec));
  // acquire: pairs with the CAS that made it newest (the link exists, or is being made).
  const std::uint64_t newest =
      pusher.spec_.unbounded ? pusher.spec_.newest->load(std::memory_order_acquire) : 0;
  if (auto st = pusher.attach_newest(newest); !st) return std::move(st).error();
  return pusher;
}

Status ChainPusher::attach_newest(std::uint64_t at_least) {
  for (;;) {
    // acquire: as in open().
    std::uint64_t k = spec_.newest->load(std::memory_order_acquire);
    if (!spec_.unbounded) k = 0;
    if (k < at_least) {  // link at_least - 1 is sealed and `newest` not moved yet: move it
      bump_newest(*spec_.newest, at_least - 1);
      continue;
    }
    auto link = open_link(spec_, k, false, [&](const std::string& name) {
      return RingPusher::open(spec_.ns, name);
    });
    if (link) {
      link_.emplace(std::move(link).value());  // hands back our slot of the sealed link
      index_ = k;
      return {};
    }
    if (link.code() != Errc::not_found) return std::move(link).error();
    // Missing: finished and removed (then `newest` has moved on), or not made yet. Make it
    // only if it is still the newest.
    // acquire: as above.
    if (spec_.newest->load(std::memory_order_acquire) != k) continue;
    auto made = Ring::create_for(spec_.ns, spec_.link_name(k), spec_.link, spec_.owner);
    if (!made && made.code() != Errc::already_exists) return std::move(made).error();
  }
}

Status ChainPusher::push(std::span<const std::byte> head, std::span<const std::byte> body,
                         Patience patience) {
  if (!spec_.unbounded) return link_->push(head, body, patience);
  for (;;) {
    auto st = link_->push(head, body, {.deadline = kDontWait});
    if (st || st.code() != Errc::timeout) return st;
    link_->seal();  // full: nobody claims here any more; the consumer moves on after the end
    bump_newest(*spec_.newest, index_);
    if (auto attached = attach_newest(index_ + 1); !attached) return attached;
  }
}

}  // namespace bloccs::lockfree
