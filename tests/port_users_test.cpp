// SPDX-License-Identifier: Apache-2.0
// Ports shared between real, distinct users (item 8 of the reliability review): two users with
// private primary groups and one supplementary group in common, as on Debian, and a third user
// outside it. The owner is one user, the pushers the other; each runs in its own process with
// its own ids (the suite runs as root and plays them; without root these tests are skipped).
//
// What must hold: every port feature (bounded, unbounded, push_after, take-over, shmctl, gc)
// works across the two, and the outsider gets a clear permission error, not a hang.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "bloccs/port.hpp"
#include "port_test_support.hpp"
#include "shmctl_test_support.hpp"

using bloccs::Errc;
using bloccs::Port;
using bloccs::PortOptions;
using bloccs::Pusher;
using namespace bloccs::test;

namespace {

constexpr gid_t kTeam = 64200;             // the group the two users share
const User kAlice{64101, 64101, {kTeam}};  // the owner
const User kBob{64102, 64102, {kTeam}};    // the pushers
const User kOutsider{64103, 64103, {}};    // not in the group

class PortUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "playing distinct users needs root";
  }
  PortOptions shared(PortOptions o = {}) const {
    o.ns = ns.name();
    o.mode = 0660;
    o.group = std::to_string(kTeam);
    return o;
  }
  TestNamespace ns;
  Reaper reap;
};

// Runs `body` in a child process as user `u`.
pid_t spawn_as(const User& u, const std::function<int()>& body) {
  return spawn([&u, body] {
    if (!become(u)) return fail(90, "could not become the test user");
    return body();
  });
}

// The number a payload of pusher_of starts with.
std::uint64_t first_num(const std::vector<std::byte>& payload) {
  return payload.size() < 8 ? ~0ull : num(std::span(payload).first(8));
}

// An owner process as `u` that starts the port, says so, and receives `n` messages in order
// (0..n-1, or payloads checked by `check`), then stops.
pid_t owner_receiving(const User& u, const PortOptions& o, Signal& ready, std::uint64_t n,
                      std::chrono::milliseconds limit = 60s) {
  return spawn_as(u, [&o, &ready, n, limit] {
    auto port = Port::start(key(), o);
    if (!port) return fail(2, "start", port);
    ready.notify();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto m = port->receive(in(limit));
      if (!m) return fail(3, "receive", m);
      if (first_num(m->payload) != i) return fail(4, "a message out of order");
    }
    port->stop();
    return 0;
  });
}

// Pushes 0..n-1 as `u`, each payload `size` bytes long (the number first).
pid_t pusher_of(const User& u, const TestNamespace& ns, std::uint64_t n, std::size_t size = 8) {
  return spawn_as(u, [&ns, n, size] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0; i < n; ++i) {
      auto payload = num(i);
      payload.resize(std::max<std::size_t>(size, payload.size()));
      if (auto st = p->push(key(), payload); !st) return fail(3, "push", st);
    }
    return 0;
  });
}

uid_t owner_uid(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

}  // namespace

// A bounded port of one user fed by the other: the pusher parks on the full ring and the
// owner's receives wake it, across uids.
TEST_F(PortUsers, ABoundedPortCarriesAnotherUsersPushesAndParksThem) {
  Signal ready;
  const std::uint64_t n = scaled(2000);
  const pid_t owner = reap(owner_receiving(kAlice, shared({.buffer = 4}), ready, n));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t pusher = reap(pusher_of(kBob, ns, n));
  EXPECT_EQ(exit_code(wait_child(pusher, 60s)), 0);
  EXPECT_EQ(exit_code(wait_child(owner, 60s)), 0);
  EXPECT_TRUE(ns.leftovers().empty() ||
              ns.leftovers() == std::vector<std::string>{"bloccs." + ns.name() + "/"})
      << join(ns.leftovers());
}

// The links of an unbounded port are made by the pusher, under its uid; the owner opens them,
// drains them and removes them.
TEST_F(PortUsers, AnUnboundedPortsLinksMadeByOneUserAreReadAndRemovedByTheOther) {
  Signal ready, filled, go;
  Shared<std::atomic<std::uint32_t>> links;
  const std::uint64_t n = 3000;  // of 1000 bytes: three links of 1 MiB at least
  const pid_t owner = reap(spawn_as(kAlice, [&] {
    auto port = Port::start(key(), shared({.buffer = std::nullopt}));
    if (!port) return fail(2, "start", port);
    ready.notify();
    if (!filled.wait(60s)) return fail(3, "the pusher did not finish");
    links->store(port->stats().links);
    for (std::uint64_t i = 0; i < n; ++i) {
      auto m = port->receive(in(10s));
      if (!m) return fail(4, "receive", m);
      if (first_num(m->payload) != i) return fail(5, "a message out of order");
    }
    if (port->stats().links != 1) return fail(6, "the drained links were not all removed");
    if (!go.wait(60s)) return fail(7, "the test did not look");
    port->stop();
    return 0;
  }));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t pusher = reap(pusher_of(kBob, ns, n, 1000));
  ASSERT_EQ(exit_code(wait_child(pusher, 60s)), 0);
  // The links the pusher made are its own files, in the owner's namespace.
  int bobs = 0;
  for (const auto& e : ns.leftovers())
    if (owner_uid("/dev/shm/" + e) == kBob.uid) ++bobs;
  EXPECT_GE(bobs, 2) << "the pusher should have made the links: " << join(ns.leftovers());
  filled.notify();
  EXPECT_TRUE(eventually([&] { return links->load() != 0; }, 60s));
  EXPECT_GE(links->load(), 3u);
  // Once drained, only the link the ring is on is left of the pusher's: the owner removed the
  // others, and removes that one when it stops.
  auto bobs_left = [&] {
    int k = 0;
    for (const auto& e : ns.leftovers()) k += owner_uid("/dev/shm/" + e) == kBob.uid;
    return k;
  };
  EXPECT_TRUE(eventually([&] { return bobs_left() == 1; }, 30s)) << join(ns.leftovers());
  go.notify();
  EXPECT_EQ(exit_code(wait_child(owner, 60s)), 0);
  EXPECT_SHM_CLEAN(ns);
}

// push_after's request ring is made by the pusher; the owner's timer delivers what it asked for.
TEST_F(PortUsers, PushAfterOfAnotherUserIsDelivered) {
  Signal ready;
  const pid_t owner = reap(owner_receiving(kAlice, shared({.buffer = 8}), ready, 3, 30s));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t pusher = reap(spawn_as(kBob, [&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0; i < 3; ++i)
      if (auto st = p->push_after(key(), num(i), {}, std::chrono::milliseconds(20 + 30 * i)); !st)
        return fail(3, "push_after", st);
    return 0;
  }));
  EXPECT_EQ(exit_code(wait_child(pusher, 30s)), 0);
  EXPECT_EQ(exit_code(wait_child(owner, 30s)), 0) << "the timer did not deliver every push_after";
  EXPECT_SHM_CLEAN(ns);  // the request ring the pusher made was removed by the owner's stop
}

// One user's owner dies with messages queued and a push_after pending; the other user starts
// the port again, takes it over, and receives all of them.
TEST_F(PortUsers, TheOtherUserTakesOverADeadOwnersPortAndEveryMessage) {
  Signal ready;
  const pid_t owner = reap(spawn_as(kAlice, [&] {
    auto port = Port::start(key(), shared({.buffer = 64}));
    if (!port) return fail(2, "start", port);
    ready.notify();
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t pusher = reap(spawn_as(kBob, [&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0; i < 10; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "push", st);
    if (auto st = p->push_after(key(), num(10), {}, 300ms); !st) return fail(4, "push_after", st);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(pusher, 30s)), 0);
  std::this_thread::sleep_for(50ms);  // the timer takes the request in
  kill(owner, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(owner)), 1000 + SIGKILL);

  const pid_t heir = reap(spawn_as(kBob, [&] {
    auto port = Port::start(key(), shared({.buffer = 64}));
    if (!port) return fail(2, "start (take-over)", port);
    const auto& t = port->takeover();
    if (t.salvaged != 11) {
      std::fprintf(stderr, "salvaged %llu, lost %llu\n",
                   static_cast<unsigned long long>(t.salvaged),
                   static_cast<unsigned long long>(t.lost()));
      return fail(3, "not every message was carried over");
    }
    for (std::uint64_t i = 0; i <= 10; ++i) {
      auto m = port->receive(in(10s));
      if (!m) return fail(4, "receive", m);
      if (first_num(m->payload) != i) return fail(5, "a message out of order");
    }
    port->stop();
    return 0;
  }));
  EXPECT_EQ(exit_code(wait_child(heir, 30s)), 0);
  for (const auto& e : ns.leftovers())  // but the directory: Alice's, and the team's to reuse
    if (!e.ends_with("/")) {
      EXPECT_NE(owner_uid("/dev/shm/" + e), kAlice.uid) << "the dead owner's " << e << " is left";
    }
}

// shmctl run by the other user sees the port and its queue; once the owner is dead, its gc
// removes every segment of it, the other user's own and the dead owner's.
TEST_F(PortUsers, ShmctlOfTheOtherUserListsThePortAndCollectsItOnceItsOwnerIsDead) {
  Signal ready;
  const pid_t owner = reap(spawn_as(kAlice, [&] {
    auto port = Port::start(key(), shared({.buffer = std::nullopt}));
    if (!port) return fail(2, "start", port);
    ready.notify();
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t pusher = reap(pusher_of(kBob, ns, 1500, 1000));  // into a second link, Bob's
  ASSERT_EQ(exit_code(wait_child(pusher, 30s)), 0);

  const ShmctlRun ls = shmctl(ns, {"ls"}, 30s, &kBob);
  ASSERT_EQ(ls.code, 0) << ls;
  const auto rows = ls_rows(ls.out);
  ASSERT_TRUE(rows.count("net/node/in")) << ls;
  EXPECT_EQ(rows.at("net/node/in").liveness(), "alive") << ls;
  EXPECT_EQ(rows.at("net/node/in").depth(), 1500u) << ls;
  const ShmctlRun peek = shmctl(ns, {"peek", "net/node/in"}, 30s, &kBob);
  EXPECT_EQ(peek.code, 0) << peek;

  kill(owner, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(owner)), 1000 + SIGKILL);
  const ShmctlRun gc = shmctl(ns, {"gc"}, 30s, &kBob);
  EXPECT_EQ(gc.code, 0) << gc;
  EXPECT_NE(gc.out.find("removed net/node/in of dead pid " + std::to_string(owner)),
            std::string::npos)
      << gc;
  // Bob may remove Alice's files in their shared directory, not the directory in the sticky
  // /dev/shm: an empty namespace directory of Alice's stays, for the team to use again.
  const auto left = ns.leftovers();
  EXPECT_TRUE(left.empty() || left == std::vector<std::string>{"bloccs." + ns.name() + "/"})
      << join(left);
}

// A user outside the group is told so, by the library and by shmctl, at once.
TEST_F(PortUsers, AUserOutsideTheGroupGetsAClearPermissionError) {
  Signal ready, done;
  const pid_t owner = reap(spawn_as(kAlice, [&] {
    auto port = Port::start(key(), shared({.buffer = 8}));
    if (!port) return fail(2, "start", port);
    ready.notify();
    done.wait(60s);
    port->stop();
    return 0;
  }));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  const pid_t outsider = reap(spawn_as(kOutsider, [&] {
    auto p = Pusher::open(ns.name());
    const std::string group = std::to_string(kTeam);
    auto says_why = [&](const auto& r) {
      return is(r, Errc::permission_denied) &&
             r.error().message.find("which you are not in") != std::string::npos &&
             r.error().message.find(group) != std::string::npos;
    };
    if (p) {
      auto st = p->push(key(), num(1));
      if (!says_why(st)) return fail(2, "push", st);
    } else if (!says_why(p)) {
      return fail(3, "open", p);
    }
    auto own = Port::start(key("mine"), {.buffer = 8, .ns = ns.name()});
    if (!says_why(own)) return fail(4, "start in their namespace", own);
    return 0;
  }));
  EXPECT_EQ(exit_code(wait_child(outsider, 10s)), 0);
  const ShmctlRun ls = shmctl(ns, {"ls"}, 30s, &kOutsider);
  EXPECT_NE(ls.code, 0) << ls;
  EXPECT_NE((ls.out + ls.err).find("which you are not in"), std::string::npos) << ls;
  done.notify();
  EXPECT_EQ(exit_code(wait_child(owner, 10s)), 0);
}

// Item 21: root collects what another user's dead owner left in that user's private namespace
// (which is not root's to use, only to clean), and the namespace's directory with it.
TEST_F(PortUsers, RootCollectsWhatAnotherUsersDeadOwnerLeft) {
  Signal ready;
  const pid_t owner = reap(spawn_as(kAlice, [&] {
    auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!port) return fail(2, "start", port);
    if (auto p = Pusher::open(ns.name()); !p || !p->push(key(), num(7))) return fail(3, "push");
    ready.notify();
    pause();
    return 0;
  }));
  ASSERT_TRUE(ready.wait()) << "the owner did not start";
  kill(owner, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(owner)), 1000 + SIGKILL);
  ASSERT_FALSE(ns.leftovers().empty());

  const ShmctlRun ls = shmctl(ns, {"ls"});
  ASSERT_EQ(ls.code, 0) << ls;
  const auto rows = ls_rows(ls.out);
  ASSERT_TRUE(rows.count("net/node/in")) << ls;
  EXPECT_EQ(rows.at("net/node/in").liveness(), "dead") << ls;
  EXPECT_EQ(rows.at("net/node/in").depth(), 1u) << ls;

  // Bob may not: the namespace is Alice's alone.
  const ShmctlRun denied = shmctl(ns, {"gc"}, 30s, &kBob);
  EXPECT_NE(denied.code, 0) << denied;
  EXPECT_NE(denied.err.find("not shared"), std::string::npos) << denied;
  EXPECT_FALSE(ns.leftovers().empty());

  const ShmctlRun gc = shmctl(ns, {"gc"});
  EXPECT_EQ(gc.code, 0) << gc;
  EXPECT_NE(gc.out.find("removed net/node/in of dead pid " + std::to_string(owner)),
            std::string::npos)
      << gc;
  EXPECT_SHM_CLEAN(ns);
}

// Items 9 and 13: another user who made the namespace's directory first (a squatter) denies
// nobody silently: starting a port, or pushing, is refused with an error that names the squatter
// and says what to do, and nothing of the squatter's is removed, by root neither.
TEST_F(PortUsers, ASquattedNamespaceIsRefusedNamingTheSquatterAndNothingOfItsIsRemoved) {
  const std::string dir = "/dev/shm/bloccs." + ns.name();
  const pid_t squatter = reap(spawn_as(kOutsider, [&] {
    if (mkdir(dir.c_str(), 0755) != 0) return fail(2, "mkdir");
    const int fd = open((dir + "/registry").c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return fail(3, "a planted registry");
    close(fd);
    return 0;
  }));
  ASSERT_EQ(exit_code(wait_child(squatter)), 0);
  const std::string who = "uid " + std::to_string(kOutsider.uid);
  auto says_who = [&](const auto& r) {
    return is(r, Errc::permission_denied) && r.error().message.find(who) != std::string::npos &&
           r.error().message.find("another namespace") != std::string::npos;
  };
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(says_who(port)) << describe(port);
  auto pusher = Pusher::open(ns.name());
  if (pusher) {
    auto st = pusher->push(key(), num(1));
    EXPECT_TRUE(says_who(st)) << describe(st);
  } else {
    EXPECT_TRUE(says_who(pusher)) << describe(pusher);
  }
  const ShmctlRun gc = shmctl(ns, {"gc"});
  EXPECT_NE(gc.code, 0) << gc;
  EXPECT_EQ(owner_uid(dir + "/registry"), kOutsider.uid) << "the squatter's file was removed";

  // Root's own namespace with a file of another user's under the registry's name (only root
  // could plant it there): refused, naming the owner, and left in place.
  remove_namespace(ns.name());
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const int fd = open((dir + "/registry").c_str(), O_CREAT | O_EXCL | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  ASSERT_EQ(fchown(fd, kOutsider.uid, kOutsider.gid), 0);
  close(fd);
  auto planted = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_FALSE(planted);
  EXPECT_EQ(planted.code(), Errc::permission_denied) << describe(planted);
  EXPECT_NE(planted.error().message.find(who), std::string::npos) << describe(planted);
  EXPECT_EQ(owner_uid(dir + "/registry"), kOutsider.uid) << "the planted file was removed";
}
