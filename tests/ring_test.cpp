// SPDX-License-Identifier: Apache-2.0
// Rings within one process: the contract of each call, bounds, errors, damaged records.
#include <array>

#include <gtest/gtest.h>

#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::lockfree;
using bloccs::test::TestNamespace;

namespace {

std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}
std::string text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

class RingKinds : public ::testing::TestWithParam<RingKind> {};

}  // namespace

INSTANTIATE_TEST_SUITE_P(Both, RingKinds, ::testing::Values(RingKind::spsc, RingKind::mpsc),
                         [](const auto& info) {
                           return info.param == RingKind::spsc ? "spsc" : "mpsc";
                         });

TEST_P(RingKinds, PushThenPopInOrderWithEverySizeAcrossWraps) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(), .buffer = 8, .max_payload = 100, .capacity = 256});
  ASSERT_TRUE(ring) << ring.error().message;
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher) << pusher.error().message;
  std::vector<std::byte> msg, out(100);
  for (std::uint64_t seq = 0; seq < 2000; ++seq) {  // 256-byte ring: wraps every few messages
    bloccs::test::fill_message(msg, 0, seq, seq % 101);
    ASSERT_TRUE(pusher->push(msg));
    auto n = ring->pop(out, in(std::chrono::seconds(1)));
    ASSERT_TRUE(n) << n.error().message;
    ASSERT_EQ(*n, msg.size());
    ASSERT_TRUE(std::equal(msg.begin(), msg.end(), out.begin())) << "seq " << seq;
  }
  EXPECT_EQ(ring->stats().depth, 0u);
}

TEST_P(RingKinds, BufferBoundsTheMessageCount) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .buffer = 3, .max_payload = 8});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pusher->push(bytes("m" + std::to_string(i))));
  auto full = pusher->push(bytes("x"), in(std::chrono::milliseconds(20)));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.code(), Errc::timeout);
  EXPECT_EQ(ring->stats().depth, 3u);
  std::vector<std::string> got;
  auto n = ring->try_drain([&](auto m) { got.push_back(text(m)); });
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(got, (std::vector<std::string>{"m0", "m1", "m2"}));  // the timed-out push left nothing
}

TEST_P(RingKinds, CapacityBoundsTheBytes) {
  TestNamespace ns;
  // 64 data bytes, of which the word after the last record stays free: two 24-byte records
  // (8 header + 16 payload) fit, a third does not, an empty one (8 bytes) does.
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(), .buffer = 100, .max_payload = 16, .capacity = 64});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher);
  const std::string sixteen(16, 'x');
  ASSERT_TRUE(pusher->push(bytes(sixteen)));
  ASSERT_TRUE(pusher->push(bytes(sixteen)));
  EXPECT_EQ(pusher->push(bytes(sixteen), in(std::chrono::milliseconds(10))).code(), Errc::timeout);
  EXPECT_EQ(pusher->push(bytes("1"), in(std::chrono::milliseconds(10))).code(), Errc::timeout);
  EXPECT_TRUE(pusher->push(bytes(""), in(std::chrono::seconds(1))));
  EXPECT_EQ(ring->stats().bytes_used, 56u);
  EXPECT_EQ(ring->stats().depth, 3u);
}

TEST_P(RingKinds, BatchDrainStopsAtMaxAndKeepsTheRest) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .buffer = 64, .max_payload = 8});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pusher->push(bytes(std::to_string(i))));
  std::string seen;
  EXPECT_EQ(ring->try_drain([&](auto m) { seen += text(m); }, 4).value(), 4u);
  EXPECT_EQ(ring->drain([&](auto m) { seen += text(m); }, 100, in(std::chrono::seconds(1))).value(),
            6u);
  EXPECT_EQ(seen, "0123456789");
  EXPECT_EQ(ring->try_drain([&](auto) {}).value(), 0u);
}

TEST_P(RingKinds, EmptyPopTimesOutAtItsDeadline) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam()});
  ASSERT_TRUE(ring);
  std::vector<std::byte> out(16);
  const auto start = Clock::now();
  auto r = ring->pop(out, start + std::chrono::milliseconds(50));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::timeout);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(50));
}

TEST_P(RingKinds, OversizedPayloadIsRefusedAndNothingElseIsLost) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .max_payload = 32});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher);
  ASSERT_TRUE(pusher->push(bytes("before")));
  auto big = pusher->push(bytes(std::string(33, 'x')));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.code(), Errc::payload_too_large);
  EXPECT_NE(big.error().message.find("max_payload of 32"), std::string::npos)
      << big.error().message;
  ASSERT_TRUE(pusher->push(bytes(std::string(32, 'y'))));
  std::vector<std::string> got;
  ASSERT_TRUE(ring->try_drain([&](auto m) { got.push_back(text(m)); }));
  EXPECT_EQ(got, (std::vector<std::string>{"before", std::string(32, 'y')}));
}

TEST_P(RingKinds, SmallBufferKeepsTheMessageQueued) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam()});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher && pusher->push(bytes("twelve bytes")));
  std::vector<std::byte> small(4), enough(12);
  EXPECT_EQ(ring->pop(small).code(), Errc::buffer_too_small);
  EXPECT_EQ(ring->pop(enough).value(), 12u);
}

TEST_P(RingKinds, DamagedRecordLengthIsAnErrorNotACrash) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .max_payload = 64});
  ASSERT_TRUE(ring);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher && pusher->push(bytes("fine")));
  // A stray writer scribbles a huge length over the record header.
  std::byte* data = ring->segment().base() + ring->config().data_offset;
  header_word(data, 0).store(make_record_header(1u << 30, 0, true));
  std::vector<std::byte> out(64);
  auto r = ring->pop(out, in(std::chrono::milliseconds(10)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
  EXPECT_NE(r.error().message.find("damaged record"), std::string::npos) << r.error().message;
  auto again = ring->try_drain([](auto) {});
  EXPECT_EQ(again.code(), Errc::corrupt);
}

TEST(Ring, DamagedConfigIsRefusedByPushers) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::mpsc});
  ASSERT_TRUE(ring);
  RingConfig* cfg = &reinterpret_cast<RingControl*>(ring->segment().base())->config;
  const auto saved = *cfg;
  cfg->capacity = 12345;
  auto p = RingPusher::open(ns.name(), "r");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.code(), Errc::segment_invalid);
  EXPECT_NE(p.error().message.find("capacity 12345"), std::string::npos) << p.error().message;
  *cfg = saved;
  cfg->data_offset += 64;
  EXPECT_EQ(RingPusher::open(ns.name(), "r").code(), Errc::segment_invalid);
  *cfg = saved;
  auto ok = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(ok);
  // Once open, a pusher works from its own validated copy: rewriting the shared config (here
  // a max_payload far beyond the ring) changes nothing for it or for the consumer.
  cfg->max_payload = 1u << 30;
  EXPECT_EQ(ok->push(bytes(std::string(5000, 'x'))).code(), Errc::payload_too_large);
  EXPECT_EQ(ring->config().max_payload, saved.max_payload);
  *cfg = saved;
}

TEST(Ring, SpscAdmitsOneLivePusher) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::spsc});
  ASSERT_TRUE(ring);
  {
    auto first = RingPusher::open(ns.name(), "r");
    ASSERT_TRUE(first);
    auto second = RingPusher::open(ns.name(), "r");
    ASSERT_FALSE(second);
    EXPECT_EQ(second.code(), Errc::pusher_limit);
    EXPECT_NE(second.error().message.find("single-pusher"), std::string::npos);
  }
  EXPECT_TRUE(RingPusher::open(ns.name(), "r"));  // the first detached: the slot is free again
}

// A discipline's own pusher opens only a ring of its discipline, and leaves no slot taken.
TEST(Ring, ADisciplinesPusherRefusesARingOfTheOtherOne) {
  TestNamespace ns;
  auto spsc = Ring::create(ns.name(), "s", {.kind = RingKind::spsc});
  auto mpsc = Ring::create(ns.name(), "m", {.kind = RingKind::mpsc});
  ASSERT_TRUE(spsc && mpsc);
  auto wrong_m = MpscPusher::open(ns.name(), "s");
  ASSERT_FALSE(wrong_m);
  EXPECT_EQ(wrong_m.code(), Errc::wrong_kind);
  EXPECT_NE(wrong_m.error().message.find("is single-pusher (SPSC), not multi-pusher"),
            std::string::npos)
      << wrong_m.error().message;
  auto wrong_s = SpscPusher::open(ns.name(), "m");
  ASSERT_FALSE(wrong_s);
  EXPECT_EQ(wrong_s.code(), Errc::wrong_kind);
  EXPECT_EQ(spsc->stats().attached_pushers, 0u);
  EXPECT_EQ(mpsc->stats().attached_pushers, 0u);
  auto right_s = SpscPusher::open(ns.name(), "s");
  auto right_m = MpscPusher::open(ns.name(), "m");
  ASSERT_TRUE(right_s && right_m);
  const std::string one = "one", two = "two";
  ASSERT_TRUE(right_s->push({}, std::as_bytes(std::span(one)), {}));
  ASSERT_TRUE(right_m->push({}, std::as_bytes(std::span(two)), {}));
  std::array<std::byte, 8> out;
  EXPECT_EQ(spsc->pop(out).value(), 3u);
  EXPECT_EQ(mpsc->pop(out).value(), 3u);
}

TEST(Ring, MpscSlotsAreLimited) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::mpsc, .max_pushers = 2});
  ASSERT_TRUE(ring);
  auto a = RingPusher::open(ns.name(), "r");
  auto b = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(a && b);
  auto c = RingPusher::open(ns.name(), "r");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::pusher_limit);
  EXPECT_EQ(ring->stats().attached_pushers, 2u);
}

TEST(Ring, OptionsOutOfRangeAreClearErrors) {
  TestNamespace ns;
  EXPECT_EQ(Ring::create(ns.name(), "r", {.buffer = 0}).code(), Errc::bad_config);
  EXPECT_EQ(Ring::create(ns.name(), "r", {.buffer = kMaxBuffer + 1}).code(), Errc::bad_config);
  // Two records of 1008 bytes: a record that does not fit before the end is padded to the start.
  auto cap = Ring::create(ns.name(), "r", {.max_payload = 1000, .capacity = 1024});
  ASSERT_FALSE(cap);
  EXPECT_NE(cap.error().message.find("power of two from 2048"), std::string::npos)
      << cap.error().message;
  EXPECT_EQ(Ring::create(ns.name(), "r", {.capacity = 3000}).code(), Errc::bad_config);
  EXPECT_EQ(Ring::create(ns.name(), "r", {.max_pushers = 0}).code(), Errc::bad_config);
  EXPECT_TRUE(ns.leftovers().empty());
}

// Item 15 of the reliability review: create used to accept rings nobody could open (a
// max_payload up to 1 GiB; the default capacity then went past the 64 MiB every opener checks
// for), so that every pusher was told the ring was "damaged". They are refused at create, and the
// largest one accepted opens.
TEST(Ring, ARingNobodyCouldOpenIsRefusedAtCreate) {
  TestNamespace ns;
  for (std::uint32_t max_payload : {70u << 20, 1u << 30, (64u << 20) - 8, (32u << 20) - 7}) {
    auto r = Ring::create(ns.name(), "r", {.buffer = 2, .max_payload = max_payload});
    ASSERT_FALSE(r) << max_payload;
    EXPECT_EQ(r.code(), Errc::bad_config);
    EXPECT_NE(r.error().message.find("64 MiB"), std::string::npos) << r.error().message;
  }
  const std::uint32_t largest = (32u << 20) - 8;  // two of its records fill 64 MiB
  auto ring = Ring::create(ns.name(), "big", {.buffer = 2, .max_payload = largest});
  ASSERT_TRUE(ring) << ring.error().message;
  auto pusher = RingPusher::open(ns.name(), "big");
  ASSERT_TRUE(pusher) << "the largest ring create accepts does not open: "
                      << pusher.error().message;
  EXPECT_TRUE(ns.leftovers().size() == 1);
}

// Positions wrap at 2^40 and counts at 2^24 in a long-lived ring: start both just short of it.
constexpr std::uint64_t kNearPositionWrap = (std::uint64_t{1} << 40) - 512;
constexpr std::uint32_t kNearCountWrap = (1u << 24) - 5;

TEST_P(RingKinds, CursorsWrapAroundTheirRanges) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(),
                            .buffer = 4,
                            .max_payload = 100,
                            .capacity = 256,
                            .start_position = kNearPositionWrap,
                            .start_count = kNearCountWrap});
  ASSERT_TRUE(ring) << ring.error().message;
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher);
  std::vector<std::byte> msg, out(100);
  std::uint64_t pushed = 0, popped = 0;
  while (popped < 500) {  // keeps the ring full: every bound is checked across the wrap
    bloccs::test::fill_message(msg, 0, pushed, pushed % 101);
    if (pusher->push(msg, in(std::chrono::milliseconds(0)))) {
      ++pushed;
      continue;
    }
    EXPECT_EQ(ring->stats().depth, pushed - popped);
    EXPECT_LE(ring->stats().depth, 4u);
    auto n = ring->pop(out, in(std::chrono::seconds(1)));
    ASSERT_TRUE(n) << n.error().message;
    bloccs::test::fill_message(msg, 0, popped, popped % 101);
    ASSERT_EQ(*n, msg.size());
    ASSERT_TRUE(std::equal(msg.begin(), msg.end(), out.begin())) << "message " << popped;
    ++popped;
  }
  EXPECT_GT(pushed, 300u);
}

TEST(Ring, StartOptionsAreChecked) {
  TestNamespace ns;
  EXPECT_EQ(Ring::create(ns.name(), "r", {.start_position = 3}).code(), Errc::bad_config);
  EXPECT_EQ(Ring::create(ns.name(), "r", {.start_position = std::uint64_t{1} << 40}).code(),
            Errc::bad_config);
  EXPECT_EQ(Ring::create(ns.name(), "r", {.start_count = 1u << 24}).code(), Errc::bad_config);
}
