// SPDX-License-Identifier: Apache-2.0
// Batches (push_batch), across real processes: order and exactly-once with several batching
// pushers, a batch larger than the free space parks for the rest without splitting a message,
// and the port API's batch, its count, its deadline and a take-over of batched records.
#include <signal.h>

#include <random>

#include <gtest/gtest.h>

#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "port_test_support.hpp"

using namespace bloccs;
using namespace bloccs::test;
namespace lf = bloccs::lockfree;

namespace {

class RingBatches : public ::testing::TestWithParam<lf::RingKind> {};

// Pushes `count` messages of pusher `id`'s test stream in batches of 1 to 100.
int batch_stream(const std::string& ns, std::uint32_t id, std::uint64_t count, std::size_t max) {
  auto pusher = lf::RingPusher::open(ns, "r");
  if (!pusher) return 2;
  std::mt19937 rng(id);
  std::vector<std::vector<std::byte>> msgs;
  std::vector<std::span<const std::byte>> spans;
  for (std::uint64_t seq = 0; seq < count;) {
    const std::uint64_t n = std::min<std::uint64_t>(count - seq, 1 + rng() % 100);
    msgs.resize(n);
    spans.clear();
    for (std::uint64_t i = 0; i < n; ++i) {
      fill_message(msgs[i], id, seq + i, message_size(id, seq + i, max));
      spans.emplace_back(msgs[i]);
    }
    std::size_t done = 0;
    if (auto st = pusher->push_batch({}, spans, {}, done); !st || done != n) return 3;
    seq += n;
  }
  return 0;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Both, RingBatches,
                         ::testing::Values(lf::RingKind::spsc, lf::RingKind::mpsc),
                         [](const auto& info) {
                           return info.param == lf::RingKind::spsc ? "spsc" : "mpsc";
                         });

// Batches larger than the ring (buffer 32, 4 KiB) park for their rest again and again; every
// message arrives once, whole, in its pusher's order.
TEST_P(RingBatches, SeveralBatchingPushersArriveExactlyOnceInOrder) {
  TestNamespace ns;
  constexpr std::size_t kMax = 200;
  const bool mpsc = GetParam() == lf::RingKind::mpsc;
  auto ring = lf::Ring::create(
      ns.name(), "r", {.kind = GetParam(), .buffer = 32, .max_payload = kMax, .capacity = 4096});
  ASSERT_TRUE(ring) << ring.error().message;
  const std::uint32_t pushers = mpsc ? 3 : 1;
  const std::uint64_t each = scaled(100'000);
  std::vector<pid_t> kids;
  for (std::uint32_t id = 0; id < pushers; ++id)
    kids.push_back(spawn([&, id] { return batch_stream(ns.name(), id, each, kMax); }));
  StreamChecker checker(pushers, kMax);
  std::string failure;
  while (checker.total() < pushers * each && failure.empty()) {
    auto n = ring->drain(
        [&](std::span<const std::byte> m) {
          if (failure.empty()) failure = checker.check(m);
        },
        64, Clock::now() + 30s);
    ASSERT_TRUE(n) << n.error().message << " after " << checker.total();
  }
  EXPECT_EQ(failure, "");
  for (pid_t k : kids) EXPECT_TRUE(exited_ok(wait_child(k)));
  EXPECT_EQ(ring->stats().depth, 0u);
  EXPECT_EQ(ring->stats().bytes_used, 0u);
}

// Nobody reads: a batch of 20 into a ring of buffer 8 puts 8 in and times out on the rest,
// never a part of a message; read out, the next call goes on from the ninth.
TEST_P(RingBatches, ABatchLargerThanTheFreeSpaceParksForTheRestAndSplitsNoMessage) {
  TestNamespace ns;
  auto ring =
      lf::Ring::create(ns.name(), "r", {.kind = GetParam(), .buffer = 8, .max_payload = 64});
  ASSERT_TRUE(ring) << ring.error().message;
  Signal first_part;
  const pid_t kid = spawn([&] {
    auto pusher = lf::RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    std::vector<std::string> msgs;
    for (int i = 0; i < 20; ++i) msgs.push_back("message " + std::to_string(i));
    std::vector<std::span<const std::byte>> spans;
    for (const auto& m : msgs) spans.emplace_back(bloccs::bytes(m));
    std::size_t done = 0;
    auto st = pusher->push_batch({}, spans, {.deadline = Clock::now() + 100ms}, done);
    if (st || st.code() != Errc::timeout || done != 8) return 3;
    first_part.notify();
    st = pusher->push_batch({}, spans, {.deadline = Clock::now() + 20s}, done);  // the rest
    return st && done == 20 ? 0 : 4;
  });
  ASSERT_TRUE(first_part.wait());
  EXPECT_EQ(ring->stats().depth, 8u);
  std::vector<std::string> got;
  while (got.size() < 20) {
    auto n = ring->drain([&](std::span<const std::byte> m) { got.push_back(str(m)); }, 3,
                         Clock::now() + 20s);
    ASSERT_TRUE(n) << n.error().message;
  }
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(got[static_cast<std::size_t>(i)], "message " + std::to_string(i));
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
}

TEST(PortBatch, APortBatchCarriesItsMetaCountsWhatWentInAndCrossesLinks) {
  for (bool unbounded : {false, true}) {
    SCOPED_TRACE(unbounded ? "unbounded" : "bounded");
    TestNamespace ns;
    std::optional<std::uint32_t> buffer = 64;
    if (unbounded) buffer.reset();
    auto port =
        Port::start(key(), {.buffer = buffer, .single_pusher = !unbounded, .ns = ns.name()});
    ASSERT_TRUE(port) << describe(port);
    const int kCount = unbounded ? 20'000 : 5'000;  // unbounded: ~2 MB, past a 1 MiB link
    const pid_t kid = spawn([&] {
      auto p = Pusher::open(ns.name());
      if (!p) return fail(2, "open", p);
      std::vector<std::string> msgs;
      for (int i = 0; i < kCount; ++i) msgs.push_back(std::to_string(i) + std::string(80, 'x'));
      std::vector<std::span<const std::byte>> spans;
      for (const auto& m : msgs) spans.emplace_back(bloccs::bytes(m));
      Meta meta;
      meta.set("batch", "yes");
      std::size_t pushed = 0;
      if (auto st = p->push_batch(key(), spans, meta, &pushed); !st) return fail(3, "batch", st);
      if (pushed != spans.size()) return fail(4, "pushed count");
      std::vector<std::byte> big(5000);
      std::vector<std::span<const std::byte>> oversized{spans[0], big};
      if (!is(p->push_batch(key(), oversized, {}, &pushed), Errc::payload_too_large) || pushed)
        return fail(5, "an oversized payload in a batch");
      if (!is(p->push_batch(key("nobody"), spans, {}, &pushed), Errc::no_producer))
        return fail(6, "no owner");
      return 0;
    });
    for (int i = 0; i < kCount; ++i) {
      auto m = port->receive(in(20s));
      ASSERT_TRUE(m) << describe(m) << " at " << i;
      ASSERT_EQ(str(m->payload), std::to_string(i) + std::string(80, 'x'));
      ASSERT_EQ(m->meta.get("batch"), "yes");
    }
    EXPECT_EQ(exit_code(wait_child(kid)), 0);
    EXPECT_EQ(port->stats().depth, 0u);
  }
}

// The owner of a single-pusher port is SIGKILLed with batched records queued, some of them
// past a pad: the next owner carries every one of them over, in order.
TEST(PortBatch, ATakeOverCarriesOverBatchedRecords) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  const pid_t owner = reap(spawn([&] {
    auto p = Port::start(key(), {.buffer = 64, .single_pusher = true, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    for (int i = 0; i < 500; ++i)  // move the records on, past the end of the ring
      if (!p->receive(in(10s))) return fail(3, "receive");
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  const pid_t pusher = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    std::vector<std::string> msgs;
    for (int i = 0; i < 550; ++i) msgs.push_back(std::to_string(i) + std::string(200, 'b'));
    std::vector<std::span<const std::byte>> spans;
    for (const auto& m : msgs) spans.emplace_back(bloccs::bytes(m));
    for (std::size_t at = 0; at < spans.size(); at += 50)
      if (auto st = p->push_batch(key(), std::span(spans).subspan(at, 50)); !st)
        return fail(3, "batch", st);
    return 0;
  });
  ASSERT_EQ(exit_code(wait_child(pusher)), 0);
  std::this_thread::sleep_for(50ms);
  kill(owner, SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(wait_child(owner)));
  auto port = Port::start(key(), {.buffer = 64, .single_pusher = true, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  EXPECT_EQ(port->takeover().salvaged, 50u) << port->takeover().note;
  EXPECT_EQ(port->takeover().lost(), 0u) << port->takeover().note;
  for (int i = 500; i < 550; ++i) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    ASSERT_EQ(str(m->payload), std::to_string(i) + std::string(200, 'b'));
  }
}
