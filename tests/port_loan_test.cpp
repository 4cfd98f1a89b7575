// SPDX-License-Identifier: Apache-2.0
// Loans through the port API, across real processes: meta and order beside plain pushes, aborted
// and dropped loans never received, parking and deadlines, unbounded ports' links, a 4 MiB
// frame end to end, and a take-over that carries loaned and padded records over.
#include <signal.h>

#include <gtest/gtest.h>

#include "port_test_support.hpp"

using namespace bloccs;
using namespace bloccs::test;

namespace {

// Message `seq` of pusher `id`: "<id>:<seq>:" and then filler up to `size` bytes.
std::string message(int id, int seq, std::size_t size) {
  std::string s = std::to_string(id) + ":" + std::to_string(seq) + ":";
  for (std::size_t i = s.size(); i < size; ++i) s += static_cast<char>('a' + (seq + i) % 26);
  s.resize(std::max(size, s.size()));
  return s;
}
std::size_t size_of(int seq) {
  return 20 + static_cast<std::size_t>(seq * 37 % 900);
}

// Pushes `count` messages to key(), by loan (loaned 1000 bytes, committed to the message's
// size, meta {attempt seq % 5, by=loan}) or by push.
int send(const std::string& ns, int id, int count, bool by_loan) {
  auto p = Pusher::open(ns);
  if (!p) return fail(2, "open", p);
  for (int seq = 0; seq < count; ++seq) {
    const std::string m = message(id, seq, size_of(seq));
    Meta meta;
    meta.attempt = static_cast<std::uint32_t>(seq % 5);
    meta.set("by", by_loan ? "loan" : "push");
    if (!by_loan) {
      if (auto st = p->push(key(), bloccs::bytes(m), meta); !st) return fail(3, "push", st);
      continue;
    }
    auto loan = p->loan(key(), 1000, meta);
    if (!loan) return fail(4, "loan", loan);
    if (loan->bytes().size() != 1000) return fail(5, "loan size");
    std::memcpy(loan->bytes().data(), m.data(), m.size());
    if (auto st = loan->commit(m.size()); !st) return fail(6, "commit", st);
  }
  return 0;
}

}  // namespace

TEST(PortLoan, LoansArriveWithTheirMetaInOrderBesidePushesFromOtherProcesses) {
  for (bool single : {false, true}) {
    SCOPED_TRACE(single ? "single pusher" : "multi-pusher");
    TestNamespace ns;
    auto port = Port::start(
        key(), {.buffer = 16, .max_payload = 1000, .single_pusher = single, .ns = ns.name()});
    ASSERT_TRUE(port) << describe(port);
    const int kEach = static_cast<int>(scaled(20'000));
    const int senders = single ? 1 : 3;
    std::vector<pid_t> kids;
    for (int id = 0; id < senders; ++id)
      kids.push_back(spawn([&, id] { return send(ns.name(), id, kEach, id != 1); }));
    std::vector<int> next(static_cast<std::size_t>(senders), 0);
    int total = 0;
    std::string failure;
    while (total < senders * kEach && failure.empty()) {
      auto n = port->receive_batch(
          [&](const MessageView& m) {
            const std::string s = str(m.payload);
            const int id = s[0] - '0';
            const int seq = next[static_cast<std::size_t>(id)]++;
            if (s != message(id, seq, size_of(seq)))
              failure = "pusher " + std::to_string(id) + " message " + std::to_string(seq);
            else if (m.meta.attempt() != static_cast<std::uint32_t>(seq % 5) ||
                     m.meta.get("by") != (id != 1 ? "loan" : "push"))
              failure = "meta of pusher " + std::to_string(id) + " message " + std::to_string(seq);
            ++total;
          },
          256, in(30s));
      ASSERT_TRUE(n) << describe(n);
    }
    EXPECT_EQ(failure, "");
    for (pid_t k : kids) EXPECT_EQ(exit_code(wait_child(k)), 0);
    EXPECT_EQ(port->stats().depth, 0u);
  }
}

TEST(PortLoan, AbortedAndDroppedLoansAreNeverReceived) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    {
      auto dropped = p->loan(key(), 100);
      if (!dropped) return fail(3, "loan", dropped);
      std::memset(dropped->bytes().data(), 'd', 100);
    }  // destroyed open: aborted
    auto aborted = p->loan(key(), 100);
    if (!aborted) return fail(4, "loan", aborted);
    std::memset(aborted->bytes().data(), 'a', 100);
    aborted->abort();
    if (!is(aborted->commit(1), Errc::bad_loan)) return fail(5, "commit after abort");
    if (auto st = p->push(key(), bloccs::bytes("pushed")); !st) return fail(6, "push", st);
    auto kept = p->loan(key(), 100);
    if (!kept) return fail(7, "loan", kept);
    std::memcpy(kept->bytes().data(), "kept", 4);
    if (auto st = kept->commit(4); !st) return fail(8, "commit", st);
    return 0;
  });
  ASSERT_EQ(exit_code(wait_child(kid)), 0);
  std::vector<std::string> got;
  while (got.size() < 2) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    got.push_back(str(m->payload));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"pushed", "kept"}));
  auto rest = port->try_receive();
  ASSERT_TRUE(rest);
  EXPECT_FALSE(rest->has_value()) << "an aborted loan arrived: " << str((*rest)->payload);
  EXPECT_EQ(port->stats().depth, 0u);
}

TEST(PortLoan, ASecondLoanOrAPushToTheLoanedKeyIsBadLoanOtherKeysWork) {
  TestNamespace ns;
  auto in = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  auto other = Port::start(key("other"), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(in && other);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto loan = p->loan(key(), 10);
    if (!loan) return fail(3, "loan", loan);
    if (!is(p->loan(key(), 10), Errc::bad_loan)) return fail(4, "second loan");
    if (!is(p->push(key(), bloccs::bytes("x")), Errc::bad_loan)) return fail(5, "push to it");
    if (auto st = p->push(key("other"), bloccs::bytes("elsewhere")); !st)
      return fail(6, "push elsewhere", st);
    if (!is(loan->commit(11), Errc::bad_loan)) return fail(7, "commit past the loan");
    std::memcpy(loan->bytes().data(), "loaned", 6);
    if (auto st = loan->commit(6); !st) return fail(8, "commit", st);
    if (!is(p->loan(key(), 1u << 20), Errc::payload_too_large)) return fail(9, "oversized");
    if (!is(p->loan(key("nobody"), 10), Errc::no_producer)) return fail(10, "no owner");
    return 0;
  });
  ASSERT_EQ(exit_code(wait_child(kid)), 0);
  auto a = in->receive(bloccs::test::in(5s));
  auto b = other->receive(bloccs::test::in(5s));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(str(a->payload), "loaned");
  EXPECT_EQ(str(b->payload), "elsewhere");
}

TEST(PortLoan, ALoanOnAFullPortParksHonoursItsDeadlineAndLearnsTheOwnerDied) {
  TestNamespace ns;
  Reaper reap;
  auto port = Port::start(key(), {.buffer = 2, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Signal parked;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < 2; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "fill", st);
    const auto t0 = Clock::now();
    if (!is(p->loan(key(), 8, {}, in(100ms)), Errc::timeout)) return fail(4, "deadline");
    if (Clock::now() - t0 < 90ms) return fail(5, "timed out early");
    parked.notify();
    auto loan = p->loan(key(), 8, {}, in(20s));  // parks until the consumer takes one
    if (!loan) return fail(6, "loan", loan);
    std::memcpy(loan->bytes().data(), "third", 5);
    return loan->commit(5) ? 0 : 7;
  });
  ASSERT_TRUE(parked.wait());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(port->receive(in(5s)));
  auto third = port->receive(in(20s));
  ASSERT_TRUE(third) << describe(third);
  EXPECT_EQ(str(third->payload), "third");
  EXPECT_EQ(exit_code(wait_child(kid)), 0);

  // An owner that dies while a loan is parked on its full port: no_producer within 200 ms.
  Signal ready;
  TestNamespace ns2;
  const pid_t owner = reap(spawn_owner_until_killed(ns2, ready));
  ASSERT_TRUE(ready.wait());
  Signal waiting;
  const pid_t loaner = spawn([&] {
    auto p = Pusher::open(ns2.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < 8; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "fill", st);
    waiting.notify();
    const auto t0 = Clock::now();
    auto loan = p->loan(key(), 8, {}, in(20s));
    if (!is(loan, Errc::no_producer)) return fail(4, "loan on a dead owner's port", loan);
    return Clock::now() - t0 < 10s ? 0 : 5;
  });
  ASSERT_TRUE(waiting.wait());
  std::this_thread::sleep_for(50ms);
  kill(owner, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(loaner)), 0);
}

// No consumer reads while the loans go in: the unbounded port grows by links, and loans land
// on each (a full link moves the loan to the next, as a push).
TEST(PortLoan, LoansCrossTheLinksOfAnUnboundedPort) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = std::nullopt, .max_payload = 1000, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const int kCount = 3000;  // ~2.7 MB: past a 1 MiB link
  const pid_t kid = spawn([&] { return send(ns.name(), 0, kCount, true); });
  ASSERT_EQ(exit_code(wait_child(kid)), 0);
  EXPECT_GT(port->stats().links, 1u);
  for (int seq = 0; seq < kCount; ++seq) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    ASSERT_EQ(str(m->payload), message(0, seq, size_of(seq))) << seq;
  }
  EXPECT_EQ(port->stats().depth, 0u);
}

// A 4 MiB frame written once into the ring by the pusher and read once in place.
TEST(PortLoan, AFourMebibyteLoanArrivesWholeAndInPlace) {
  TestNamespace ns;
  constexpr std::size_t kFrame = 4u << 20;
  auto port = Port::start(key(), {.buffer = 4, .max_payload = kFrame, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  auto byte_at = [](int frame, std::size_t i) {
    return static_cast<std::byte>((i * 2654435761u >> 13) + static_cast<std::size_t>(frame));
  };
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int f = 0; f < 6; ++f) {
      auto loan = p->loan(key(), kFrame);
      if (!loan) return fail(3, "loan", loan);
      std::byte* out = loan->bytes().data();
      for (std::size_t i = 0; i < kFrame; ++i) out[i] = byte_at(f, i);
      if (auto st = loan->commit(); !st) return fail(4, "commit", st);
    }
    return 0;
  });
  for (int f = 0; f < 6; ++f) {
    std::size_t bad = kFrame;
    auto n = port->receive_batch(
        [&](const MessageView& m) {
          ASSERT_EQ(m.payload.size(), kFrame);
          for (std::size_t i = 0; i < kFrame && bad == kFrame; ++i)
            if (m.payload[i] != byte_at(f, i)) bad = i;
        },
        1, in(30s));
    ASSERT_TRUE(n) << describe(n);
    ASSERT_EQ(bad, kFrame) << "frame " << f << " differs at byte " << bad;
  }
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
}

// The owner is SIGKILLed with loaned records (committed shorter than loaned), pads and an
// aborted loan in its ring: the next owner carries over exactly the committed messages.
TEST(PortLoan, ATakeOverCarriesOverLoanedAndPaddedRecordsAndNoAbortedOne) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, sent;
  const pid_t owner = reap(spawn([&] {
    auto p = Port::start(
        key(), {.buffer = 16, .max_payload = 1000, .typical_payload = 1000, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    // Take the first 40 and hand their space back, so that the records left lie past the end
    // of the data area, after a pad.
    ready.notify();
    for (int i = 0; i < 40; ++i)
      if (!p->receive(in(10s))) return fail(3, "receive");
    sent.wait();
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  const pid_t pusher = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int seq = 0; seq < 54; ++seq) {
      const std::string m = message(0, seq, size_of(seq));
      auto loan = p->loan(key(), 1000);
      if (!loan) return fail(3, "loan", loan);
      std::memcpy(loan->bytes().data(), m.data(), m.size());
      if (seq % 7 == 3) {
        auto extra = std::move(*loan);
        extra.abort();  // an aborted loan between the committed ones
        loan = p->loan(key(), 1000);
        if (!loan) return fail(4, "loan", loan);
        std::memcpy(loan->bytes().data(), m.data(), m.size());
      }
      if (auto st = loan->commit(m.size()); !st) return fail(5, "commit", st);
    }
    return 0;
  });
  ASSERT_EQ(exit_code(wait_child(pusher)), 0);
  sent.notify();
  std::this_thread::sleep_for(50ms);
  kill(owner, SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(wait_child(owner)));

  auto port = Port::start(
      key(), {.buffer = 16, .max_payload = 1000, .typical_payload = 1000, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  EXPECT_TRUE(port->takeover().taken_over);
  EXPECT_EQ(port->takeover().salvaged, 14u) << port->takeover().note;
  EXPECT_EQ(port->takeover().lost(), 0u) << port->takeover().note;
  for (int seq = 40; seq < 54; ++seq) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    ASSERT_EQ(str(m->payload), message(0, seq, size_of(seq))) << seq;
  }
  auto rest = port->try_receive();
  ASSERT_TRUE(rest);
  EXPECT_FALSE(rest->has_value());
}
