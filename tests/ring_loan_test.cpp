// SPDX-License-Identifier: Apache-2.0
// Contiguous records and loans on a ring, across real processes: every payload is read in place,
// loans publish what was committed and nothing else, and a pusher killed holding a loan never
// wedges the ring nor hurts anyone else's messages.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::lockfree;
using namespace bloccs::test;

namespace {

Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

class RingLoans : public ::testing::TestWithParam<RingKind> {};

// True if `payload` lies whole inside the ring's data area: read in place, never a copy.
bool in_place(const Ring& ring, std::span<const std::byte> payload) {
  const std::byte* data = ring.segment().base() + ring.config().data_offset;
  return payload.data() >= data + kRecordHeader &&
         payload.data() + payload.size() <= data + ring.config().capacity;
}

// Pusher `id` sends `count` messages of the test stream (test_support.hpp), each through a loan
// of `max` bytes committed to the message's size (or by push() when `every_other_push` and seq
// is odd). Exit code 0 on success.
int loan_stream(const std::string& ns, std::uint32_t id, std::uint64_t count, std::size_t max,
                bool every_other_push = false) {
  auto pusher = RingPusher::open(ns, "r");
  if (!pusher) return 2;
  std::vector<std::byte> msg;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    fill_message(msg, id, seq, message_size(id, seq, max));
    if (every_other_push && seq % 2) {
      if (!pusher->push(msg)) return 3;
      continue;
    }
    auto loan = pusher->loan(static_cast<std::uint32_t>(max), {});
    if (!loan || loan->bytes.size() != max) return 4;
    std::memcpy(loan->bytes.data(), msg.data(), msg.size());
    if (!pusher->commit(*loan, static_cast<std::uint32_t>(msg.size()))) return 5;
  }
  return 0;
}

// Drains until `total` messages passed the checker; every payload must be in place.
std::string drain_checked(Ring& ring, StreamChecker& checker, std::uint64_t total) {
  std::string failure;
  while (checker.total() < total && failure.empty()) {
    auto n = ring.drain(
        [&](std::span<const std::byte> m) {
          if (!failure.empty()) return;
          if (!in_place(ring, m))
            failure = "a payload was not read in place";
          else
            failure = checker.check(m);
        },
        1024, in(std::chrono::seconds(30)));
    if (!n) return n.error().message + " after " + std::to_string(checker.total());
  }
  return failure;
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Both, RingLoans, ::testing::Values(RingKind::spsc, RingKind::mpsc),
                         [](const auto& info) {
                           return info.param == RingKind::spsc ? "spsc" : "mpsc";
                         });

// A ring of the least capacity for its max_payload pads nearly every lap: sizes from 0 to the
// maximum, pushed from another process, each arrives whole and in place.
TEST_P(RingLoans, EveryPayloadIsReadInPlaceAcrossThePadsOfManyLaps) {
  TestNamespace ns;
  constexpr std::size_t kMax = 200;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(),
                            .buffer = 64,
                            .max_payload = kMax,
                            .capacity = 512});  // the least for 200 bytes: 2 * 208 -> 512
  ASSERT_TRUE(ring) << ring.error().message;
  const std::uint64_t each = scaled(100'000);
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    std::vector<std::byte> msg;
    for (std::uint64_t seq = 0; seq < each; ++seq) {
      fill_message(msg, 0, seq, message_size(0, seq, kMax));
      if (!pusher->push(msg)) return 3;
    }
    return 0;
  });
  StreamChecker checker(1, kMax);
  EXPECT_EQ(drain_checked(*ring, checker, each), "");
  EXPECT_TRUE(exited_ok(wait_child(kid)));
  const RingStats s = ring->stats();
  EXPECT_EQ(s.depth, 0u);  // pads count as no message
  EXPECT_EQ(s.bytes_used, 0u);
}

// Loans committed shorter than they were claimed, with pushes from other processes between
// them: each pusher's messages arrive in its order, exactly as committed.
TEST_P(RingLoans, CommittedLoansArriveInOrderBesidePushesFromOtherProcesses) {
  TestNamespace ns;
  constexpr std::size_t kMax = 300;
  const bool mpsc = GetParam() == RingKind::mpsc;
  auto ring = Ring::create(
      ns.name(), "r", {.kind = GetParam(), .buffer = 32, .max_payload = kMax, .capacity = 4096});
  ASSERT_TRUE(ring) << ring.error().message;
  const std::uint64_t each = scaled(50'000);
  const std::uint32_t pushers = mpsc ? 3 : 1;
  std::vector<pid_t> kids;
  for (std::uint32_t id = 0; id < pushers; ++id)
    kids.push_back(spawn([&, id] { return loan_stream(ns.name(), id, each, kMax, id != 1); }));
  StreamChecker checker(pushers, kMax);
  EXPECT_EQ(drain_checked(*ring, checker, pushers * each), "");
  for (pid_t k : kids) EXPECT_TRUE(exited_ok(wait_child(k)));
  EXPECT_EQ(ring->stats().depth, 0u);
  EXPECT_EQ(ring->stats().bytes_used, 0u);
}

TEST_P(RingLoans, AnAbortedOrOverCommittedLoanPublishesNothingAndIsCounted) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .buffer = 8, .max_payload = 64});
  ASSERT_TRUE(ring) << ring.error().message;
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    auto first = pusher->loan(64, {});
    if (!first) return 3;
    std::memset(first->bytes.data(), 'x', 64);
    pusher->abort(*first);
    auto second = pusher->loan(10, {});
    if (!second) return 4;
    std::memcpy(second->bytes.data(), "kept", 4);
    if (pusher->commit(*second, 11).code() != Errc::bad_loan) return 5;  // more than loaned
    return pusher->commit(*second, 4) ? 0 : 6;
  });
  ASSERT_TRUE(exited_ok(wait_child(kid)));
  std::vector<std::string> got;
  auto n = ring->drain(
      [&](std::span<const std::byte> m) {
        got.emplace_back(reinterpret_cast<const char*>(m.data()), m.size());
      },
      8, in(std::chrono::seconds(5)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(got, std::vector<std::string>{"kept"});
  const RingStats s = ring->stats();
  EXPECT_EQ(s.aborted, 1u);
  EXPECT_EQ(s.depth, 0u);
  EXPECT_EQ(s.bytes_used, 0u);
}

TEST_P(RingLoans, ALoanOnAFullRingParksAndHonoursItsDeadline) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = GetParam(), .buffer = 2, .max_payload = 64});
  ASSERT_TRUE(ring) << ring.error().message;
  Signal full, freed;
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    const std::string m = "m";
    for (int i = 0; i < 2; ++i)
      if (!pusher->push(std::as_bytes(std::span{m.data(), m.size()}))) return 3;
    const auto t0 = Clock::now();
    auto late = pusher->loan(8, {.deadline = Clock::now() + std::chrono::milliseconds(100)});
    if (late || late.code() != Errc::timeout) return 4;
    if (Clock::now() - t0 < std::chrono::milliseconds(90)) return 5;
    full.notify();
    auto loan = pusher->loan(8, {.deadline = Clock::now() + std::chrono::seconds(20)});
    if (!loan) return 6;  // parked until the consumer took one
    std::memcpy(loan->bytes.data(), "third", 5);
    return pusher->commit(*loan, 5) ? 0 : 7;
  });
  ASSERT_TRUE(full.wait());
  std::vector<std::byte> out(64);
  ASSERT_TRUE(ring->pop(out, in(std::chrono::seconds(5))));
  ASSERT_TRUE(ring->pop(out, in(std::chrono::seconds(5))));
  auto n = ring->pop(out, in(std::chrono::seconds(20)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data()), *n), "third");
  EXPECT_TRUE(exited_ok(wait_child(kid)));
}

// The cursors start 16 bytes before the end of the data area: the first loan is padded to the
// start: the consumer reads it at offset 8 of the data area.
TEST_P(RingLoans, ALoanThatWouldRunPastTheEndStartsTheDataArea) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(),
                            .buffer = 8,
                            .max_payload = 64,
                            .capacity = 256,
                            .start_position = 256 - 16});
  ASSERT_TRUE(ring) << ring.error().message;
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher) << pusher.error().message;
  auto loan = pusher->loan(40, {});
  ASSERT_TRUE(loan) << loan.error().message;
  const std::byte* data = ring->segment().base() + ring->config().data_offset;
  std::memset(loan->bytes.data(), 'p', 40);
  ASSERT_TRUE(pusher->commit(*loan, 40));
  std::string got;
  auto n = ring->drain(
      [&](std::span<const std::byte> m) {
        EXPECT_EQ(m.data(), data + kRecordHeader);
        got.assign(reinterpret_cast<const char*>(m.data()), m.size());
      },
      8, in(std::chrono::seconds(5)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(got, std::string(40, 'p'));
  EXPECT_EQ(ring->stats().depth, 0u);
}

// One process streams messages; another takes loans and is SIGKILLed holding one, at a random
// instant of its writing, 200 times over (a new one each time). The ring never wedges, the live
// stream arrives whole and in order, and each killed loan holder's claim is skipped (MPSC) or never
// published (SPSC).
TEST_P(RingLoans, APusherKilledHoldingALoanNeverWedgesTheRing) {
  TestNamespace ns;
  Reaper reaper;
  const bool mpsc = GetParam() == RingKind::mpsc;
  constexpr std::size_t kMax = 100;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = GetParam(),
                            .buffer = 64,
                            .max_payload = kMax,
                            .capacity = 2048,
                            .abandon_after = std::chrono::microseconds(500)});
  ASSERT_TRUE(ring) << ring.error().message;
  const int kills = static_cast<int>(std::max<std::uint64_t>(20, scaled(200)));
  // SPSC has one pusher: the victims are the only pushers there, each killed while it streams.
  const std::uint64_t live_count = mpsc ? scaled(200'000) : 0;
  pid_t live = 0;
  if (mpsc) live = reaper(spawn([&] { return loan_stream(ns.name(), 1, live_count, kMax, true); }));

  std::mt19937_64 rng(12345);
  StreamChecker checker(2, kMax);
  std::uint64_t victim_msgs = 0;  // what the victims committed (pusher 0 of the checker)
  std::string failure;
  auto drain_some = [&](std::chrono::nanoseconds within) {
    auto n = ring->drain(
        [&](std::span<const std::byte> m) {
          if (!failure.empty()) return;
          if (!in_place(*ring, m)) {
            failure = "a payload was not read in place";
            return;
          }
          // Each victim restarts its stream at seq 0: check victims' messages by content only.
          if (m.empty() || m[0] == std::byte{0}) {
            ++victim_msgs;
            if (m.size() < 9) return;  // too short to name its seq
            std::uint64_t seq = 0;
            std::memcpy(&seq, m.data() + 1, 8);
            std::vector<std::byte> want;
            fill_message(want, 0, seq, message_size(0, seq, kMax));
            if (m.size() != want.size() || !std::equal(m.begin(), m.end(), want.begin()))
              failure = "a killed pusher's committed message is damaged";
          } else {
            failure = checker.check(m);
          }
        },
        1024, Clock::now() + within);
    if (!n && n.code() != Errc::timeout) failure = n.error().message;
  };
  for (int k = 0; k < kills && failure.empty(); ++k) {
    // Each victim commits a random number of loans, then takes one more, says so, and writes
    // into it slowly until it is killed at a random instant of that writing.
    const std::uint64_t committed = rng() % 50;
    Signal holding;
    const pid_t victim = spawn([&] {
      std::optional<RingPusher> pusher;
      for (;;) {  // SPSC: the last victim's slot is free once the kernel let go of its lock
        auto opened = RingPusher::open(ns.name(), "r");
        if (opened) {
          pusher.emplace(std::move(opened).value());
          break;
        }
        if (opened.code() != Errc::pusher_limit) {
          std::fprintf(stderr, "victim: %s\n", opened.error().message.c_str());
          return 2;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      std::vector<std::byte> msg;
      for (std::uint64_t seq = 0;; ++seq) {
        fill_message(msg, 0, seq, message_size(0, seq, kMax));
        auto loan = pusher->loan(static_cast<std::uint32_t>(kMax), {});
        if (!loan) {
          std::fprintf(stderr, "victim: %s\n", loan.error().message.c_str());
          return 3;
        }
        if (seq == committed) {
          holding.notify();
          volatile std::byte* out = loan->bytes.data();  // written for ever, until killed
          for (std::size_t i = 0;; i = (i + 1) % kMax) out[i] = std::byte{0xee};
        }
        std::memcpy(loan->bytes.data(), msg.data(), msg.size());
        if (!pusher->commit(*loan, static_cast<std::uint32_t>(msg.size()))) return 4;
      }
    });
    // Bounded: a victim that exits instead (an error) or never gets a loan fails the test here.
    const auto holding_by = Clock::now() + std::chrono::seconds(30);
    while (!holding.wait(std::chrono::milliseconds(0)) && failure.empty()) {
      int early = 0;
      if (waitpid(victim, &early, WNOHANG) == victim) {
        failure = "victim " + std::to_string(k) + " ended before it held a loan (status " +
                  std::to_string(early) + ")";
        break;
      }
      if (Clock::now() > holding_by) {
        const RingStats s = ring->stats();
        failure = "victim " + std::to_string(k) + " holds no loan after 30 s: depth " +
                  std::to_string(s.depth) + ", attached " + std::to_string(s.attached_pushers) +
                  ", abandoned " + std::to_string(s.abandoned);
        kill(victim, SIGKILL);
        wait_child(victim);
        break;
      }
      drain_some(std::chrono::milliseconds(1));
    }
    if (!failure.empty()) break;
    const auto until = Clock::now() + std::chrono::microseconds(rng() % 500);
    while (Clock::now() < until && failure.empty()) drain_some(std::chrono::microseconds(100));
    kill(victim, SIGKILL);
    const int status = wait_child(victim);
    ASSERT_TRUE(WIFSIGNALED(status)) << "victim " << k << " exited " << WEXITSTATUS(status);
  }
  const auto limit = Clock::now() + std::chrono::seconds(60);
  while (checker.total() < live_count && failure.empty() && Clock::now() < limit)
    drain_some(std::chrono::milliseconds(100));
  ASSERT_EQ(failure, "");
  if (mpsc) {
    EXPECT_EQ(checker.next(1), live_count) << "the live pusher's stream is incomplete";
    EXPECT_TRUE(exited_ok(wait_child(live)));
  }
  // Whatever the victims held is gone from the ring: the last one's claim is skipped within
  // abandon_after, the ring is then empty, and a new pusher's message goes straight through.
  const auto emptied_by = Clock::now() + std::chrono::seconds(5);
  while (ring->stats().depth != 0 && failure.empty() && Clock::now() < emptied_by)
    drain_some(std::chrono::milliseconds(1));
  EXPECT_EQ(ring->stats().depth, 0u);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher) << pusher.error().message;
  std::vector<std::byte> msg;
  fill_message(msg, 1, live_count, message_size(1, live_count, kMax));
  ASSERT_TRUE(pusher->push(msg));
  drain_some(std::chrono::seconds(5));
  EXPECT_EQ(failure, "");
  EXPECT_EQ(checker.next(1), live_count + 1);
  RecordProperty("victim_messages", static_cast<int>(victim_msgs));
  RecordProperty("abandoned", static_cast<int>(ring->stats().abandoned));
  // Every victim died holding a loan: MPSC skips and counts each one's claim; SPSC never
  // published any.
  EXPECT_EQ(ring->stats().abandoned, mpsc ? static_cast<std::uint64_t>(kills) : 0u);
}
