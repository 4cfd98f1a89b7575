// SPDX-License-Identifier: Apache-2.0
// Pushers that die mid-push, SIGKILLed at chosen steps and at random instants: the consumer
// never hangs, skips (and counts) exactly the dead claims, and every live message arrives.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>

#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "lockfree/orphan_ring.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::lockfree;
using namespace bloccs::test;

namespace {

constexpr auto kAbandonAfter = std::chrono::microseconds(2'000);
Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}
std::span<const std::byte> bytes(const std::string& s) {
  return std::as_bytes(std::span{s.data(), s.size()});
}
std::string text(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A second mapping of a ring through which a test plays a pusher step by step, so that it can
// die exactly where it wants: after setting its intent, after the claim, mid-payload.
struct RawPusher {
  RingPusher pusher;  // holds a real slot, so the consumer sees a real (soon dead) claimant
  bloccs::shm::Segment seg;

  static RawPusher open(const TestNamespace& ns) {
    auto p = RingPusher::open(ns.name(), "r");
    auto s = bloccs::shm::Segment::open(ns.name(), "r", bloccs::shm::SegmentKind::ring);
    if (!p || !s) _exit(90);
    return RawPusher{std::move(p).value(), std::move(s).value()};
  }
  RingControl* c() { return reinterpret_cast<RingControl*>(seg.base()); }
  PusherSlot& slot() {
    return reinterpret_cast<PusherSlot*>(seg.base() + c()->config.slots_offset)[pusher.slot()];
  }
  std::byte* data() { return seg.base() + c()->config.data_offset; }
  std::uint64_t mask() { return c()->config.capacity - 1; }

  std::uint64_t announce() {  // step 1: intent = the tail we are about to claim
    const std::uint64_t t = c()->producer.tail.load() & kPosMask;
    slot().intent.store(kIntentActive | t);
    return t;
  }
  // Steps 1 and 2: the CAS, and (for a record that would run past the end) the pad before it,
  // as RingPusher does. Returns where the record starts.
  std::uint64_t claim(std::size_t len, bool die_after_pad = false) {
    for (;;) {
      std::uint64_t observed = c()->producer.tail.load();
      const Cursor t = Cursor::unpack(observed);
      const std::uint64_t pad = pad_before(t.pos & mask(), record_size(len), mask() + 1);
      slot().intent.store(kIntentActive | t.pos);
      if (!c()->producer.tail.compare_exchange_strong(observed,
                                                      t.advanced(pad + record_size(len)).pack()))
        continue;
      if (pad == 0) return t.pos;
      const std::uint64_t rec = (t.pos + pad) & kPosMask;
      slot().intent.store(kIntentActive | rec);
      header_word(data(), t.pos & mask())
          .store(make_typed_header(kTypePad, static_cast<std::uint32_t>(pad - kRecordHeader),
                                   pusher.slot()));
      if (die_after_pad) die();
      return rec;
    }
  }
  void write_header(std::uint64_t pos, std::size_t len, bool committed) {
    header_word(data(), pos & mask())
        .store(make_record_header(static_cast<std::uint32_t>(len), pusher.slot(), committed));
  }
  void write_payload(std::uint64_t pos, const std::string& s, std::size_t upto) {
    std::memcpy(data() + (pos & mask()) + kRecordHeader, s.data(), upto);  // never wraps
  }
  [[noreturn]] static void die() {
    raise(SIGKILL);
    _exit(91);
  }
};

struct KillFixture {
  explicit KillFixture(std::uint64_t start_position = 0, std::uint32_t start_count = 0)
      : ring(Ring::create(ns.name(), "r",
                          {.kind = RingKind::mpsc,
                           .buffer = 8,
                           .max_payload = 64,
                           .capacity = 1024,
                           .abandon_after = kAbandonAfter,
                           .start_position = start_position,
                           .start_count = start_count})) {}
  TestNamespace ns;
  bloccs::Result<Ring> ring;
  friend const TestNamespace& ns_of(const KillFixture& f) { return f.ns; }

  // Runs `body` in a child that must end by SIGKILL.
  void child_dies(const std::function<void(RawPusher&)>& body) {
    const pid_t pid = spawn([&] {
      RawPusher raw = RawPusher::open(ns);
      body(raw);
      return 92;
    });
    const int status = wait_child(pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  }
  void push(const std::string& s) {
    auto p = RingPusher::open(ns.name(), "r");
    ASSERT_TRUE(p) << p.error().message;
    ASSERT_TRUE(p->push(bytes(s)));
  }
  std::vector<std::string> drain_expecting(std::size_t count) {
    std::vector<std::string> got;
    while (got.size() < count) {
      auto n =
          ring->drain([&](auto m) { got.push_back(text(m)); }, 100, in(std::chrono::seconds(5)));
      if (!n) {
        ADD_FAILURE() << n.error().message << " after " << got.size() << " messages";
        break;
      }
    }
    return got;
  }
  // The count bound survived: exactly `buffer` messages fit again, the next one does not.
  void expect_full_capacity_back() {
    auto p = RingPusher::open(ns.name(), "r");
    ASSERT_TRUE(p);
    for (std::uint32_t i = 0; i < ring->config().buffer; ++i)
      ASSERT_TRUE(p->push(bytes("fill"))) << i;
    EXPECT_EQ(p->push(bytes("one too many"), in(std::chrono::milliseconds(5))).code(),
              Errc::timeout);
    EXPECT_EQ(drain_expecting(ring->config().buffer).size(), ring->config().buffer);
  }
};

}  // namespace

TEST(RingKill, DeadAfterClaimBeforeWritingIsSkippedAndCounted) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  f.push("before");
  f.child_dies([](RawPusher& raw) {
    raw.claim(20);
    RawPusher::die();
  });
  f.push("after");
  EXPECT_EQ(f.drain_expecting(2), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 1u);
  EXPECT_EQ(f.ring->stats().depth, 0u);
  f.expect_full_capacity_back();
}

TEST(RingKill, DeadMidPayloadIsSkippedUsingItsHeader) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  f.child_dies([](RawPusher& raw) {
    const std::string msg(40, 'x');
    const std::uint64_t pos = raw.claim(msg.size());
    raw.write_header(pos, msg.size(), false);
    raw.write_payload(pos, msg, 17);
    RawPusher::die();
  });
  f.push("after");
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 1u);
  f.expect_full_capacity_back();
}

// The claim runs past the end of the data area, so it starts with a pad: killed after writing
// the pad (its intent moved to the record at offset 0) or before it, the claim is skipped whole.
TEST(RingKill, DeadAroundThePadOfAClaimAtTheEndIsSkippedWhole) {
  for (bool after_pad : {false, true}) {
    SCOPED_TRACE(after_pad ? "killed after the pad" : "killed before the pad");
    KillFixture f(1024 - 24);  // 24 bytes before the end of the 1024-byte data area
    ASSERT_TRUE(f.ring);
    f.push("before");  // 16 bytes: 8 left before the end
    f.child_dies([&](RawPusher& raw) {
      if (after_pad) raw.claim(30, true);
      std::uint64_t observed = raw.c()->producer.tail.load();
      const Cursor t = Cursor::unpack(observed);
      raw.slot().intent.store(kIntentActive | t.pos);
      raw.c()->producer.tail.compare_exchange_strong(observed, t.advanced(8 + 40).pack());
      RawPusher::die();  // claimed pad and record, wrote nothing
    });
    f.push("after");
    EXPECT_EQ(f.drain_expecting(2), (std::vector<std::string>{"before", "after"}));
    EXPECT_EQ(f.ring->stats().abandoned, 1u);
    EXPECT_EQ(f.ring->stats().depth, 0u);
    f.expect_full_capacity_back();
  }
}

// A pusher judges slot 0 free and stops right before it takes it (slot.take). Meanwhile another
// takes slot 0, claims and dies holding the claim; its death frees the lock, which the first one
// then takes. It must see the open claim and move on to another slot: keeping slot 0 would make
// the dead claim look alive to the consumer for ever, and wedge the ring behind it. (Found by
// RingLoans.APusherKilledHoldingALoanNeverWedgesTheRing under load.)
TEST(RingKill, AnAttacherThatSlowlyTakesASlotWhoseNextHolderDiedMidClaimMovesOn) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  Reaper reap;
  Signal attached;
  const pid_t slow = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "slot.take:stop", 1);
    auto p = RingPusher::open(f.ns.name(), "r");
    if (!p) return 2;
    attached.notify();
    return p->push(bytes("slow"), in(std::chrono::seconds(10))) ? 0 : 3;
  }));
  ASSERT_TRUE(wait_stopped(slow)) << "the slow attacher never reached slot.take";
  f.child_dies([](RawPusher& raw) {
    if (raw.pusher.slot() != 0) _exit(93);  // the slot the slow one judged free
    const std::string msg(40, 'x');
    const std::uint64_t pos = raw.claim(msg.size());
    raw.write_header(pos, msg.size(), false);
    RawPusher::die();
  });
  // Let it go on; it stops at the hook again before each slot it judges free after slot 0.
  kill(slow, SIGCONT);
  const auto limit = Clock::now() + std::chrono::seconds(10);
  while (!attached.wait(std::chrono::milliseconds(10)) && Clock::now() < limit)
    if (wait_stopped(slow, std::chrono::milliseconds(10))) kill(slow, SIGCONT);
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"slow"}));
  EXPECT_TRUE(exited_ok(wait_child(slow)));
  EXPECT_EQ(f.ring->stats().abandoned, 1u);
  f.expect_full_capacity_back();
}

// A live pusher whose claim starts with a pad (the ring's end is near) is preempted between
// the pad's two stores: its intent already moved on to the record after the pad, the pad's
// header not yet written. However long that lasts (past abandon_after), the consumer must wait
// for it, not call the ring damaged. (Found by RingLoans.APusherKilledHoldingALoanNever-
// WedgesTheRing under load; this test failed with "has no claimant, live or dead" before.)
TEST(RingKill, APusherStoppedBetweenItsPadsTwoStoresIsWaitedFor) {
  KillFixture f(1024 - 16);  // 16 bytes before the end: a 40-byte message needs a pad
  ASSERT_TRUE(f.ring);
  Reaper reap;
  const std::string msg(40, 'p');
  const pid_t slow = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "mpsc.pad:stop", 1);
    auto p = RingPusher::open(f.ns.name(), "r");
    if (!p) return 2;
    return p->push(bytes(msg)) ? 0 : 3;
  }));
  ASSERT_TRUE(wait_stopped(slow)) << "the pusher never reached mpsc.pad";
  // Many times abandon_after: the consumer looks at the open claim and finds its claimant.
  auto n = f.ring->drain([](auto) {}, 100, in(std::chrono::milliseconds(100)));
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, Errc::timeout) << n.error().message;
  kill(slow, SIGCONT);
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{msg}));
  EXPECT_TRUE(exited_ok(wait_child(slow)));
  EXPECT_EQ(f.ring->stats().abandoned, 0u);
  f.expect_full_capacity_back();
}

// The same pusher, stopped between its pad's two stores, while a dead consumer's ring is taken
// over: the reader must wait for its claim and read the message once it goes on, never skip
// the claim as a dead one's (the pusher's push returns ok: skipped, it would be lost). The
// reader passes the pad's zeros as a dead consumer's and waits at the record, whose start the
// live intent names.
TEST(RingKill, ATakeOverWaitsForAPusherStoppedBetweenItsPadsTwoStores) {
  TestNamespace ns;
  constexpr bloccs::shm::ProcessId kDead{.pid = 0x3fffffff, .start_time = 12345};
  ASSERT_TRUE(Ring::create_for(ns.name(), "r",
                               {.kind = RingKind::mpsc,
                                .buffer = 8,
                                .max_payload = 64,
                                .capacity = 1024,
                                .abandon_after = kAbandonAfter,
                                .start_position = 1024 - 16},
                               kDead));
  Reaper reap;
  const std::string msg(40, 'p');
  const pid_t slow = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "mpsc.pad:stop", 1);
    auto p = RingPusher::open(ns.name(), "r");
    if (!p) return 2;
    return p->push(bytes(msg)) ? 0 : 3;
  }));
  ASSERT_TRUE(wait_stopped(slow)) << "the pusher never reached mpsc.pad";
  auto orphan = OrphanRing::open(ns.name(), "r", kDead);
  ASSERT_TRUE(orphan) << orphan.error().message;
  ASSERT_TRUE(orphan->seal(in(std::chrono::seconds(1))));
  std::thread resume([&] {  // goes on while the reader waits for it
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kill(slow, SIGCONT);
  });
  std::vector<std::string> got;
  const OrphanRead r = orphan->read(
      [&](std::span<const std::byte> m) { got.push_back(text(m)); }, in(std::chrono::seconds(10)));
  resume.join();
  EXPECT_TRUE(r.status) << r.status.error().message;
  EXPECT_EQ(got, (std::vector<std::string>{msg}));
  EXPECT_EQ(r.abandoned, 0u);
  EXPECT_EQ(r.unread, 0u);
  EXPECT_TRUE(exited_ok(wait_child(slow)));
}

TEST(RingKill, SeveralAdjacentDeadClaimsAreSkippedTogetherAndCountedExactly) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  f.child_dies([](RawPusher& raw) {
    raw.claim(8);
    RawPusher::die();
  });
  f.child_dies([](RawPusher& raw) {
    raw.claim(30);
    RawPusher::die();
  });
  f.child_dies([](RawPusher& raw) {
    raw.announce();
    RawPusher::die();
  });  // died before its CAS
  f.child_dies([](RawPusher& raw) {
    raw.claim(0);
    RawPusher::die();
  });
  f.push("after");
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 3u);
  f.expect_full_capacity_back();
}

TEST(RingKill, DeadClaimsAcrossBothCursorWrapsAreSkippedExactly) {
  // The first claim straddles 2^40 bytes; the message count passes 2^24 on the way.
  KillFixture f((std::uint64_t{1} << 40) - 16, (1u << 24) - 2);
  ASSERT_TRUE(f.ring) << f.ring.error().message;
  f.child_dies([](RawPusher& raw) {
    raw.claim(40);
    RawPusher::die();
  });
  f.child_dies([](RawPusher& raw) {
    const std::string msg(30, 'x');
    const std::uint64_t pos = raw.claim(msg.size());
    raw.write_header(pos, msg.size(), false);
    raw.write_payload(pos, msg, 10);
    RawPusher::die();
  });
  f.child_dies([](RawPusher& raw) {
    raw.claim(8);
    RawPusher::die();
  });
  f.push("after");
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 3u);
  f.expect_full_capacity_back();
}

TEST(RingKill, DeadBeforeClaimLosesNothing) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  f.child_dies([](RawPusher& raw) {
    raw.announce();
    RawPusher::die();
  });
  f.push("claims the same position");
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"claims the same position"}));
  EXPECT_EQ(f.ring->stats().abandoned, 0u);
  f.expect_full_capacity_back();
}

// A pusher that claims (and says so on `claimed`), then takes 150 ms (75 x abandon_after) to
// write and commit.
pid_t spawn_slow_pusher(KillFixture& f, const Signal& claimed) {
  return spawn([&] {
    RawPusher raw = RawPusher::open(f.ns);
    const std::string msg = "slow but alive";
    const std::uint64_t pos = raw.claim(msg.size());
    claimed.notify();
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    raw.write_header(pos, msg.size(), false);
    raw.write_payload(pos, msg, msg.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    raw.write_header(pos, msg.size(), true);
    raw.slot().intent.store(0);
    return 0;
  });
}

// Item 3 of the reliability review: a pusher killed between its intent and its CAS on an idle
// ring (intent == tail == head) claimed nothing, so its slot is free again. Before, such a slot
// was never freed, and after max_pushers such deaths every attach was pusher_limit for ever.
TEST(RingKill, PushersKilledBeforeTheirClaimOnAnIdleRingLeaveNoSlotTaken) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = RingKind::mpsc,
                            .buffer = 8,
                            .max_payload = 64,
                            .capacity = 1024,
                            .max_pushers = 1,
                            .abandon_after = kAbandonAfter});
  ASSERT_TRUE(ring) << ring.error().message;
  for (int i = 0; i < 4; ++i) {
    const pid_t pid = spawn([&]() -> int {
      RawPusher raw = RawPusher::open(ns);  // _exit(90) if no slot is free
      raw.announce();
      RawPusher::die();
    });
    const int status = wait_child(pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "attach " << i << " found no free slot (status " << status << ")";
  }
  auto p = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->push(bytes("alive")));
  std::vector<std::string> got;
  ASSERT_TRUE(ring->drain([&](auto m) { got.push_back(text(m)); }, 8, in(std::chrono::seconds(5))));
  EXPECT_EQ(got, std::vector<std::string>{"alive"});
  EXPECT_EQ(ring->stats().abandoned, 0u) << "an intent no claim followed is no message";
}

// Item 2: a process that exec'd is a new program; a claim its old program left open (a pusher
// thread ended by another thread's execve, say) is a dead pusher's, although the pid and the
// start time live on. Before, the consumer waited on it for ever.
TEST(RingKill, AClaimLeftByAProcessThatExecdIsSkipped) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  Signal claimed;
  const pid_t pid = spawn([&] {
    RawPusher raw = RawPusher::open(ns_of(f));
    const std::uint64_t pos = raw.claim(8);
    raw.write_header(pos, 8, false);
    claimed.notify();
    execl("/bin/sleep", "sleep", "30", nullptr);
    return 93;
  });
  Reaper reap;
  reap(pid);
  ASSERT_TRUE(claimed.wait());
  f.push("after");
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 1u);
  EXPECT_TRUE(running(pid)) << "the test proves nothing if the process itself ended";
}

// Item 2: a pusher in a pid namespace of its own is pid 1 there, a number that is alive (init)
// in ours but with another start time. Its claim is a live pusher's, waited for, however slow.
TEST(RingKill, ALivePusherInAnotherPidNamespaceIsNeverTakenForDead) {
  if (geteuid() != 0) GTEST_SKIP() << "a pid namespace needs root";
  KillFixture f;
  ASSERT_TRUE(f.ring);
  Signal claimed, go;
  const pid_t outer = spawn([&]() -> int {
    if (unshare(CLONE_NEWPID) != 0) return 77;
    const pid_t inner = fork();
    if (inner == 0) {
      RawPusher raw = RawPusher::open(ns_of(f));
      const std::string msg = "slow but alive";
      const std::uint64_t pos = raw.claim(msg.size());
      raw.write_header(pos, msg.size(), false);
      claimed.notify();
      if (!go.wait()) _exit(2);
      raw.write_payload(pos, msg, msg.size());
      raw.write_header(pos, msg.size(), true);
      raw.slot().intent.store(0);
      _exit(0);
    }
    int status = 0;
    waitpid(inner, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
  });
  Reaper reap;
  reap(outer);
  ASSERT_TRUE(claimed.wait());
  f.push("after");
  std::vector<std::string> early;
  auto n = f.ring->drain([&](auto m) { early.push_back(text(m)); }, 8,
                         in(std::chrono::milliseconds(300)));
  EXPECT_TRUE(early.empty()) << "the live claim was skipped: " << early.front();
  go.notify();
  const int status = wait_child(outer);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << "unshare refused";
  ASSERT_TRUE(exited_ok(status));
  EXPECT_EQ(f.drain_expecting(2), (std::vector<std::string>{"slow but alive", "after"}));
  EXPECT_EQ(f.ring->stats().abandoned, 0u);
  (void)n;
}

TEST(RingKill, SlowLivePusherIsNeverMistakenForADeadOne) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  Signal claimed;
  const pid_t slow = spawn_slow_pusher(f, claimed);
  ASSERT_TRUE(claimed.wait());  // "behind it" is claimed after the slow one, however slow
  f.push("behind it");
  EXPECT_EQ(f.drain_expecting(2), (std::vector<std::string>{"slow but alive", "behind it"}));
  EXPECT_EQ(f.ring->stats().abandoned, 0u);
  EXPECT_TRUE(exited_ok(wait_child(slow)));
}

TEST(RingKill, UnreadableProcDoesNotMakeALivePusherLookDead) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  Signal claimed;
  const pid_t slow = spawn_slow_pusher(f, claimed);
  ASSERT_TRUE(claimed.wait());  // "behind it" is claimed after the slow one, however slow
  f.push("behind it");
  // The consumer can open no more files: /proc/<pid>/stat cannot be read while it drains.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int highest = 0;
  for (int fd = 0; fd < 1024; ++fd)
    if (fcntl(fd, F_GETFD) != -1) highest = fd;
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(highest + 1);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  std::vector<int> gaps;  // fill every free descriptor below the limit
  for (int fd; (fd = open("/dev/null", O_RDONLY)) >= 0;) gaps.push_back(fd);
  ASSERT_EQ(errno, EMFILE);
  const auto got = f.drain_expecting(2);
  for (int fd : gaps) close(fd);
  setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(got, (std::vector<std::string>{"slow but alive", "behind it"}));
  EXPECT_EQ(f.ring->stats().abandoned, 0u);
  EXPECT_TRUE(exited_ok(wait_child(slow)));
}

// The stress: 200 pushers SIGKILLed at random instants while a live one streams.
TEST(RingKill, RandomSigkillsNeverWedgeTheRingNorTouchLiveMessages) {
  TestNamespace ns;
  constexpr std::size_t kMax = 2048;  // big payloads: kills often land mid-copy
  constexpr std::uint32_t kVictims = 200;
  auto ring = Ring::create(ns.name(), "r",
                           {.kind = RingKind::mpsc,
                            .buffer = 64,
                            .max_payload = kMax,
                            .max_pushers = 16,
                            .abandon_after = kAbandonAfter});
  ASSERT_TRUE(ring);
  const std::uint64_t live_count = scaled(300'000);
  auto stream = [&](std::uint32_t id, std::uint64_t count) {
    auto p = RingPusher::open(ns.name(), "r");
    if (!p) return 2;
    std::vector<std::byte> msg;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      fill_message(msg, id, seq, message_size(id, seq, kMax));
      if (!p->push(msg)) return 3;
    }
    return 0;
  };
  const pid_t live = spawn([&] { return stream(0, live_count); });
  const pid_t killer = spawn([&] {
    std::mt19937 rng(static_cast<unsigned>(getpid()));
    for (std::uint32_t v = 1; v <= kVictims; ++v) {
      const pid_t victim = spawn([&] { return stream(v, ~std::uint64_t{0}); });
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
      kill(victim, SIGKILL);
      waitpid(victim, nullptr, 0);
    }
    return 0;
  });

  StreamChecker checker(kVictims + 1, kMax);
  std::string failure;
  bool killer_done = false;
  const auto give_up = Clock::now() + std::chrono::seconds(120);
  while (failure.empty() && Clock::now() < give_up &&
         (checker.next(0) < live_count || !killer_done)) {
    auto n = ring->drain(
        [&](auto m) {
          if (failure.empty()) failure = checker.check(m);
        },
        256, in(std::chrono::milliseconds(100)));
    if (!n && n.code() != Errc::timeout) failure = n.error().message;
    if (!killer_done && waitpid(killer, nullptr, WNOHANG) == killer) killer_done = true;
  }
  EXPECT_EQ(failure, "");
  EXPECT_TRUE(killer_done) << "the killer did not finish: a victim or the ring hung";
  EXPECT_EQ(checker.next(0), live_count) << "the live pusher's messages did not all arrive";
  EXPECT_TRUE(exited_ok(wait_child(live)));
  const auto stats = ring->stats();
  EXPECT_LE(stats.abandoned, kVictims);
  std::cout << "victims' messages delivered: " << checker.total() - live_count
            << ", dead claims skipped: " << stats.abandoned << "\n";
  // The ring is whole: it drains to empty and takes a new pusher.
  auto p = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_TRUE(p->push(bytes("still works")));
  std::string last;
  ASSERT_TRUE(ring->drain([&](auto m) { last = text(m); }, 1000, in(std::chrono::seconds(5))));
  EXPECT_EQ(last, "still works");
  if (!killer_done) wait_child(killer);
}

TEST(RingKill, SpscPusherKilledAtRandomIsReplacedAndNothingTearsOrRepeats) {
  TestNamespace ns;
  constexpr std::size_t kMax = 1024;
  constexpr std::uint32_t kVictims = 100;
  auto ring =
      Ring::create(ns.name(), "r", {.kind = RingKind::spsc, .buffer = 64, .max_payload = kMax});
  ASSERT_TRUE(ring);
  const pid_t killer = spawn([&] {
    std::mt19937 rng(static_cast<unsigned>(getpid()));
    for (std::uint32_t v = 0; v <= kVictims; ++v) {
      const bool last = v == kVictims;  // the last one lives and finishes its stream
      const pid_t pusher = spawn([&] {
        RingPusher p = [&] {
          for (;;) {  // the previous pusher may not look dead yet: retry until its slot frees
            auto r = RingPusher::open(ns.name(), "r");
            if (r) return std::move(r).value();
            if (r.code() != Errc::pusher_limit) _exit(2);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }();
        std::vector<std::byte> msg;
        for (std::uint64_t seq = 0; seq < (last ? 10'000 : ~std::uint64_t{0}); ++seq) {
          fill_message(msg, v, seq, message_size(v, seq, kMax));
          if (!p.push(msg)) return 3;
        }
        return 0;
      });
      if (last) return exited_ok(wait_child(pusher)) ? 0 : 4;
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
      kill(pusher, SIGKILL);
      waitpid(pusher, nullptr, 0);
    }
    return 0;
  });
  StreamChecker checker(kVictims + 1, kMax);
  std::string failure;
  const auto give_up = Clock::now() + std::chrono::seconds(120);
  while (failure.empty() && checker.next(kVictims) < 10'000 && Clock::now() < give_up) {
    auto n = ring->drain(
        [&](auto m) {
          if (failure.empty()) failure = checker.check(m);
        },
        256, in(std::chrono::milliseconds(100)));
    if (!n && n.code() != Errc::timeout) failure = n.error().message;
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(checker.next(kVictims), 10'000u);
  EXPECT_TRUE(exited_ok(wait_child(killer)));
}

TEST(RingKill, ConsumerFindsAMessageWhosePusherDiedBeforeWakingIt) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  const pid_t kid = spawn([&]() -> int {
    RawPusher raw = RawPusher::open(f.ns);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the consumer is parked now
    const std::string msg = "committed, never announced";
    const std::uint64_t pos = raw.claim(msg.size());
    raw.write_header(pos, msg.size(), false);
    raw.write_payload(pos, msg, msg.size());
    raw.write_header(pos, msg.size(), true);
    RawPusher::die();  // before it could wake the consumer
  });
  std::vector<std::byte> out(64);
  const auto t0 = Clock::now();
  auto n = f.ring->pop(out, in(std::chrono::seconds(10)));
  const auto waited = Clock::now() - t0;
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(text({out.data(), *n}), "committed, never announced");
  EXPECT_LT(waited, std::chrono::seconds(2)) << "the consumer slept past the message";
  wait_child(kid);
}

TEST(RingKill, PusherKilledWhileParkedCostsOneWakeNotOneForEveryPop) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  auto* control = reinterpret_cast<RingControl*>(f.ring->segment().base());
  for (std::uint32_t i = 0; i < f.ring->config().buffer; ++i) f.push("fill");
  const pid_t kid = spawn([&] {
    auto p = RingPusher::open(f.ns.name(), "r");
    return p && p->push(bytes("parks for ever")) ? 0 : 2;
  });
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (control->space.line.armed.load() == 0 && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(control->space.line.armed.load(), 1u) << "the pusher never parked";
  kill(kid, SIGKILL);
  wait_child(kid);
  EXPECT_GE(f.drain_expecting(1).size(), 1u);  // this drain wakes (nobody) and disarms
  EXPECT_EQ(control->space.line.armed.load(), 0u) << "every later pop would make a system call";
}

TEST(RingKill, AnInheritedPusherRefusesToPushInAForkedChild) {
  KillFixture f;
  ASSERT_TRUE(f.ring);
  auto parent = RingPusher::open(f.ns.name(), "r");
  ASSERT_TRUE(parent);
  const pid_t kid = spawn([&] {
    auto r = parent->push(bytes("from the child"));
    return !r && r.code() == Errc::wrong_process ? 0 : 2;
  });
  EXPECT_TRUE(exited_ok(wait_child(kid)));
  ASSERT_TRUE(parent->push(bytes("from the parent")));  // the parent's slot is untouched
  EXPECT_EQ(f.drain_expecting(1), (std::vector<std::string>{"from the parent"}));
}
