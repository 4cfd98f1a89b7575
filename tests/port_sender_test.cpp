// SPDX-License-Identifier: Apache-2.0
// bloccs::Sender, a pusher bound to one key, across real processes: streams from several
// processes in order with their meta (pushes, batches and loans mixed), a port that starts after
// its Sender, an owner that stops, dies or is replaced under a Sender that keeps pushing, the
// owner line's `retired` flag refusing pushes before the key is unregistered, and a forked child
// pushing through its parent's Sender.
#include <signal.h>

#include <gtest/gtest.h>

#include "port_test_support.hpp"

using namespace bloccs;
using namespace bloccs::test;

namespace {

std::string message(int id, int seq) {
  return std::to_string(id) + ":" + std::to_string(seq) + ":" + std::string(seq % 200, 'x');
}

// Sends `count` messages of sender `id` through one Sender: by push, by push_batch of 4 and by
// loan in turn, each with meta {attempt = seq % 7}.
int stream(const std::string& ns, int id, int count) {
  auto s = Sender::open(key(), ns);
  if (!s) return fail(2, "open", s);
  for (int seq = 0; seq < count;) {
    Meta meta;
    meta.attempt = static_cast<std::uint32_t>(seq % 7);
    switch (seq / 4 % 3) {
      case 0: {
        const std::string m = message(id, seq);
        if (auto st = s->push(bloccs::bytes(m), meta); !st) return fail(3, "push", st);
        ++seq;
        break;
      }
      case 1: {  // four at once; meta is the batch's, so each message of it has the first's
        std::vector<std::string> ms;
        for (int i = 0; i < 4 && seq + i < count; ++i) ms.push_back(message(id, seq + i));
        std::vector<std::span<const std::byte>> spans;
        for (const auto& m : ms) spans.push_back(bloccs::bytes(m));
        if (auto st = s->push_batch(spans, meta); !st) return fail(4, "push_batch", st);
        seq += static_cast<int>(ms.size());
        break;
      }
      default: {
        const std::string m = message(id, seq);
        auto loan = s->loan(512, meta);
        if (!loan) return fail(5, "loan", loan);
        std::memcpy(loan->bytes().data(), m.data(), m.size());
        if (auto st = loan->commit(m.size()); !st) return fail(6, "commit", st);
        ++seq;
      }
    }
  }
  return 0;
}

// The attempt the stream above gives message `seq` (a batch's messages carry its first's).
std::uint32_t attempt_of(int seq) {
  const int first = seq / 4 % 3 == 1 ? seq - seq % 4 : seq;
  return static_cast<std::uint32_t>(first % 7);
}

}  // namespace

TEST(Sender, StreamsFromSeveralProcessesArriveInOrderWithTheirMetaExactlyOnce) {
  for (bool single : {false, true}) {
    SCOPED_TRACE(single ? "single pusher" : "multi-pusher");
    TestNamespace ns;
    auto port = Port::start(
        key(), {.buffer = 32, .max_payload = 512, .single_pusher = single, .ns = ns.name()});
    ASSERT_TRUE(port) << describe(port);
    const int senders = single ? 1 : 3;
    const int kEach = static_cast<int>(scaled(30'000));
    std::vector<pid_t> kids;
    for (int id = 0; id < senders; ++id)
      kids.push_back(spawn([&, id] { return stream(ns.name(), id, kEach); }));
    std::vector<int> next(static_cast<std::size_t>(senders), 0);
    int total = 0;
    std::string failure;
    while (total < senders * kEach && failure.empty()) {
      auto n = port->receive_batch(
          [&](const MessageView& m) {
            const std::string s = str(m.payload);
            const int id = s[0] - '0';
            const int seq = next[static_cast<std::size_t>(id)]++;
            if (s != message(id, seq))
              failure = "sender " + std::to_string(id) + " message " + std::to_string(seq) +
                        " is '" + s.substr(0, 20) + "'";
            else if (m.meta.attempt() != attempt_of(seq))
              failure =
                  "the meta of sender " + std::to_string(id) + " message " + std::to_string(seq);
            ++total;
          },
          256, in(30s));
      ASSERT_TRUE(n) << describe(n);
    }
    EXPECT_EQ(failure, "");
    for (pid_t k : kids) EXPECT_EQ(exit_code(wait_child(k)), 0);
    auto extra = port->try_receive();
    ASSERT_TRUE(extra);
    EXPECT_FALSE(*extra) << "a message arrived twice or from nowhere";
    port->stop();
    EXPECT_SHM_CLEAN(ns);
  }
}

TEST(Sender, OpenedBeforeItsPortRunsPushesNoProducerUntilItStartsThenReachesIt) {
  TestNamespace ns;
  auto s = Sender::open(key(), ns.name());
  ASSERT_TRUE(s) << describe(s);
  EXPECT_TRUE(is(s->push(num(1)), Errc::no_producer));
  Signal started;
  const pid_t owner = spawn([&] {
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    started.notify();
    auto m = p->receive(in(30s));
    if (!m) return fail(3, "receive", m);
    return num(m->payload) == 7 ? 0 : fail(4, "wrong message");
  });
  ASSERT_TRUE(started.wait());
  EXPECT_TRUE(s->push(num(7))) << "the Sender did not find the port once it ran";
  EXPECT_EQ(exit_code(wait_child(owner)), 0);
  EXPECT_SHM_CLEAN(ns);
}

TEST(Sender, AMalformedKeyIsRefusedAtOpen) {
  TestNamespace ns;
  auto s = Sender::open({"net", "", "in"}, ns.name());
  EXPECT_TRUE(is(s, Errc::bad_name)) << describe(s);
}

// One Sender, three owners in turn: one that stops its port, one that is SIGKILLed, and one that
// takes the key over from it. Each push lands with the owner of the moment or says no_producer.
TEST(Sender, FollowsItsKeyAcrossAStopADeathAndATakeOver) {
  TestNamespace ns;
  Reaper reap;
  auto s = Sender::open(key(), ns.name());
  ASSERT_TRUE(s) << describe(s);

  {  // an owner in this process, stopped
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    ASSERT_TRUE(p) << describe(p);
    ASSERT_TRUE(s->push(num(1)));
    auto m = p->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(num(m->payload), 1u);
    p->stop();
    EXPECT_TRUE(is(s->push(num(2)), Errc::no_producer)) << "a push into a stopped port said ok";
  }

  Signal ready;
  const pid_t doomed = reap(spawn_owner_until_killed(ns, ready));
  ASSERT_TRUE(ready.wait());
  ASSERT_TRUE(s->push(num(3))) << "the Sender did not follow its key to the next owner";
  kill(doomed, SIGKILL);
  EXPECT_NE(exit_code(wait_child(doomed)), 0);
  EXPECT_TRUE(is(s->push(num(4)), Errc::no_producer)) << "a push to a dead owner said ok";

  // The next owner takes the key over and carries message 3 over from the dead one's ring.
  auto heir = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(heir) << describe(heir);
  EXPECT_EQ(heir->takeover().salvaged, 1u);
  ASSERT_TRUE(s->push(num(5)));
  std::vector<std::uint64_t> got;
  while (got.size() < 2) {
    auto m = heir->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    got.push_back(num(m->payload));
  }
  EXPECT_EQ(got, (std::vector<std::uint64_t>{3, 5}));
  heir->stop();
  EXPECT_SHM_CLEAN(ns);
}

// The owner stops at the instant after it set `retired` and before it unregistered the key: the
// registry still names the port and its owner runs, yet a push is refused, from the owner line
// alone. (Without the flag the push would land in a ring about to be removed.)
TEST(Sender, APortThatBeganToStopRefusesPushesWhileItsKeyIsStillRegistered) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  const pid_t owner = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "port.retired:stop", 1);
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    auto m = p->receive(in(30s));  // the first message, then stop
    if (!m) return fail(3, "receive", m);
    return 0;  // the Port's destructor stops it, and stops at the hook
  }));
  ASSERT_TRUE(ready.wait());
  auto s = Sender::open(key(), ns.name());
  ASSERT_TRUE(s) << describe(s);
  ASSERT_TRUE(s->push(num(1)));
  ASSERT_TRUE(wait_stopped(owner)) << "the owner never reached port.retired";
  EXPECT_FALSE(segment_with(ns, "port.").empty()) << "the port is gone already";
  EXPECT_TRUE(is(s->push(num(2)), Errc::no_producer)) << "a retiring port took a push";
  // A Pusher, which looks the key up in the registry (still there), is refused as well.
  auto pusher = Pusher::open(ns.name());
  ASSERT_TRUE(pusher) << describe(pusher);
  EXPECT_TRUE(is(pusher->push(key(), num(3)), Errc::no_producer));
  kill(owner, SIGCONT);
  EXPECT_EQ(exit_code(wait_child(owner)), 0);
  EXPECT_SHM_CLEAN(ns);
}

TEST(Sender, AForkedChildPushesThroughItsParentsSenderOnItsOwnSlot) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  auto s = Sender::open(key(), ns.name());
  ASSERT_TRUE(s) << describe(s);
  ASSERT_TRUE(s->push(num(1)));
  const pid_t child = spawn([&] {
    if (auto st = s->push(num(2)); !st) return fail(2, "push from the child", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(child)), 0);
  ASSERT_TRUE(s->push(num(3)));  // the parent's attachment is untouched by the child's
  std::vector<std::uint64_t> got;
  while (got.size() < 3) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    got.push_back(num(m->payload));
  }
  EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 2, 3}));
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}
