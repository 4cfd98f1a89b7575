// The registry across real processes: one table per namespace however many race to create it,
// one owner per key, dead owners' keys taken over, lookups that never see a torn entry.
#include <fcntl.h>
#include <sys/mman.h>

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
  }
  for (pid_t k : kids) kill(k, SIGKILL), wait_child(k);
  EXPECT_EQ(ns.leftovers().size(), 1u);  // just the registry
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
    return r && r->register_port(key("p"), "old-ring", 64) ? 0 : 2;
  });
  ASSERT_TRUE(exited_ok(wait_child(owner)));  // exited without unregistering
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
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
  ASSERT_TRUE(r->unregister(first->slot, first->generation));
  EXPECT_EQ(r->lookup(key("p")).code(), Errc::not_found);
  EXPECT_EQ(r->unregister(first->slot, first->generation).code(), Errc::not_found);
  EXPECT_TRUE(r->register_port(key("p"), "ring3", 0));
}

TEST(Registry, AFullTableAndBadKeysAreClearErrors) {
  TestNamespace ns;
  auto r = Registry::open(ns.name(), {.slots = 3});
  ASSERT_TRUE(r);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r->register_port(key(std::to_string(i)), "ring", 0));
  auto full = r->register_port(key("x"), "ring", 0);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.code(), Errc::registry_full);
  EXPECT_NE(full.error().message.find("all 3 slots"), std::string::npos) << full.error().message;

  EXPECT_EQ(r->register_port({"", "node", "p"}, "ring", 0).code(), Errc::bad_name);
  EXPECT_EQ(r->register_port({"net", std::string(32, 'n'), "p"}, "ring", 0).code(), Errc::bad_name);
  EXPECT_EQ(r->lookup({"net", "no de", "p"}).code(), Errc::bad_name);
  EXPECT_EQ(r->register_port(key("y"), "bad/segment", 0).code(), Errc::bad_name);
  EXPECT_EQ(Registry::open(ns.name(), {.slots = 0}).code(), Errc::bad_config);
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
      if (!r->unregister(reg->slot, reg->generation)) return 4;
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
  EXPECT_TRUE(anchor_table->unregister(anchor->slot, anchor->generation));
}

TEST(Registry, TheLastPortToLeaveRemovesTheTable) {
  TestNamespace ns;
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto a = r->register_port(key("a"), "ring-a", 0);
  auto b = r->register_port(key("b"), "ring-b", 0);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(r->unregister(a->slot, a->generation));
  EXPECT_EQ(ns.leftovers().size(), 1u) << "the table went while a port was registered";
  ASSERT_TRUE(r->unregister(b->slot, b->generation));
  EXPECT_TRUE(ns.leftovers().empty()) << "the last port left, the table stayed";
}

TEST(Registry, AProcessHoldingARetiredTableFollowsTheNamespaceToItsNewOne) {
  TestNamespace ns;
  auto holder = Registry::open(ns.name());  // keeps the first table mapped throughout
  ASSERT_TRUE(holder);
  const pid_t other = spawn([&] {  // registers and leaves: the first table retires
    auto r = Registry::open(ns.name());
    if (!r) return 2;
    auto reg = r->register_port(key("x"), "ring-x", 0);
    if (!reg || !r->unregister(reg->slot, reg->generation)) return 3;
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
  ASSERT_TRUE(holder->unregister(reg->slot, reg->generation));
  EXPECT_TRUE(ns.leftovers().empty());
}

TEST(Registry, ACreatorKilledBeforePublishingDoesNotBlockTheNamespace) {
  TestNamespace ns;
  const pid_t kid = spawn([&]() -> int {
    auto seg = bloccs::shm::Segment::create(ns.name(), "registry",
                                            bloccs::shm::SegmentKind::registry, 4096);
    if (!seg) return 2;
    raise(SIGKILL);  // header written, never published
    return 3;
  });
  wait_child(kid);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->register_port(key("p"), "ring", 0));
}

TEST(Registry, AnEmptyTableLeftByACreatorThatDiedAtOnceIsReplaced) {
  TestNamespace ns;
  const std::string path = "/bloccs." + ns.name() + ".registry";
  const int fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);  // never sized
  ASSERT_GE(fd, 0);
  close(fd);
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->register_port(key("p"), "ring", 0));
}

TEST(Registry, OnlyTheRegisteringProcessUnregisters) {
  TestNamespace ns;
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r);
  auto reg = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(reg);
  const pid_t kid = spawn([&] {
    auto mine = Registry::open(ns.name());
    return mine && mine->unregister(reg->slot, reg->generation).code() == Errc::wrong_process ? 0
                                                                                              : 2;
  });
  EXPECT_TRUE(exited_ok(wait_child(kid)));
  EXPECT_TRUE(r->lookup(key("p")));
  EXPECT_EQ(r->unregister(reg->slot, reg->generation + (std::uint64_t{1} << 62)).code(),
            Errc::not_found);
  EXPECT_TRUE(r->unregister(reg->slot, reg->generation));
}

TEST(Registry, ATableMarkedRetiredButStillInDevShmIsReplacedNotWaitedOn) {
  TestNamespace ns;
  {
    auto r = Registry::open(ns.name());
    ASSERT_TRUE(r);
  }
  // A retirer that died between marking the table and unlinking it.
  {
    auto seg = bloccs::shm::Segment::open(ns.name(), "registry",
                                          bloccs::shm::SegmentKind::registry);
    ASSERT_TRUE(seg);
    auto* h = reinterpret_cast<bloccs::registry::RegistryHeader*>(
        seg->base() + sizeof(bloccs::shm::SegmentHeader));
    h->retired.store(1);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Registry::open(ns.name());
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  auto reg = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(reg) << reg.error().message;
  auto other = Registry::open(ns.name(), {.create = false});
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_TRUE(other->lookup(key("p"))) << "registered in a table others cannot find";
  ASSERT_TRUE(r->unregister(reg->slot, reg->generation));
  EXPECT_TRUE(ns.leftovers().empty());
}

TEST(Registry, ATableCreatedForGroupAccessHasMode0660) {
  TestNamespace ns;
  auto r = Registry::open(ns.name(), {.mode = 0660});
  ASSERT_TRUE(r);
  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm/bloccs." + ns.name() + ".registry").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  auto reg = r->register_port(key("p"), "ring", 0);
  ASSERT_TRUE(reg);
  ASSERT_TRUE(r->unregister(reg->slot, reg->generation));
}
