// A queue of rings: "<base>.0", "<base>.1", ... A bounded queue is link 0 alone. An unbounded
// one grows: a pusher that finds the newest link full seals it (ring_layout.hpp, kSealCount)
// and moves on to the next, creating it if nobody has yet; the consumer reads each link to the
// end of its sealed tail, then adopts the next and removes the one it finished. So pushers
// never wait, each pusher's messages keep their order, and memory is handed back link by link.
//
// Which link is newest lives in a word of the caller's shared memory (`newest`): pushers
// always push into the newest link and never create any other, so a pusher that was asleep
// for a while never brings back a link the consumer already finished and removed:
//   - whoever finds link j sealed moves `newest` from j to j + 1 (one CAS; losing is fine);
//   - a link is created only as the newest, and only after re-reading `newest` following a
//     failed open (the consumer removes a link only once `newest` has moved past it).
// A creator killed before publishing a link leaves it unready; the next one to look removes
// it (its creator is dead) and creates it again.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "lockfree/ring.hpp"

namespace bloccs::lockfree {

struct ChainSpec {
  std::string ns;
  std::string base;                       // link k is "<base>.<k>"
  std::atomic<std::uint64_t>* newest;     // in shared memory; the newest link's index
  bool unbounded = false;                 // false: link 0 only, full pushers park
  RingOptions link;                       // how links are made (buffer = kMaxBuffer if unbounded)
  shm::ProcessId owner;                   // the consumer, for links made by pushers
  std::string link_name(std::uint64_t k) const { return base + "." + std::to_string(k); }
};

class ChainConsumer {
 public:
  // Creates link 0 (the owner, at start).
  static Result<ChainConsumer> create(ChainSpec spec);

  // As Ring::try_drain, across links.
  template <class F>
  Result<std::size_t> try_drain(F&& f, std::size_t max);
  // As Ring::wait; a sealed link counts as a reason to wake (the next try_drain moves on).
  Status wait(Deadline deadline, AlsoReady also = {});
  bool ready(std::memory_order order) const noexcept { return link_->ready(order); }
  void wake_consumer() const noexcept { link_->wake_consumer(); }
  void close() noexcept { link_->close(); }
  // The sum over the links not yet read; `links` how many there are.
  RingStats stats(std::uint32_t* links = nullptr) const;

 private:
  ChainConsumer(ChainSpec spec, Ring link) : spec_(std::move(spec)), link_(std::move(link)) {}
  Status advance();  // the current link is sealed and read: adopt the next, remove this one

  ChainSpec spec_;
  std::optional<Ring> link_;
  std::uint64_t index_ = 0;
};

class ChainPusher {
 public:
  // Attaches to the newest link.
  static Result<ChainPusher> open(ChainSpec spec);

  // As RingPusher::push. An unbounded chain never waits: a full link is sealed and the message
  // goes to the next. Errc::out_of_memory if /dev/shm cannot hold another link.
  Status push(std::span<const std::byte> head, std::span<const std::byte> body,
              Patience patience);

 private:
  explicit ChainPusher(ChainSpec spec) : spec_(std::move(spec)) {}
  Status attach_newest(std::uint64_t at_least);

  ChainSpec spec_;
  std::optional<RingPusher> link_;
  std::uint64_t index_ = 0;
};

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
