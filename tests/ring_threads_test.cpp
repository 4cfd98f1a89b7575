// SPDX-License-Identifier: Apache-2.0
// The rings' memory orders under ThreadSanitizer: pushers and the consumer as threads of one
// process, each pusher with its own attachment (as separate processes would have). The fork
// tests carry the cross-process proof; these let TSan check every acquire/release pairing,
// including both sides parking and waking.
#include <gtest/gtest.h>

#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "test_support.hpp"

using namespace bloccs::lockfree;
using namespace bloccs::test;

namespace {

void run_threads(RingKind kind, std::uint32_t pushers, std::uint64_t each, std::uint32_t buffer,
                 SpinPolicy spin) {
  TestNamespace ns;
  constexpr std::size_t kMax = 300;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = kind, .buffer = buffer, .max_payload = kMax, .capacity = 1024});
  ASSERT_TRUE(ring) << ring.error().message;
  ring->set_spin(spin);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (std::uint32_t id = 0; id < pushers; ++id)
    threads.emplace_back([&, id] {
      auto p = RingPusher::open(ns.name(), "r");
      if (!p) return failures.fetch_add(1), void();
      p->set_spin(spin);
      std::vector<std::byte> msg;
      for (std::uint64_t seq = 0; seq < each; ++seq) {
        fill_message(msg, id, seq, message_size(id, seq, kMax));
        if (!p->push(msg)) return failures.fetch_add(1), void();
      }
    });
  StreamChecker checker(pushers, kMax);
  std::string failure;
  while (checker.total() < pushers * each && failure.empty() && failures.load() == 0) {
    auto n = ring->drain(
        [&](auto m) {
          if (failure.empty()) failure = checker.check(m);
        },
        64, Clock::now() + std::chrono::seconds(30));
    if (!n) failure = n.error().message;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failure, "");
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(checker.total(), pushers * each);
}

constexpr SpinPolicy kSpinning{};  // the default: spin, then park
constexpr SpinPolicy kAlwaysPark{std::chrono::nanoseconds(0), std::chrono::nanoseconds(0)};

}  // namespace

TEST(RingThreads, SpscSpinning) {
  run_threads(RingKind::spsc, 1, scaled(200'000), 16, kSpinning);
}
TEST(RingThreads, SpscAlwaysParking) {
  run_threads(RingKind::spsc, 1, scaled(50'000), 4, kAlwaysPark);
}
TEST(RingThreads, MpscSpinning) {
  run_threads(RingKind::mpsc, 3, scaled(100'000), 16, kSpinning);
}
TEST(RingThreads, MpscAlwaysParking) {
  run_threads(RingKind::mpsc, 3, scaled(30'000), 4, kAlwaysPark);
}
