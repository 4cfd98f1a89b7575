// SPDX-License-Identifier: Apache-2.0
// The physical floors: what moving a message between two cores costs with nothing else in the
// way. Every bloccs latency is reported as a ratio to these, measured in the same run.
//   floor-spin   the receiver spins on the slot until the message's first word changes;
//   floor-futex  the receiver sleeps on that word with FUTEX_WAIT, the sender wakes it with
//                FUTEX_WAKE after every store: the cheapest blocking hand-off there is.
// A floor is one slot, not a queue: the sender may send again only once the receiver took the
// message, which a round trip guarantees (the reply comes after the take). So floors are
// measured in round trips only. They use no bloccs code at all.
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>

#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {
namespace {

// One slot per channel, in an anonymous MAP_SHARED mapping made before fork (so both processes
// see it), line-aligned, `bytes` long rounded up to 64:
//   0        8                                          bytes
//   +--------+------------------------------------------+
//   | first  | the message's bytes 8 .. bytes           |
//   +--------+------------------------------------------+
// `first` holds the message's own first 8 bytes, stored last (release): the suite's messages
// begin with a sequence number that differs from the previous message's, so its change is the
// signal. A 64-byte message is exactly one cache line: the bare cache-line ping-pong.
struct Slot {
  std::atomic<std::uint64_t> first;
  // then bytes - 8 more, up to the end of the mapping
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::endian::native == std::endian::little, "the futex word is the low half");

// FUTEX_WAIT/WAKE read the low 32 bits of `first` (little-endian): they change with every
// sequence number but once in 2^32 messages, far beyond any run.
std::uint32_t* futex_word(Slot* slot) { return reinterpret_cast<std::uint32_t*>(&slot->first); }

std::byte* rest(Slot* slot) { return reinterpret_cast<std::byte*>(slot) + sizeof(Slot); }

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

enum class Wait { spin, futex };

// Both ends refer to the channel's slot; the channel outlives them.
class FloorSender final : public Sender {
 public:
  FloorSender(Slot* slot, std::size_t bytes, Wait wait) : slot_(slot), bytes_(bytes), wait_(wait) {}

  Status send(std::span<const std::byte> m) override {
    if (m.size() != bytes_) return Error{Errc::payload_too_large, "floor: wrong message size"};
    std::memcpy(rest(slot_), m.data() + 8, bytes_ - 8);
    std::uint64_t first;
    std::memcpy(&first, m.data(), 8);
    // release: the rest of the message is visible before its first word changes.
    slot_->first.store(first, std::memory_order_release);
    if (wait_ == Wait::futex)
      syscall(SYS_futex, futex_word(slot_), FUTEX_WAKE, 1, nullptr, nullptr, 0);
    return {};
  }

 private:
  Slot* slot_;
  std::size_t bytes_;
  Wait wait_;
};

class FloorReceiver final : public Receiver {
 public:
  FloorReceiver(Slot* slot, std::size_t bytes, Wait wait)
      : slot_(slot), bytes_(bytes), wait_(wait) {}

  Status receive(std::span<std::byte> out) override {
    std::uint64_t first;
    // acquire: pairs with the sender's release store; the rest is complete once it changed.
    while ((first = slot_->first.load(std::memory_order_acquire)) == last_) {
      if (wait_ == Wait::spin) {
        cpu_relax();
        continue;
      }
      // Sleeps only while the word still holds the last message's value: no lost wake-up.
      const long r = syscall(SYS_futex, futex_word(slot_), FUTEX_WAIT,
                             static_cast<std::uint32_t>(last_), nullptr, nullptr, 0);
      if (r != 0 && errno != EAGAIN && errno != EINTR)
        return Error{Errc::system_error,
                     std::string("floor-futex: FUTEX_WAIT: ") + std::strerror(errno)};
    }
    last_ = first;
    std::memcpy(out.data(), &first, 8);
    std::memcpy(out.data() + 8, rest(slot_), bytes_ - 8);
    return {};
  }

 private:
  Slot* slot_;
  std::size_t bytes_;
  Wait wait_;
  std::uint64_t last_ = 0;  // the last message's first word (sequence numbers start at 1)
};

class FloorChannel final : public Channel {
 public:
  FloorChannel(Slot* slot, std::size_t mapped, std::size_t bytes, Wait wait)
      : slot_(slot), mapped_(mapped), bytes_(bytes), wait_(wait) {}
  ~FloorChannel() override { munmap(slot_, mapped_); }

  Result<std::unique_ptr<Receiver>> open_receiver() override {
    return std::unique_ptr<Receiver>(std::make_unique<FloorReceiver>(slot_, bytes_, wait_));
  }
  Result<std::unique_ptr<Sender>> open_sender() override {
    return std::unique_ptr<Sender>(std::make_unique<FloorSender>(slot_, bytes_, wait_));
  }

 private:
  Slot* slot_;
  std::size_t mapped_;
  std::size_t bytes_;
  Wait wait_;
};

template <Wait wait>
Result<std::unique_ptr<Channel>> make_floor(const ChannelSpec& spec) {
  if (spec.bytes < 8 || spec.bytes > 4096)
    return Error{Errc::bad_config, "floor: messages are 8 to 4096 bytes"};
  if (spec.senders != 1) return Error{Errc::bad_config, "floor: one sender, one message in flight"};
  const std::size_t mapped = (spec.bytes + 63) / 64 * 64;
  void* mem = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    return Error{Errc::system_error, std::string("floor: mmap: ") + std::strerror(errno)};
  auto* slot = new (mem) Slot{};  // mmap gives page alignment, so the slot starts a cache line
  return std::unique_ptr<Channel>(std::make_unique<FloorChannel>(slot, mapped, spec.bytes, wait));
}

constexpr Transport kFloors[] = {
    {"floor-spin", "a bare cache-line hand-off: the receiver spins on the message's first word",
     false, true, make_floor<Wait::spin>},
    {"floor-futex", "the same, the receiver sleeping on FUTEX_WAIT, woken by FUTEX_WAKE", false,
     true, make_floor<Wait::futex>},
};

}  // namespace

std::span<const Transport> floor_transports() { return kFloors; }

}  // namespace bloccs::bench
