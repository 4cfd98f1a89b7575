// SPDX-License-Identifier: Apache-2.0
// The registry across real processes: one table per namespace however many race to create it,
// one owner per key, dead owners' keys taken over, lookups that never see a torn entry, no
// interleaving of opens, creates and kills that splits the table or drops a dead owner's entry.
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "registry/registry.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::registry;
using namespace bloccs::test;

namespace {

PortKey key(const std::string& port) {
  return {"net", "node", port};
}

// Blocks every child on one pipe until the parent releases them all at once.
struct StartLine {
  int fds[2];
  StartLine() { EXPECT_EQ(pipe(fds), 0); }
  ~StartLine() {
    close(fds[0]);
    close(fds[1]);
  }
  void wait() const {
    char c;
    (void)!read(fds[0], &c, 1);
  }
  void release(int n) const {
    for (int i = 0; i < n; ++i) (void)!write(fds[1], "x", 1);
  }
};

// The registry's inode: a table replaced under a name has another.
ino_t table_inode(const TestNamespace& ns) {
  struct stat st {};
  return stat(ns.path("registry").c_str(), &st) == 0 ? st.st_ino : 0;
}

// Waits until `pid` has stopped itself (SIGSTOP from a test hook); false after `limit`.
bool stopped(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WSTOPPED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace

TEST(Registry, ProcessesRacingToCreateItEndWithOneTable) {
  TestNamespace ns;
  StartLine start;
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i)
    kids.push_back(spawn([&, i] {
      start.wait();
      auto r = Registry::open(ns.name());
      if (!r) return 2;
      auto reg = r->register_port(key("p" + std::to_string(i)), "ring" + std::to_string(i), 0);
      if (!reg) return 3;
      pause();  // stay alive: the test kills us once it has looked
      return 0;
    }));
  start.release(4);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r) << r.error().message;
  for (int i = 0; i < 4; ++i) {
    bloccs::Result<PortEntry> e = bloccs::Error{Errc::not_found, ""};
    for (int tries = 0; tries < 2000 && !e; ++tries) {
      e = r->lookup(key("p" + std::to_string(i)));
      if (!e) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_TRUE(e) << "port p" << i << " is missing: a second table was made";
    EXPECT_EQ(e->segment, "ring" + std::to_string(i));
    EXPECT_EQ(e->owner.pid, static_cast<std::uint32_t>(kids[static_cast<std::size_t>(i)]));
    EXPECT_TRUE(e->alive);
  }
  for (pid_t k : kids) kill(k, SIGKILL), wait_child(k);
  EXPECT_EQ(ns.leftovers().size(), 1u) << join(ns.leftovers());  // just the registry
}

TEST(Registry, ExactlyOneOfManyProcessesStartsAKey) {
  TestNamespace ns;
  ASSERT_TRUE(Registry::open(ns.name()));
  StartLine start;
  int results[2];
  ASSERT_EQ(pipe(results), 0);
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i)
    kids.push_back(spawn([&] {
      auto r = Registry::open(ns.name());
      if (!r) return 2;
      start.wait();
      auto reg = r->register_port(key("same"), "ring", 0);
      const char verdict = reg ? 'W' : (reg.code() == Errc::already_exists ? 'L' : '?');
      (void)!write(results[1], &verdict, 1);
      pause();
      return 0;
    }));
  start.release(4);
  std::string verdicts;
  for (int i = 0; i < 4; ++i) {
    char c;
    ASSERT_EQ(read(results[0], &c, 1), 1);
    verdicts += c;
  }
  std::sort(verdicts.begin(), verdicts.end());
  EXPECT_EQ(verdicts, "LLLW");
  for (pid_t k : kids) kill(k, SIGKILL), wait_child(k);
  close(results[0]);
  close(results[1]);
}

TEST(Registry, ADeadOwnersKeyIsTakenOverAndItsSegmentReported) {
  TestNamespace ns;
  const pid_t owner = spawn([&] {
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    auto reg = r->register_port(key("p"), "old-ring", 64);
    if (!reg) return 3;
    raise(SIGKILL);  // dies registered
    return 4;
  });
  wait_child(owner);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto dead = r->lookup(key("p"));
  ASSERT_TRUE(dead);
  EXPECT_FALSE(dead->alive);
  auto reg = r->register_port(key("p"), "new-ring", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  ASSERT_TRUE(reg->taken_over.has_value());
  EXPECT_EQ(reg->taken_over->segment, "old-ring");
  EXPECT_EQ(reg->taken_over->ring_offset, 64u);
  EXPECT_GT(reg->generation, reg->taken_over->generation);
  auto e = r->lookup(key("p"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->segment, "new-ring");
  EXPECT_EQ(e->owner.pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_TRUE(e->alive);
}

// Item 2 of the reliability review: an owner that exec'd is gone, though its pid and its start
// time live on in the new program.
TEST(Registry, AnOwnerThatExecsIsDead) {
  TestNamespace ns;
  Signal registered;
  const pid_t owner = spawn([&] {
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    auto reg = r->register_port(key("p"), "ring", 0);
    if (!reg) return 3;
    registered.notify();
    execl("/bin/sleep", "sleep", "30", nullptr);
    return 4;
  });
  Reaper reap;
  reap(owner);
  ASSERT_TRUE(registered.wait());
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  EXPECT_TRUE(eventually([&] {
    auto e = r->lookup(key("p"));
    return e && !e->alive;
  })) << "the exec'd owner still counts as alive";
  EXPECT_TRUE(running(owner)) << "the test proves nothing if the process itself ended";
  auto reg = r->register_port(key("p"), "ring2", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  EXPECT_TRUE(reg->taken_over);
}

// Item 2: pid namespaces that share /dev/shm. An owner in a pid namespace of its own is pid 1
// there, a number that is alive (init) in ours: its death must still be seen.
TEST(Registry, AnOwnerInAnotherPidNamespaceIsSeenToDie) {
  if (geteuid() != 0) GTEST_SKIP() << "a pid namespace needs root";
  TestNamespace ns;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  Signal registered;
  const pid_t outer = spawn([&]() -> int {
    if (unshare(CLONE_NEWPID) != 0) return 77;
    const pid_t inner = fork();  // pid 1 of the new namespace
    if (inner == 0) {
      auto r = Registry::open(ns.name());
      if (!r) _exit(2);
      auto reg = r->register_port(key("p"), "ring", 0);
      if (!reg) _exit(3);
      registered.notify();
      char c;
      (void)!read(go[0], &c, 1);
      _exit(0);  // leaves without unregistering
    }
    int status = 0;
    waitpid(inner, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 5;
  });
  ASSERT_TRUE(registered.wait());
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto e = r->lookup(key("p"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->owner.pid, 1u) << "the owner registers with its own namespace's pid";
  EXPECT_TRUE(e->alive);
  ASSERT_EQ(write(go[1], "x", 1), 1);
  const int status = wait_child(outer);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << "unshare refused";
  ASSERT_TRUE(exited_ok(status));
  auto after = r->lookup(key("p"));
  ASSERT_TRUE(after);
  EXPECT_FALSE(after->alive) << "pid 1 lives in our namespace: the owner's death went unseen";
  close(go[0]);
  close(go[1]);
}

TEST(Registry, ALiveOwnersKeyIsRefusedAndUnregisterFreesIt) {
  TestNamespace ns;
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto first = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(first);
  auto second = r->register_port(key("p"), "ring2", 0);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.code(), Errc::already_exists);
  EXPECT_NE(second.error().message.find("already started by pid"), std::string::npos);
  ASSERT_TRUE(r->unregister(*first));
  EXPECT_EQ(r->lookup(key("p")).code(), Errc::not_found);
  EXPECT_FALSE(r->unregister(*first));
  EXPECT_TRUE(r->register_port(key("p"), "ring3", 0));
}

TEST(Registry, AFullTableAndBadKeysAreClearErrors) {
  TestNamespace ns;
  auto r = Registry::open(ns.name(), {.slots = 3});
  ASSERT_TRUE(r);
  std::vector<Registration> held;
  for (int i = 0; i < 3; ++i) {
    auto reg = r->register_port(key(std::to_string(i)), "ring", 0);
    ASSERT_TRUE(reg);
    held.push_back(std::move(reg).value());
  }
  auto full = r->register_port(key("x"), "ring", 0);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.code(), Errc::registry_full);
  EXPECT_NE(full.error().message.find("all 3 slots"), std::string::npos) << full.error().message;
  EXPECT_NE(full.error().message.find("BLOCCS_REGISTRY_SLOTS"), std::string::npos)
      << full.error().message;

  EXPECT_EQ(r->register_port({"", "node", "p"}, "ring", 0).code(), Errc::bad_name);
  EXPECT_EQ(r->register_port({"net", std::string(32, 'n'), "p"}, "ring", 0).code(), Errc::bad_name);
  EXPECT_EQ(r->lookup({"net", "no de", "p"}).code(), Errc::bad_name);
  EXPECT_EQ(r->register_port(key("y"), "bad/segment", 0).code(), Errc::bad_name);
  EXPECT_EQ(Registry::open(ns.name(), {.slots = kMaxSlots + 1}).code(), Errc::bad_config);
}

// Item 17: the advice registry_full gives can be followed: the slot count is set per namespace.
TEST(Registry, TheSlotCountComesFromTheEnvironmentWhenTheTableIsMade) {
  TestNamespace ns;
  const pid_t kid = spawn([&] {
    setenv("BLOCCS_REGISTRY_SLOTS", "5", 1);
    auto r = Registry::open(ns.name());
    if (!r || r->slot_count() != 5) return 2;
    setenv("BLOCCS_REGISTRY_SLOTS", "five", 1);
    return Registry::open(ns.name()).code() == Errc::bad_config ? 0 : 3;
  });
  EXPECT_TRUE(exited_ok(wait_child(kid)));
}

// Item 5(c): a full table reuses a dead owner's slot of another key only if the caller says
// its port holds nothing; otherwise the start is refused and says why, and that dead port's
// entry (and so its queue, for its next owner) stays.
TEST(Registry, AFullTableReusesADeadSlotOnlyIfItsPortHoldsNothing) {
  TestNamespace ns;
  auto r = Registry::open(ns.name(), {.slots = 2});
  ASSERT_TRUE(r);
  auto live = r->register_port(key("live"), "ring-live", 0);
  ASSERT_TRUE(live);
  const pid_t owner = spawn([&] {
    auto mine = Registry::open(ns.name());
    if (!mine) return 2;
    auto reg = mine->register_port(key("dead"), "ring-dead", 0);
    if (!reg) return 3;
    raise(SIGKILL);
    return 4;
  });
  wait_child(owner);
  auto refused =
      r->register_port(key("new"), "ring-new", 0, [](const PortEntry&) { return false; });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::registry_full);
  EXPECT_NE(refused.error().message.find("still hold messages"), std::string::npos)
      << refused.error().message;
  EXPECT_TRUE(r->lookup(key("dead"))) << "the dead port's entry must stay for its next owner";
  std::string asked;
  auto reg = r->register_port(key("new"), "ring-new", 0, [&](const PortEntry& e) {
    asked = e.segment;
    return true;
  });
  ASSERT_TRUE(reg) << reg.error().message;
  EXPECT_EQ(asked, "ring-dead");
  ASSERT_TRUE(reg->taken_over);
  EXPECT_EQ(reg->taken_over->segment, "ring-dead");
}

TEST(Registry, AWriterKilledHoldingTheLockDoesNotWedgeIt) {
  TestNamespace ns;
  ASSERT_TRUE(Registry::open(ns.name()));
  const pid_t kid = spawn([&]() -> int {
    auto seg =
        bloccs::shm::Segment::open(ns.name(), "registry", bloccs::shm::SegmentKind::registry);
    if (!seg) return 2;
    auto* h = reinterpret_cast<RegistryHeader*>(seg->base() + sizeof(bloccs::shm::SegmentHeader));
    pthread_mutex_lock(&h->writers);
    raise(SIGKILL);  // dies holding it
    return 3;
  });
  wait_child(kid);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto reg = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  EXPECT_TRUE(r->lookup(key("p")));
}

// Item 5(b): a writer killed half way through taking a dead owner's key over must not lose the
// dead owner's entry (its port still holds that owner's queue): the next writer puts it back,
// and the next take-over gets it.
TEST(Registry, AWriterKilledMidTakeOverLeavesTheDeadOwnersEntry) {
  TestNamespace ns;
  const pid_t first = spawn([&] {
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    auto reg = r->register_port(key("p"), "queue-of-the-dead", 0);
    if (!reg) return 3;
    raise(SIGKILL);
    return 4;
  });
  wait_child(first);
  auto r = Registry::open(ns.name());  // keeps the table alive for the whole test
  ASSERT_TRUE(r);
  auto anchor = r->register_port(key("anchor"), "anchor", 0);
  ASSERT_TRUE(anchor);
  const pid_t writer = spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "registry.overwrite", 1);
    auto mine = Registry::open(ns.name());
    if (!mine) return 2;
    (void)mine->register_port(key("p"), "the-killed-writers", 0);
    return 3;  // never: the hook kills it half way
  });
  const int status = wait_child(writer);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the hook did not fire";
  auto reg = r->register_port(key("p"), "new-owner", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  ASSERT_TRUE(reg->taken_over) << "the dead owner's entry was lost with the killed writer";
  EXPECT_EQ(reg->taken_over->segment, "queue-of-the-dead");
  auto e = r->lookup(key("p"));
  ASSERT_TRUE(e);
  EXPECT_EQ(e->segment, "new-owner");
}

TEST(Registry, LookupsNeverSeeAHalfWrittenEntry) {
  TestNamespace ns;
  auto anchor_table = Registry::open(ns.name(), {.slots = 3});
  ASSERT_TRUE(anchor_table);
  // A port that stays registered throughout, so the table is never retired under the test.
  auto anchor = anchor_table->register_port(key("anchor"), "anchor-ring", 0);
  ASSERT_TRUE(anchor);
  // A writer re-registers two keys over and over, each time with a segment name that says
  // which key it belongs to and which round it is: a torn read would pair them wrongly.
  const pid_t writer = spawn([&] {
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
    for (std::uint64_t round = 0; std::chrono::steady_clock::now() < end; ++round) {
      const std::string port = round % 2 ? "odd" : "even";
      auto reg = r->register_port(key(port), port + "-ring-" + std::to_string(round), round);
      if (!reg) return 3;
      // Live for a while, and asleep for part of it: registering costs a keeper's round trip
      // (shm/liveness.hpp), which on a busy machine is when the reader gets the CPU; a slot
      // live only while the writer runs would give a reader sharing its core nothing to see.
      if (round % 2) std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (!r->unregister(*reg)) return 4;
    }
    return 0;
  });
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  std::uint64_t seen = 0;
  std::string torn;
  int writer_status = 0;
  while (waitpid(writer, &writer_status, WNOHANG) == 0 && torn.empty()) {
    for (const char* port : {"even", "odd"}) {
      auto e = r->lookup(key(port));
      if (!e) continue;
      ++seen;
      const std::string want = std::string(port) + "-ring-" + std::to_string(e->ring_offset);
      if (e->segment != want) torn = e->segment + " under key " + port;
    }
  }
  EXPECT_EQ(torn, "");
  if (!torn.empty()) wait_child(writer, std::chrono::milliseconds(0));
  EXPECT_TRUE(torn.empty() ? exited_ok(writer_status) : true)
      << "the writer failed to register or unregister";
  EXPECT_GT(seen, 10u) << "the reader barely saw any entry: the test proved little";
  EXPECT_TRUE(anchor_table->unregister(*anchor));
}

TEST(Registry, TheLastPortToLeaveRemovesTheTable) {
  TestNamespace ns;
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto a = r->register_port(key("a"), "ring-a", 0);
  auto b = r->register_port(key("b"), "ring-b", 0);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(r->unregister(*a));
  EXPECT_EQ(ns.leftovers().size(), 1u) << "the table went while a port was registered";
  ASSERT_TRUE(r->unregister(*b));
  EXPECT_TRUE(ns.leftovers().empty())
      << "the last port left, the table (or the namespace) stayed: " << join(ns.leftovers());
}

TEST(Registry, AProcessHoldingARetiredTableFollowsTheNamespaceToItsNewOne) {
  TestNamespace ns;
  auto holder = Registry::open(ns.name());  // keeps the first table mapped throughout
  ASSERT_TRUE(holder);
  const pid_t other = spawn([&] {  // registers and leaves: the first table retires
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    auto reg = r->register_port(key("x"), "ring-x", 0);
    if (!reg || !r->unregister(*reg)) return 3;
    return 0;
  });
  ASSERT_TRUE(exited_ok(wait_child(other)));
  ASSERT_TRUE(ns.leftovers().empty());
  // The holder registers: it must land in a table others can find, not in the retired one.
  auto reg = holder->register_port(key("y"), "ring-y", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  const pid_t reader = spawn([&] {
    auto r = Registry::open(ns.name(), {.create = false});
    return r && r->lookup(key("y")) ? 0 : 2;
  });
  EXPECT_TRUE(exited_ok(wait_child(reader)));
  ASSERT_TRUE(holder->unregister(*reg));
  EXPECT_TRUE(ns.leftovers().empty());
}

// Item 5(a): a creator stalled for any time before naming its table never has it removed by
// others, nor removes theirs: the name appears once, whole, and the loser uses the winner's.
TEST(Registry, ACreatorStalledBeforeNamingItsTableLosesNothingAndSplitsNothing) {
  TestNamespace ns;
  const pid_t stalled = spawn([&]() -> int {
    setenv("BLOCCS_TEST_HOOK", "segment.publish:stop", 1);
    auto r = Registry::open(ns.name());  // stops before naming its table
    if (!r) return 2;
    auto e = r->lookup(key("p"));
    return e && e->segment == "ring-of-the-quick" ? 0 : 3;
  });
  Reaper reap;
  reap(stalled);
  ASSERT_TRUE(stopped(stalled));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // past any grace a reader had
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r) << r.error().message;
  auto reg = r->register_port(key("p"), "ring-of-the-quick", 0);
  ASSERT_TRUE(reg);
  const ino_t table = table_inode(ns);
  kill(stalled, SIGCONT);
  EXPECT_TRUE(exited_ok(wait_child(stalled))) << "the stalled creator did not find the table";
  EXPECT_EQ(table_inode(ns), table) << "the table was replaced";
  EXPECT_TRUE(r->lookup(key("p")));
  ASSERT_TRUE(r->unregister(*reg));
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

// Item 5(a): a table left retired but named (its retirer died in between) is unlinked by the
// next opener under the table's own lock, so racing openers never unlink a table another has
// just made: they all end in one new table.
TEST(Registry, RacingOpenersOfARetiredTableEndInOneNewTable) {
  TestNamespace ns;
  {
    auto r = Registry::open(ns.name());
    ASSERT_TRUE(r);
  }
  {
    auto seg = bloccs::shm::Segment::open(ns.name(), "registry",
                                          bloccs::shm::SegmentKind::registry);
    ASSERT_TRUE(seg);
    reinterpret_cast<RegistryHeader*>(seg->base() + sizeof(bloccs::shm::SegmentHeader))
        ->retired.store(1);
  }
  StartLine start;
  std::vector<pid_t> kids;
  for (int i = 0; i < 6; ++i)
    kids.push_back(spawn([&, i] {
      start.wait();
      auto r = Registry::open(ns.name());
      if (!r) return 2;
      auto reg = r->register_port(key("k" + std::to_string(i)), "ring", 0);
      if (!reg) return 3;
      pause();
      return 0;
    }));
  Reaper reap;
  for (pid_t k : kids) reap(k);
  start.release(6);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  for (int i = 0; i < 6; ++i)
    EXPECT_TRUE(eventually([&] { return r->lookup(key("k" + std::to_string(i))).ok(); }))
        << "k" << i << " registered in a table the others cannot find";
}

// Item 12: a registry whose header was zeroed is damage, reported at once, and never replaced
// (live ports are registered in it).
TEST(Registry, ADamagedTableIsReportedAtOnceAndNeverReplaced) {
  TestNamespace ns;
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto reg = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(reg);
  const ino_t table = table_inode(ns);
  {
    const int fd = ::open(ns.path("registry").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const char zeros[64] = {};
    ASSERT_EQ(pwrite(fd, zeros, sizeof zeros, 0), 64);
    ::close(fd);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto again = Registry::open(ns.name());
  ASSERT_FALSE(again);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(100));
  EXPECT_EQ(again.code(), Errc::segment_invalid) << again.error().message;
  EXPECT_NE(again.error().message.find("never replaces it"), std::string::npos)
      << again.error().message;
  EXPECT_NE(again.error().message.find("gc"), std::string::npos) << again.error().message;
  EXPECT_EQ(Registry::open(ns.name(), {.create = false}).code(), Errc::segment_invalid);
  EXPECT_EQ(table_inode(ns), table);
}

// Item 14: the table's mode is the namespace's, not the first port's: group access exactly when
// the namespace is shared.
TEST(Registry, TheTableIsGroupAccessibleExactlyWhenTheNamespaceIsShared) {
  TestNamespace shared;
  auto r = Registry::open(shared.name(), {.sharing = bloccs::shm::Sharing{getegid()}});
  ASSERT_TRUE(r) << r.error().message;
  struct stat st {};
  ASSERT_EQ(stat(shared.path("registry").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  TestNamespace priv;
  auto p = Registry::open(priv.name(), {.sharing = bloccs::shm::Sharing{}});
  ASSERT_TRUE(p);
  ASSERT_EQ(stat(priv.path("registry").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}
