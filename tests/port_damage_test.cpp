// SPDX-License-Identifier: Apache-2.0
// A peer with write access to a segment can make a port unusable, never crash, hang or spin
// another process (SPEC.md, "What a crash keeps"): damage is caught, reported as damage to
// everyone who touches it, naming the segment, within a bounded time; a damaged port is
// restarted by stopping and starting it. Items 10, 11, 12, 15 and 16 of the reliability review.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "lockfree/chain.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "port/port_layout.hpp"
#include "port_test_support.hpp"

using bloccs::Errc;
using bloccs::MessageView;
using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

// Item 11: truncating a segment used to kill whoever touched its lost pages (SIGBUS). The fence
// (shm/fence.hpp) maps zeros there instead; the owner gets segment_invalid from its next call
// on that segment, keeps running, and restarts the port by stopping and starting it.
TEST(PortDamage, AnOwnerWhoseRingIsCutShortGetsAnErrorNotASigbusAndRestartsThePort) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, go;
  struct Report {
    std::atomic<int> code{0};  // what the receive after the truncation returned (Errc + 1)
    std::atomic<bool> named{false};
    std::atomic<bool> restarted{false};
  };
  Shared<Report> r;
  const pid_t owner = reap(spawn([&] {
    auto p = Port::start(key(), {.buffer = 64, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    if (!go.wait()) return fail(3, "no go");
    auto m = p->receive(in(2s));
    if (m) return fail(4, "a receive from a truncated ring succeeded");
    r->code = static_cast<int>(m.code()) + 1;
    r->named = contains(m.error().message, "cut short") && contains(m.error().message, ".in.");
    auto again = p->receive(in(100ms));  // and on every call, at once
    if (again || again.code() != m.code()) return fail(5, "the second receive", again);
    p->stop();  // how a damaged port is restarted
    auto fresh = Port::start(key(), {.buffer = 64, .ns = ns.name()});
    if (!fresh) return fail(6, "start again", fresh);
    if (auto st = bloccs::Pusher::open(ns.name())->push(key(), num(9)); !st)
      return fail(7, "push to the restarted port", st);
    auto got = fresh->receive(in(2s));
    r->restarted = got && num(got->payload) == 9;
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  const pid_t pusher = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    for (std::uint64_t i = 0; i < 3; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(2, "push", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(pusher)), 0);
  const std::string ring = segment_with(ns, ".in.in.");
  ASSERT_FALSE(ring.empty());
  ASSERT_EQ(truncate(("/dev/shm/" + ring).c_str(), 4096), 0);  // the data area and slots gone
  go.notify();
  EXPECT_EQ(exit_code(wait_child(owner)), 0) << "(1007 is a SIGBUS)";
  EXPECT_EQ(r->code.load(), static_cast<int>(Errc::segment_invalid) + 1);
  EXPECT_TRUE(r->named.load()) << "the error does not name the ring and what happened";
  EXPECT_TRUE(r->restarted.load());
  EXPECT_SHM_CLEAN(ns);
}

// Item 11: a pusher whose registry is cut short under it gets an error naming the registry, and
// keeps running.
TEST(PortDamage, APusherWhoseRegistryIsCutShortGetsAnErrorNotASigbus) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, pushed, go;
  const pid_t owner = reap(spawn_owner_until_killed(ns, ready));
  ASSERT_TRUE(ready.wait());
  const pid_t pusher = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), num(1)); !st) return fail(3, "push", st);
    pushed.notify();
    if (!go.wait()) return fail(4, "no go");
    // The port it is attached to is intact, and a push there reads no registry: it goes on.
    if (auto st = p->push(key(), num(2)); !st) return fail(5, "a push to the attached port", st);
    // A key it must look up is read from the cut registry: an error that names it.
    for (int i = 0; i < 3; ++i) {
      auto st = p->push(key("other"), num(3));
      if (st) return fail(6, "a lookup through a truncated registry succeeded");
      if (st.code() != Errc::segment_invalid || !contains(st.error().message, "registry"))
        return fail(7, "the push", st);
    }
    return 0;
  }));
  ASSERT_TRUE(pushed.wait());
  ASSERT_EQ(truncate(ns.path("registry").c_str(), 64), 0);
  go.notify();
  EXPECT_EQ(exit_code(wait_child(pusher)), 0) << "(1007 is a SIGBUS)";
  kill(owner, SIGKILL);
}

namespace {

namespace lf = bloccs::lockfree;

// The header word of the record at the ring's published head.
std::atomic_ref<std::uint64_t> head_record(std::byte* ring) {
  auto* c = reinterpret_cast<lf::RingControl*>(ring);
  const auto head = lf::Cursor::unpack(c->consumer.head.load());
  return lf::header_word(ring + c->config.data_offset, head.pos & (c->config.capacity - 1));
}

// An owner that, told to, receives once (within `limit`) and reports what it got.
struct ReceiveReport {
  std::atomic<int> code{-1};  // Errc + 1, or 0 for a message
  std::atomic<std::int64_t> took_ns{0};
  char message[512]{};
};

pid_t owner_that_receives_once(const TestNamespace& ns, bloccs::PortOptions o, const Signal& ready,
                               const Signal& go, ReceiveReport& r,
                               std::chrono::milliseconds limit) {
  return spawn([&ns, o, &ready, &go, &r, limit] {
    auto opts = o;
    opts.ns = ns.name();
    auto p = Port::start(key(), opts);
    if (!p) return fail(2, "start", p);
    ready.notify();
    if (!go.wait()) return fail(3, "no go");
    const auto t0 = Clock::now();
    auto m = p->receive(in(limit));
    r.took_ns = (Clock::now() - t0).count();
    // The message first, then the code that tells the test to read it (release: with it).
    if (!m) std::snprintf(r.message, sizeof r.message, "%s", m.error().message.c_str());
    r.code.store(m ? 0 : static_cast<int>(m.code()) + 1, std::memory_order_release);
    pause();  // keeps the port (and its damage) for the test
    return 0;
  });
}

// A fresh process's push: its result (Errc + 1, 0 for ok), how long it took, and its message.
struct PushReport {
  int code = -1;
  double ms = 0;
  std::string message;
};
PushReport fresh_push(const TestNamespace& ns, std::chrono::milliseconds deadline) {
  Shared<ReceiveReport> r;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const auto t0 = Clock::now();
    auto st = p->push(key(), num(99), {}, in(deadline));
    r->took_ns = (Clock::now() - t0).count();
    r->code = st ? 0 : static_cast<int>(st.code()) + 1;
    if (!st) std::snprintf(r->message, sizeof r->message, "%s", st.error().message.c_str());
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  return {r->code.load(), static_cast<double>(r->took_ns.load()) / 1e6, r->message};
}

}  // namespace

// Item 12: a peer overwrote the record at a ring's head. The owner's receive says so, naming the
// ring; and every pusher after it is refused at once with the same (before: a fresh pusher got
// timeout on an MPSC port the owner could no longer drain, or pusher_limit on an SPSC one).
class PortDamageOfTheHeadRecord : public ::testing::TestWithParam<bool> {};  // single pusher?

TEST_P(PortDamageOfTheHeadRecord, IsReportedByTheOwnerAndEveryPusherAtOnce) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, go;
  Shared<ReceiveReport> r;
  const pid_t owner = reap(
      owner_that_receives_once(ns, {.buffer = 4, .single_pusher = GetParam()}, ready, go, *r, 5s));
  ASSERT_TRUE(ready.wait());
  const pid_t filler = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    for (std::uint64_t i = 0; i < 4; ++i)  // full
      if (auto st = p->push(key(), num(i)); !st) return fail(2, "push", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(filler)), 0);
  {
    Scribble s(segment_with(ns, ".in.in."));
    ASSERT_TRUE(s.base());
    head_record(s.base()).store(lf::kCommitBit | (lf::kTypeData << 48) | (std::uint64_t{1} << 32) |
                                0x7fffffff);  // committed, with a length no ring holds
  }
  go.notify();
  ASSERT_TRUE(eventually([&] { return r->code.load() >= 0; }));
  EXPECT_EQ(r->code.load(), static_cast<int>(Errc::corrupt) + 1) << r->message;
  EXPECT_TRUE(contains(r->message, ".in.") && contains(r->message, "damaged")) << r->message;
  EXPECT_TRUE(contains(r->message, "stop and start")) << r->message;
  const PushReport push = fresh_push(ns, 5s);
  EXPECT_EQ(push.code, static_cast<int>(Errc::corrupt) + 1) << push.message;
  EXPECT_LT(push.ms, 500) << "refused only after " << push.ms << " ms";
  EXPECT_TRUE(contains(push.message, ".in.") && contains(push.message, "damaged")) << push.message;
  kill(owner, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Kinds, PortDamageOfTheHeadRecord, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "spsc" : "mpsc"; });

// Item 12: a zeroed or unpublished record at the head of a single-pusher port, with records
// behind it: receive used to wait for ever, and the pusher too once the ring filled, with no
// error anywhere. The owner now says so within a bounded time (abandon_after, 10 ms, and the
// check's period), and pushers are refused.
TEST(PortDamage, AnUnpublishedRecordAtTheHeadOfASinglePusherPortIsReportedWithinABoundedTime) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, go;
  Shared<ReceiveReport> r;
  const pid_t owner =
      reap(owner_that_receives_once(ns, {.buffer = 8, .single_pusher = true}, ready, go, *r, 5s));
  ASSERT_TRUE(ready.wait());
  const pid_t filler = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    for (std::uint64_t i = 0; i < 3; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(2, "push", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(filler)), 0);
  {
    Scribble s(segment_with(ns, ".in.in."));
    ASSERT_TRUE(s.base());
    head_record(s.base()).store(0);  // its pusher's tail is past it
  }
  go.notify();
  ASSERT_TRUE(eventually([&] { return r->code.load() >= 0; }, 10s));
  EXPECT_EQ(r->code.load(), static_cast<int>(Errc::corrupt) + 1) << r->message;
  EXPECT_LT(static_cast<double>(r->took_ns.load()) / 1e6, 1000.0);
  EXPECT_TRUE(contains(r->message, "not published")) << r->message;
  const PushReport push = fresh_push(ns, 2s);
  EXPECT_EQ(push.code, static_cast<int>(Errc::corrupt) + 1) << push.message;
  kill(owner, SIGKILL);
}

// Item 12: a zeroed ring or control header is damage, reported as such, naming the segment:
// fresh pushers used to get no_producer "(its owner just stopped it)" while the owner served.
TEST(PortDamage, AZeroedRingOrControlHeaderIsDamageNotAStoppedOwner) {
  for (const char* part : {".in.in.", "node.in"}) {
    TestNamespace ns;
    Reaper reap;
    Signal ready;
    const pid_t owner = reap(spawn_owner_until_killed(ns, ready));
    ASSERT_TRUE(ready.wait());
    std::string name = segment_with(ns, part);
    if (std::string(part) == "node.in")  // the control segment: the shortest of the family
      for (const auto& e : ns.leftovers())
        if (contains(e, "node.in") && e.size() < name.size()) name = e;
    {
      Scribble s(name);
      ASSERT_TRUE(s.base());
      std::memset(s.base(), 0, 64);
    }
    const PushReport push = fresh_push(ns, 200ms);
    EXPECT_EQ(push.code, static_cast<int>(Errc::segment_invalid) + 1)
        << part << ": " << push.message;
    EXPECT_TRUE(contains(push.message, name.substr(name.find('/') + 1))) << push.message;
    EXPECT_FALSE(contains(push.message, "just stopped")) << push.message;
    kill(owner, SIGKILL);
  }
}

// Item 12: a zeroed registry header. A push with a 200 ms deadline used to wait 3 s and return
// not_ready, and the next start silently replaced the registry (every live port in it became
// unreachable). Now: the error at once, naming the registry, and no start replaces it.
TEST(PortDamage, AZeroedRegistryIsReportedWithinThePushDeadlineAndNeverReplaced) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  const pid_t owner = reap(spawn_owner_until_killed(ns, ready));
  ASSERT_TRUE(ready.wait());
  struct stat before {};
  ASSERT_EQ(stat(ns.path("registry").c_str(), &before), 0);
  {
    Scribble s(segment_with(ns, "/registry"));
    ASSERT_TRUE(s.base());
    std::memset(s.base(), 0, 64);
  }
  const PushReport push = fresh_push(ns, 200ms);
  EXPECT_EQ(push.code, static_cast<int>(Errc::segment_invalid) + 1) << push.message;
  EXPECT_LT(push.ms, 200.0);
  EXPECT_TRUE(contains(push.message, "registry")) << push.message;
  auto other = Port::start(key("other"), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(is(other, Errc::segment_invalid)) << describe(other);
  struct stat after {};
  ASSERT_EQ(stat(ns.path("registry").c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "a start replaced the registry live ports are in";
  kill(owner, SIGKILL);
}

// Item 10: a `next` word naming its own link (or an earlier one) used to send the pusher round
// the chain for ever at 100 % CPU inside push, and the owner with it. Every walk that follows a
// value read from shared memory is bounded: such a chain is damage, reported at once.
TEST(PortDamage, ACycleInAnUnboundedPortsChainIsAnErrorNotASpin) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  constexpr std::uint32_t kPayload = 60 * 1024;  // 17 fill a link
  const pid_t owner = reap(spawn([&] {
    auto p = Port::start(key(), {.buffer = std::nullopt, .max_payload = kPayload, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  const std::string link0 = segment_with(ns, ".in.in.0.");
  ASSERT_FALSE(link0.empty());
  {
    Scribble s(link0);
    ASSERT_TRUE(s.base());
    auto* c = reinterpret_cast<lf::RingControl*>(s.base());
    // Link 0 names itself as its successor: "<base>.in.0.<tag>" -> LinkId{0, tag}.
    const std::string tag = link0.substr(link0.rfind('.') + 1);
    c->counters.next.store(
        lf::LinkId{0, static_cast<std::uint32_t>(std::stoul(tag, nullptr, 16))}.pack());
  }
  Shared<ReceiveReport> r;
  const pid_t pusher = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const std::vector<std::byte> big(kPayload);
    const auto t0 = Clock::now();
    for (int i = 0; i < 100; ++i) {
      auto st = p->push(key(), big);
      if (st) continue;
      r->took_ns = (Clock::now() - t0).count();
      r->code = static_cast<int>(st.code()) + 1;
      std::snprintf(r->message, sizeof r->message, "%s", st.error().message.c_str());
      return 0;
    }
    return fail(3, "100 pushes of 60 KiB into a chain whose first link loops all succeeded");
  }));
  EXPECT_EQ(exit_code(wait_child(pusher, 10s)), 0) << "the pusher spun (-1: killed after 10 s)";
  EXPECT_EQ(r->code.load(), static_cast<int>(Errc::corrupt) + 1) << r->message;
  EXPECT_TRUE(contains(r->message, "successor")) << r->message;
  kill(owner, SIGKILL);
}

// Found by the ring_records fuzz target (item 18): an MPSC ring whose tail a peer left at a
// position no claim can end at (not 8-aligned). The consumer took it for the end of a dead
// claim and moved its head there, reading headers at misaligned addresses from then on, and a
// pusher claimed space there. It is damage, reported as such by both.
TEST(PortDamage, AMisalignedTailIsDamageNotANewHead) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, go;
  Shared<ReceiveReport> r;
  const pid_t owner = reap(owner_that_receives_once(ns, {.buffer = 4}, ready, go, *r, 5s));
  ASSERT_TRUE(ready.wait());
  {
    Scribble s(segment_with(ns, ".in.in."));
    ASSERT_TRUE(s.base());
    auto* c = reinterpret_cast<lf::RingControl*>(s.base());
    const auto head = lf::Cursor::unpack(c->consumer.head.load());
    c->producer.tail.store(lf::Cursor{head.pos + 12, head.count + 1}.pack());  // nothing written
  }
  // A pusher that comes first refuses to claim there (it would write misaligned headers).
  const PushReport before = fresh_push(ns, 5s);
  EXPECT_EQ(before.code, static_cast<int>(Errc::corrupt) + 1) << before.message;
  EXPECT_TRUE(contains(before.message, "not 8-byte aligned")) << before.message;
  go.notify();
  ASSERT_TRUE(eventually([&] { return r->code.load() >= 0; }));
  EXPECT_EQ(r->code.load(), static_cast<int>(Errc::corrupt) + 1) << r->message;
  EXPECT_TRUE(contains(r->message, "not 8-byte aligned")) << r->message;
  kill(owner, SIGKILL);
}

// Found by the meta_decode fuzz target (item 18): a record whose meta names a key twice was
// received, though no push can send it (push refuses duplicate keys with bad_meta), so a node
// passing that meta on got bad_meta. It is refused and counted, as other malformed meta is,
// and the next message is received.
TEST(PortDamage, ARecordWhoseMetaNamesAKeyTwiceIsRefusedAndCounted) {
  TestNamespace ns;
  Reaper reap;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const std::string ring = segment_with(ns, ".in.in.");
  ASSERT_FALSE(ring.empty());
  const pid_t peer = reap(spawn([&] {
    // meta: attempt 0, 8 pair bytes, 2 pairs: "k" = "", "k" = ""; then a payload.
    const std::uint8_t twice[] = {0, 0, 0, 0, 8, 0, 2, 0, 1, 0, 0, 'k', 1, 0, 0, 'k', 'x'};
    auto raw = lf::RingPusher::open(ns.name(), ring.substr(ring.find('/') + 1));
    if (!raw) return fail(2, "open the ring", raw);
    if (auto st = raw->push(std::as_bytes(std::span(twice))); !st) return fail(3, "raw push", st);
    auto p = Pusher::open(ns.name());
    if (auto st = p->push(key(), num(7)); !st) return fail(4, "push", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(peer)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(num(m->payload), 7u) << "the record with a key twice was received";
  EXPECT_EQ(port->stats().refused, 1u);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}
