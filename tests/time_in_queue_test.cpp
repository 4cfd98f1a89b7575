// SPDX-License-Identifier: Apache-2.0
// Time in queue and pushers' waits (issue 16): the histogram's buckets; what a consumer in one
// process records of messages stamped by pushers in another, against delays the test makes
// (lower bounds exact, upper bounds with room for a loaded machine); push_after and loans
// counted from when they are due or committed; a port without the histogram stamps nothing;
// parked pushers' waits, timeouts and no_producer counted in the control segment.
#include <signal.h>

#include <cmath>
#include <thread>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "port/meta_codec.hpp"
#include "port/port_stats.hpp"
#include "port/time_in_queue.hpp"
#include "port_test_support.hpp"
#include "registry/registry.hpp"
#include "shm/segment.hpp"

using bloccs::Errc;
using bloccs::Meta;
using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;
namespace port = bloccs::port;

namespace {

constexpr std::uint64_t kUs = 1'000, kMs = 1'000'000;  // in ns

std::uint64_t ns_of(std::chrono::nanoseconds d) {
  return static_cast<std::uint64_t>(d.count());
}

}  // namespace

TEST(TimeInQueueBuckets, EveryValueLiesInItsBucketAndTheMiddleIsWithinThreePointTwoPercent) {
  for (std::uint64_t v : {0ull, 1ull, 7ull, 8ull, 127ull, 128ull, 129ull, 255ull, 256ull, 1000ull,
                          999'999ull, 1'000'000ull, 123'456'789ull, (1ull << 37) - 1}) {
    const unsigned b = port::bucket_of(v);
    ASSERT_LT(b, port::kOverflowBucket) << v;
    EXPECT_LE(port::bucket_low(b), v) << v;
    EXPECT_GT(port::bucket_high(b), v) << v;
    if (v >= 128) {
      const double middle = static_cast<double>(port::bucket_low(b) + port::bucket_high(b)) / 2;
      EXPECT_LE(std::abs(middle - static_cast<double>(v)) / static_cast<double>(v), 0.032) << v;
    }
  }
  EXPECT_EQ(port::bucket_of(1ull << 37), port::kOverflowBucket);
  EXPECT_EQ(port::bucket_of(UINT64_MAX), port::kOverflowBucket);
  // The buckets tile the line: each starts where the one before ends.
  for (unsigned b = 0; b + 1 < port::kQueueBuckets; ++b)
    ASSERT_EQ(port::bucket_high(b), port::bucket_low(b + 1)) << b;
  // 100 ns to 100 s, as promised.
  EXPECT_LT(port::bucket_of(100), port::bucket_of(110));
  EXPECT_LT(port::bucket_of(100'000'000'000ull), port::kOverflowBucket);
}

TEST(TimeInQueueBuckets, PercentilesAndIntervalsOfASnapshot) {
  port::QueueTimeSnapshot a;
  for (std::uint64_t i = 1; i <= 100; ++i) {  // 10 us .. 1000 us
    a.buckets[port::bucket_of(i * 10 * kUs)]++;
    a.sum_ns += i * 10 * kUs;
    a.max_ns = i * 10 * kUs;
  }
  EXPECT_EQ(a.count(), 100u);
  auto near = [](std::uint64_t got, std::uint64_t want) {
    return std::abs(static_cast<double>(got) - static_cast<double>(want)) <=
           0.032 * static_cast<double>(want);
  };
  EXPECT_TRUE(near(a.percentile(0.5), 500 * kUs)) << a.percentile(0.5);
  EXPECT_TRUE(near(a.percentile(0.99), 990 * kUs)) << a.percentile(0.99);
  EXPECT_LE(a.percentile(1.0), 1000 * kUs);  // never past the max
  port::QueueTimeSnapshot b = a;
  b.buckets[port::bucket_of(5 * kMs)] += 3;
  b.sum_ns += 15 * kMs;
  b.max_ns = 5 * kMs;
  const port::QueueTimeSnapshot d = b.since(a);
  EXPECT_EQ(d.count(), 3u);
  EXPECT_EQ(d.sum_ns, 15 * kMs);
  EXPECT_TRUE(near(d.percentile(0.5), 5 * kMs)) << d.percentile(0.5);
  EXPECT_EQ(d.max_ns, 5 * kMs);
  EXPECT_EQ(a.since(a).count(), 0u);
  EXPECT_EQ(a.since(a).max_ns, 0u);
}

TEST(TimeInQueueCodec, AStampedRecordDecodesToItsMetaPayloadAndStamp) {
  Meta meta;
  meta.attempt = 3;
  meta.set("trace", "abc");
  for (const Meta& m : {Meta{}, meta}) {
    std::array<std::byte, bloccs::kMetaMaxBytes> encoded;
    auto n = bloccs::MetaCodec::encode(m, encoded);
    ASSERT_TRUE(n);
    std::array<std::byte, bloccs::kMetaWireMax> head;
    auto h = bloccs::MetaCodec::stamped(std::span(encoded).first(*n), 0x1122334455667788ull,
                                        head.data());
    std::vector<std::byte> record(h.begin(), h.end());
    for (char c : std::string("payload!")) record.push_back(static_cast<std::byte>(c));
    bloccs::MetaView view;
    std::span<const std::byte> payload;
    std::uint64_t stamp = 0;
    ASSERT_TRUE(bloccs::MetaCodec::decode_fast(record, view, payload, stamp));
    EXPECT_EQ(stamp, 0x1122334455667788ull);
    EXPECT_EQ(str(payload), "payload!");
    EXPECT_EQ(view.copy(), m);
    stamp = 0;
    ASSERT_TRUE(bloccs::MetaCodec::decode(record, view, payload, stamp));
    EXPECT_EQ(stamp, 0x1122334455667788ull);
    EXPECT_EQ(str(payload), "payload!");
    // A stamp the record has no room for: refused, never read past the record.
    record.resize(h.size() - 1);
    EXPECT_FALSE(bloccs::MetaCodec::decode(record, view, payload, stamp));
  }
}

// A pusher in another process pushes one message at a time; the consumer takes each only
// after holding off a fixed time. Its p50 is that time, within the bucket error plus what a
// sleep overshoots.
TEST(TimeInQueue, AConsumerThatHoldsEachMessageForAFixedTimeSeesThatTimeAsItsP50) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  constexpr int kMessages = 15;
  constexpr auto kHold = 20ms;
  Signal go, pushed;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < kMessages; ++i) {
      if (!go.wait()) return fail(3, "go");
      if (auto st = p->push(key(), num(i)); !st) return fail(4, "push", st);
      pushed.notify();
    }
    return 0;
  });
  std::vector<std::uint64_t> held;  // what the test itself measured, pushed -> received
  for (int i = 0; i < kMessages; ++i) {
    go.notify();
    ASSERT_TRUE(pushed.wait());
    const auto t0 = bloccs::Clock::now();
    std::this_thread::sleep_for(kHold);
    auto m = port->receive(in(10s));
    ASSERT_TRUE(m) << describe(m);
    held.push_back(ns_of(bloccs::Clock::now() - t0));
  }
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  std::sort(held.begin(), held.end());
  const bloccs::QueueTimes t = port->stats().time_in_queue;
  EXPECT_EQ(t.count, static_cast<std::uint64_t>(kMessages));
  const auto p50 = static_cast<double>(t.p50.count());
  const auto hold = static_cast<double>(ns_of(kHold));
  std::printf("held %.3f ms (measured p50 %.3f ms); histogram p50 %.3f ms, max %.3f ms\n",
              hold / 1e6, static_cast<double>(held[kMessages / 2]) / 1e6, p50 / 1e6,
              static_cast<double>(t.max.count()) / 1e6);
  // At least the hold (less the bucket error); at most what the test measured around it.
  EXPECT_GE(p50, hold * (1 - 0.032));
  EXPECT_LE(p50, static_cast<double>(held[kMessages / 2]) * 1.032 + 200e3);
  EXPECT_GE(t.max, kHold * 0.96);
  EXPECT_GE(t.total, kHold * kMessages * 0.96);
}

TEST(TimeInQueue, APortWithoutTheHistogramStampsNothingAndCountsNothing) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name(), .latency_histogram = false});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < 5; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "push", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  for (int i = 0; i < 5; ++i) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(num(m->payload), static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(port->stats().time_in_queue.count, 0u);
}

TEST(TimeInQueue, PushAfterCountsFromWhenItFellDueAndALoanFromItsCommit) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Signal loaned, committed;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push_after(key(), num(1), {}, 300ms); !st) return fail(3, "push_after", st);
    auto loan = p->loan(key(), 8);
    if (!loan) return fail(4, "loan", loan);
    loaned.notify();
    std::this_thread::sleep_for(300ms);  // held open: not time in queue
    std::memcpy(loan->bytes().data(), num(2).data(), 8);
    if (auto st = loan->commit(8); !st) return fail(5, "commit", st);
    committed.notify();
    return 0;
  });
  ASSERT_TRUE(loaned.wait());
  // The loan holds the ring at it: the push_after message falls due meanwhile and comes first.
  auto first = port->receive(in(10s));
  ASSERT_TRUE(first) << describe(first);
  EXPECT_EQ(num(first->payload), 1u);
  ASSERT_TRUE(committed.wait());
  auto second = port->receive(in(10s));
  ASSERT_TRUE(second) << describe(second);
  EXPECT_EQ(num(second->payload), 2u);
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  const bloccs::QueueTimes t = port->stats().time_in_queue;
  EXPECT_EQ(t.count, 2u);
  // Both were taken as soon as they could be: far less than the 300 ms delay or loan.
  EXPECT_LT(t.max, 150ms) << "max " << t.max.count() << " ns";
}

// The port is full; a pusher in another process parks until the consumer makes room.
TEST(PusherWaits, ParkedPushesTheirTimeTheLongestAndTimeoutsAreCounted) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 2, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Signal parked_soon;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < 2; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "fill", st);
    auto st = p->push(key(), num(9), {}, in(50ms));  // full: times out
    if (!is(st, Errc::timeout)) return fail(4, "timeout", st);
    parked_soon.notify();
    if (auto st2 = p->push(key(), num(2)); !st2) return fail(5, "push", st2);  // parks
    return 0;
  });
  ASSERT_TRUE(parked_soon.wait());
  ASSERT_TRUE(eventually([&] { return port->stats().parked_pushers == 1; }));
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 3; ++i) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(num(m->payload), static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  const bloccs::PortStats s = port->stats();
  EXPECT_EQ(s.pushes_waited, 2u);  // the one that timed out parked too
  EXPECT_EQ(s.timed_out, 1u);
  EXPECT_GE(s.longest_wait, 100ms);
  EXPECT_GE(s.waited, 100ms + 40ms);
  EXPECT_LT(s.waited, 20s);
  EXPECT_EQ(s.no_producer_while_waiting, 0u);
  // Time in queue counts from the push call, the park included.
  EXPECT_GE(s.time_in_queue.max, 100ms * 0.96);
}

// The owner dies while a pusher is parked: the pusher gets no_producer, and the dead port's
// control segment, which stays until a gc or a take-over, counts it.
TEST(PusherWaits, APushParkedWhenTheOwnerDiesIsCountedAsSentAway) {
  TestNamespace ns;
  Signal ready;
  const pid_t owner = spawn([&] {
    auto port = Port::start(key(), {.buffer = 1, .ns = ns.name()});
    if (!port) return fail(2, "start", port);
    ready.notify();
    pause();
    return 0;
  });
  ASSERT_TRUE(ready.wait());
  auto p = Pusher::open(ns.name());
  ASSERT_TRUE(p) << describe(p);
  ASSERT_TRUE(p->push(key(), num(0)));
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    kill(owner, SIGKILL);
  });
  const bloccs::Status st = p->push(key(), num(1));
  killer.join();
  EXPECT_TRUE(is(st, Errc::no_producer)) << describe(st);
  (void)wait_child(owner);
  auto reg = bloccs::registry::Registry::open(ns.name(), {.create = false});
  ASSERT_TRUE(reg) << describe(reg);
  auto entry = reg->lookup(key());
  ASSERT_TRUE(entry) << describe(entry);
  auto seg = bloccs::shm::Segment::open(ns.name(), entry->segment, bloccs::shm::SegmentKind::port,
                                        {.read_only = true});
  ASSERT_TRUE(seg) << describe(seg);
  bloccs::PortStats s;
  port::pusher_waits(*reinterpret_cast<const port::PortControl*>(seg->base()), s);
  EXPECT_EQ(s.pushes_waited, 1u);
  EXPECT_EQ(s.no_producer_while_waiting, 1u);
  EXPECT_GE(s.longest_wait, 150ms);
}

namespace {
// The sample shift the port's consumer asks of its pushers (OwnerLine), read as a tool would.
std::uint32_t sample_shift_of(const TestNamespace& ns) {
  auto reg = bloccs::registry::Registry::open(ns.name(), {.create = false});
  if (!reg) return 99;
  auto entry = reg->lookup(key());
  if (!entry) return 99;
  auto seg = bloccs::shm::Segment::open(ns.name(), entry->segment, bloccs::shm::SegmentKind::port,
                                        {.read_only = true});
  if (!seg) return 99;
  return reinterpret_cast<const port::PortControl*>(seg->base())
      ->owner.sample_shift.load(std::memory_order_relaxed);
}
}  // namespace

// Past 50,000 messages a second the consumer asks pushers to stamp 1 in 16; each stamped one
// counts for 16, so the count stays an estimate of what was received. Quiet again, every push
// is stamped.
TEST(TimeInQueue, ABusyPortSamplesOneInSixteenAndCountsEachForSixteenThenAQuietOneStampsAll) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 1024, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const std::uint64_t kBusy = scaled(400'000);
  Signal busy_done, go_quiet;
  const pid_t kid = spawn([&] {
    auto s = bloccs::Sender::open(key(), ns.name());
    if (!s) return fail(2, "open", s);
    for (std::uint64_t i = 0; i < kBusy; ++i)
      if (auto st = s->push(num(i)); !st) return fail(3, "push", st);
    busy_done.notify();
    if (!go_quiet.wait()) return fail(4, "go");
    for (int i = 0; i < 40; ++i) {  // 200 a second: quiet
      if (auto st = s->push(num(i)); !st) return fail(5, "push", st);
      std::this_thread::sleep_for(5ms);
    }
    return 0;
  });
  std::uint64_t received = 0;
  auto take = [&](std::uint64_t until) {
    while (received < until) {
      auto n = port->receive_batch([](const bloccs::MessageView&) {}, 256, in(10s));
      ASSERT_TRUE(n) << describe(n);
      received += *n;
    }
  };
  take(kBusy);
  ASSERT_TRUE(busy_done.wait());
  EXPECT_EQ(sample_shift_of(ns), port::kSampleShift);
  const std::uint64_t busy_count = port->stats().time_in_queue.count;
  std::printf("busy: %llu received, time in queue counted %llu\n",
              static_cast<unsigned long long>(received), static_cast<unsigned long long>(busy_count));
  EXPECT_GT(busy_count, kBusy * 8 / 10);
  EXPECT_LT(busy_count, kBusy * 12 / 10);
  go_quiet.notify();
  take(kBusy + 40);
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  // 200 ms at 200 a second: the consumer's next window finds the port quiet.
  EXPECT_EQ(sample_shift_of(ns), 0u);
}
