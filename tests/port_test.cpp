// SPDX-License-Identifier: Apache-2.0
// Ports across real processes, sentence by sentence of SPEC.md "The port" (start, push,
// push_timeout, meta) and the consumer side. push_after: port_after_test.cpp; owners that die
// or stop under parked pushers: port_owner_death_test.cpp.
//
// Children report through their exit code, a distinct one per failure reason (the reason is also
// printed to stderr).
#include <cstdlib>
#include <optional>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "bloccs/wait_any.hpp"
#include "port_test_support.hpp"
#include "registry/registry.hpp"

using bloccs::Errc;
using bloccs::Message;
using bloccs::MessageView;
using bloccs::Meta;
using bloccs::Port;
using bloccs::PortKey;
using bloccs::PortOptions;
using bloccs::Pusher;
using namespace bloccs::test;

// ---- 1. start -----------------------------------------------------------------------------------

TEST(PortStart, RegistersTheKeySoThatAnotherProcessCanPushToIt) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  EXPECT_EQ(port->key(), key());
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), bloccs::bytes("hello")); !st) return fail(3, "push", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "hello");
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, AKeyHeldByALiveOwnerIsRefusedAsAlreadyExistsFromAnyProcess) {
  TestNamespace ns;
  // Forked before this process runs a timer thread: it starts a port (and so a thread) itself,
  // which ThreadSanitizer cannot follow in a child of a multi-threaded process.
  Signal go;
  const pid_t other_owner = spawn([&] {
    if (!go.wait()) return fail(2, "never told to go");
    // Another key of the same namespace is fine while the first owner holds its key.
    auto other = Port::start(key("other"), {.buffer = 8, .ns = ns.name()});
    if (!other) return fail(3, "start other key", other);
    return 0;
  });
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  go.notify();
  EXPECT_EQ(exit_code(wait_child(other_owner)), 0);

  // The same process.
  auto again = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(is(again, Errc::already_exists)) << describe(again);
  if (!again.ok()) {
    EXPECT_FALSE(again.error().message.empty());
  }

  // Another process, with other options.
  const pid_t kid = spawn([&] {
    auto p = Port::start(key(), {.buffer = 16, .ns = ns.name()});
    if (p.ok()) return fail(2, "second start succeeded while the first owner lives");
    if (!is(p, Errc::already_exists)) return fail(3, "second start", p);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);

  // The refused starts changed nothing: the first owner still receives.
  const pid_t pusher = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), bloccs::bytes("still mine")); !st) return fail(3, "push", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(pusher)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "still mine");

  // Once stopped, the key is free again, for another process too.
  port->stop();
  const pid_t next = spawn([&] {
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    return p ? 0 : fail(2, "start after stop", p);
  });
  EXPECT_EQ(exit_code(wait_child(next)), 0);
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, TakesOverTheKeyOfADeadOwnerAndRemovesItsSegments) {
  TestNamespace ns;
  Signal ready, pushed, go;
  const pid_t owner = spawn_owner_until_killed(ns, ready);
  ASSERT_TRUE(ready.wait()) << "the first owner did not start";

  // A pusher that keeps its attachment across the take-over: its next push must reach the new
  // owner (the registration changed generation), not the dead one's ring.
  const pid_t pusher = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), bloccs::bytes("to the dead one")); !st)
      return fail(3, "push 1", st);
    pushed.notify();
    if (!go.wait()) return fail(4, "no go");
    if (auto st = p->push(key(), bloccs::bytes("to the new one")); !st)
      return fail(5, "push 2", st);
    return 0;
  });
  ASSERT_TRUE(pushed.wait()) << "the pusher did not push";

  const auto dead_segments = segments_with_inodes(ns);
  ASSERT_FALSE(dead_segments.empty()) << "the first owner's port has no segment in /dev/shm";
  kill(owner, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(owner)), 1000 + SIGKILL);

  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << "take-over refused: " << describe(port);
  const auto now = segments_with_inodes(ns);
  for (const auto& [name, inode] : dead_segments) {
    auto it = now.find(name);
    EXPECT_FALSE(it != now.end() && it->second == inode)
        << "the dead owner's segment " << name << " is still in /dev/shm";
  }

  go.notify();
  EXPECT_EQ(exit_code(wait_child(pusher)), 0);
  // What the dead port held was carried over (port_takeover_test), ahead of later pushes.
  EXPECT_EQ(port->takeover().salvaged, 1u);
  for (const char* want : {"to the dead one", "to the new one"}) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(str(m->payload), want);
  }
  auto more = port->try_receive();
  ASSERT_TRUE(more) << describe(more);
  EXPECT_FALSE(more->has_value());
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, StopUnregistersTheKeyAndRemovesTheSegmentsAndIsIdempotent) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  EXPECT_FALSE(ns.leftovers().empty()) << "a started port has no segment in /dev/shm";
  port->stop();
  EXPECT_SHM_CLEAN(ns);
  port->stop();  // idempotent
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("x"));
    return is(st, Errc::no_producer) ? 0 : fail(3, "push after stop", st);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto again = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(again) << describe(again);
  again->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, DestroyingThePortStopsIt) {
  TestNamespace ns;
  {
    auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    ASSERT_TRUE(port) << describe(port);
    Port moved = std::move(*port);  // the moved-from Port's destructor must not stop it
    auto p = Pusher::open(ns.name());
    ASSERT_TRUE(p) << describe(p);
    EXPECT_TRUE(p->push(key(), bloccs::bytes("x")));
    auto m = moved.receive(in(5s));
    EXPECT_TRUE(m) << describe(m);
  }
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, AnOwnerReturningNormallyUnregistersAndRemovesItsSegments) {
  TestNamespace ns;
  Signal ready, go;
  const pid_t owner = spawn([&] {
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    if (!go.wait()) return fail(3, "no go");
    return 0;  // the Port is destroyed on the way out
  });
  ASSERT_TRUE(ready.wait());
  EXPECT_FALSE(ns.leftovers().empty());
  go.notify();
  EXPECT_EQ(exit_code(wait_child(owner)), 0);
  EXPECT_SHM_CLEAN(ns);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("x"));
    return is(st, Errc::no_producer) ? 0 : fail(3, "push after the owner exited", st);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  EXPECT_SHM_CLEAN(ns);
}

Port* g_never_destroyed = nullptr;

TEST(PortStart, AnOwnerCallingExitWithALeakedPortStillUnregistersAndWakesParkedPushers) {
  TestNamespace ns;
  Signal ready, go, pushed;
  const pid_t owner = spawn([&] {
    auto p = Port::start(key(), {.buffer = 1, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    // Never destroyed: only the atexit handler can stop it. (Held by a static pointer so that
    // LeakSanitizer, which checks at exit, sees it reachable.)
    g_never_destroyed = new Port(std::move(*p));
    ready.notify();
    if (!go.wait()) return fail(3, "no go");
    std::exit(0);
  });
  ASSERT_TRUE(ready.wait());
  // A pusher parked on the full port when the owner exits must get no_producer, not hang.
  const pid_t pusher = spawn([&] {
    bloccs::set_push_timeout(std::nullopt);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), bloccs::bytes("1")); !st) return fail(3, "push 1", st);
    pushed.notify();
    auto st = p->push(key(), bloccs::bytes("2"));  // parks: buffer 1
    return is(st, Errc::no_producer) ? 0 : fail(4, "parked push", st);
  });
  ASSERT_TRUE(pushed.wait());
  std::this_thread::sleep_for(
      300ms);  // let it park (not checked: the owner's stats are in the owner)
  go.notify();
  EXPECT_EQ(exit_code(wait_child(owner)), 0);
  EXPECT_EQ(exit_code(wait_child(pusher, 10s)), 0);
  EXPECT_SHM_CLEAN(ns);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("x"));
    return is(st, Errc::no_producer) ? 0 : fail(3, "push after exit()", st);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, AnOwnerCallingExitWithThePortInAStaticUnregisters) {
  TestNamespace ns;
  Signal ready;
  const pid_t owner = spawn([&] {
    static std::optional<Port> kept;
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    kept.emplace(std::move(*p));
    ready.notify();
    std::exit(0);
  });
  ASSERT_TRUE(ready.wait());
  EXPECT_EQ(exit_code(wait_child(owner)), 0);
  EXPECT_SHM_CLEAN(ns);
  auto p = Pusher::open(ns.name());
  ASSERT_TRUE(p) << describe(p);
  auto st = p->push(key(), bloccs::bytes("x"));
  EXPECT_TRUE(is(st, Errc::no_producer)) << describe(st);
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, SegmentsAreOwnerOnlyUnlessTheOwnerAsksForGroupAccess) {
  TestNamespace ns;
  const std::string group = std::to_string(getegid());
  for (mode_t mode : {mode_t{0600}, mode_t{0660}}) {
    auto port = Port::start(key(), {.buffer = 8, .ns = ns.name(), .mode = mode, .group = group});
    ASSERT_TRUE(port) << describe(port);
    // Make the pusher side create whatever it creates, too.
    auto p = Pusher::open(ns.name());
    ASSERT_TRUE(p) << describe(p);
    ASSERT_TRUE(p->push(key(), bloccs::bytes("x")));
    ASSERT_TRUE(p->push_after(key(), bloccs::bytes("y"), {}, 1ms));
    ASSERT_TRUE(port->receive(in(5s)));
    ASSERT_TRUE(port->receive(in(5s)));
    // Every segment of the port has its mode; the namespace's registry is the namespace's,
    // group-accessible since the namespace is shared, whatever the port's mode.
    const auto segments = segments_with_inodes(ns, true);
    EXPECT_TRUE(segments.contains("bloccs." + ns.name() + "/registry"));
    for (const auto& [name, inode] : segments) {
      struct stat st {};
      ASSERT_EQ(stat(("/dev/shm/" + name).c_str(), &st), 0) << name;
      EXPECT_EQ(st.st_mode & 0777, name.ends_with("/registry") ? 0660 : mode) << name;
    }
    port->stop();
  }
  EXPECT_SHM_CLEAN(ns);
}

// Item 14 of the reliability review: group access is a property the namespace is given on
// purpose, not an accident of which port starts first.
TEST(PortStart, GroupAccessIsTheNamespacesOnPurposeNotTheFirstPortsByAccident) {
  TestNamespace priv;
  auto first = Port::start(key("a"), {.buffer = 8, .ns = priv.name()});  // private namespace
  ASSERT_TRUE(first) << describe(first);
  auto group_port = Port::start(key("b"), {.buffer = 8, .ns = priv.name(), .mode = 0660});
  ASSERT_TRUE(is(group_port, Errc::bad_config)) << describe(group_port);
  EXPECT_NE(group_port.error().message.find("BLOCCS_NAMESPACE_GROUP"), std::string::npos)
      << group_port.error().message;
  auto asks_shared =
      Port::start(key("c"), {.buffer = 8, .ns = priv.name(), .group = std::to_string(getegid())});
  ASSERT_TRUE(is(asks_shared, Errc::bad_config)) << describe(asks_shared);
  EXPECT_NE(asks_shared.error().message.find("is private"), std::string::npos)
      << asks_shared.error().message;

  TestNamespace shared;
  const pid_t kid = spawn([&] {
    setenv("BLOCCS_NAMESPACE_GROUP", std::to_string(getegid()).c_str(), 1);
    auto p = Port::start(key("a"), {.buffer = 8, .ns = shared.name()});  // mode 0600, first
    if (!p) return fail(2, "private port in a shared namespace", p);
    unsetenv("BLOCCS_NAMESPACE_GROUP");  // later ports need not say it again
    auto g = Port::start(key("b"), {.buffer = 8, .ns = shared.name(), .mode = 0660});
    if (!g) return fail(3, "group port after a private one", g);
    struct stat st {};
    if (stat(shared.path("registry").c_str(), &st) != 0 || (st.st_mode & 0777) != 0660)
      return fail(4, "the registry of a shared namespace is not 0660");
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  first->stop();
  EXPECT_SHM_CLEAN(priv);
  EXPECT_SHM_CLEAN(shared);
}

TEST(PortStart, KeyPartsWithDotsWorkAndLeaveNothingBehind) {
  TestNamespace ns;
  const bloccs::PortKey dotted{"net.v2", "node.a", "in.c"};
  auto port = Port::start(dotted, {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  // Its segments' names have no dots from the key: no other port's family can swallow them.
  for (const auto& e : ns.leftovers()) EXPECT_EQ(e.find("net.v2"), std::string::npos) << e;
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(dotted, bloccs::bytes("dots"));
    return st ? 0 : fail(3, "push", st);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "dots");
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, ARegistryWithEverySlotHeldByALivePortIsRegistryFull) {
  TestNamespace ns;
  {
    auto reg = bloccs::registry::Registry::open(ns.name(), {.slots = 2});
    ASSERT_TRUE(reg) << describe(reg);
    ASSERT_EQ(reg->slot_count(), 2u);
  }
  Signal ready, stop1;
  auto owner = [&](const std::string& port, const Signal& stop) {
    return spawn([&, port] {
      auto p = Port::start(key(port), {.buffer = 8, .ns = ns.name()});
      if (!p) return fail(2, "start", p);
      ready.notify();
      if (!stop.wait(60s)) return fail(3, "no stop");
      return 0;
    });
  };
  Signal never;
  const pid_t a = owner("a", stop1);
  const pid_t b = owner("b", never);
  ASSERT_TRUE(ready.wait());
  ASSERT_TRUE(ready.wait());

  auto third = Port::start(key("c"), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(is(third, Errc::registry_full)) << describe(third);
  const pid_t kid = spawn([&] {
    auto p = Port::start(key("d"), {.buffer = 8, .ns = ns.name()});
    return is(p, Errc::registry_full) ? 0 : fail(2, "third start in another process", p);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);

  // A stopped port frees its slot.
  stop1.notify();
  EXPECT_EQ(exit_code(wait_child(a)), 0);
  auto c = Port::start(key("c"), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(c) << describe(c);

  // A dead owner's slot is taken for another key when the table is full.
  kill(b, SIGKILL);
  EXPECT_EQ(exit_code(wait_child(b)), 1000 + SIGKILL);
  auto d = Port::start(key("d"), {.buffer = 8, .ns = ns.name()});
  EXPECT_TRUE(d) << "a dead owner's slot was not reused: " << describe(d);
  if (c) c->stop();
  if (d) d->stop();
  // The dead owner of "b" is gone; its segments were removed when its slot was taken over.
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, BadKeysAreBadNameFromStartPushAndPushAfter) {
  TestNamespace ns;
  const std::string p31(31, 'a'), p32(32, 'a');
  std::vector<PortKey> bad = {
      {"", "node", "in"},     {"net", "", "in"},           {"net", "node", ""},
      {p32, "node", "in"},    {"net", p32, "in"},          {"net", "node", p32},
      {"net", "no de", "in"}, {"net", "node", "a/b"},      {"n:t", "node", "in"},
      {".net", "node", "in"}, {"net", "node", "\xc3\xa9"},
  };
  bad.push_back({"net", std::string("no\0de", 5), "in"});  // an embedded NUL
  for (const auto& k : bad) {
    EXPECT_TRUE(is(bloccs::validate_key(k), Errc::bad_name)) << bloccs::to_string(k);
    auto p = Port::start(k, {.buffer = 8, .ns = ns.name()});
    EXPECT_TRUE(is(p, Errc::bad_name)) << bloccs::to_string(k) << ": " << describe(p);
  }
  // The longest parts are fine.
  auto longest = Port::start({p31, p31, p31}, {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(longest) << describe(longest);
  auto dotted = Port::start({"n.e-t_1", "No.de", "in-2"}, {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(dotted) << describe(dotted);

  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (const auto& k : bad) {
      if (auto st = p->push(k, bloccs::bytes("x")); !is(st, Errc::bad_name))
        return fail(3, "push", st);
      if (auto st = p->push_after(k, bloccs::bytes("x"), {}, 1ms); !is(st, Errc::bad_name))
        return fail(4, "push_after", st);
    }
    if (auto st = p->push({p31, p31, p31}, bloccs::bytes("longest")); !st)
      return fail(5, "push 31", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto m = longest->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "longest");
  EXPECT_EQ(dotted->stats().depth, 0u);
  longest->stop();
  dotted->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, ABadNamespaceIsBadName) {
  TestNamespace ns;
  auto p = Port::start(key(), {.buffer = 8, .ns = "no/slash"});
  EXPECT_TRUE(is(p, Errc::bad_name)) << describe(p);
  auto q = Pusher::open("no/slash");
  EXPECT_TRUE(is(q, Errc::bad_name)) << describe(q);
  auto r = Port::start(key(), {.buffer = 8, .ns = std::string(49, 'n')});
  EXPECT_TRUE(is(r, Errc::bad_name)) << describe(r);
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortStart, OutOfRangeOptionsAreBadConfig) {
  TestNamespace ns;
  // Each refused start leaves nothing behind, not even the namespace's registry.
  auto zero = Port::start(key(), {.buffer = 0, .ns = ns.name()});
  EXPECT_TRUE(is(zero, Errc::bad_config)) << describe(zero);
  EXPECT_SHM_CLEAN(ns) << " after buffer = 0";
  auto huge = Port::start(key(), {.buffer = 8, .max_payload = 1u << 30, .ns = ns.name()});
  EXPECT_TRUE(is(huge, Errc::bad_config)) << describe(huge);
  EXPECT_SHM_CLEAN(ns) << " after max_payload = 1 GiB";
  auto no_pushers = Port::start(key(), {.buffer = 8, .max_pushers = 0, .ns = ns.name()});
  EXPECT_TRUE(is(no_pushers, Errc::bad_config)) << describe(no_pushers);
  EXPECT_SHM_CLEAN(ns) << " after max_pushers = 0";
}

// ---- 2. push ------------------------------------------------------------------------------------

TEST(PortPush, OkDeliversPayloadAndMetaToTheOwner) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    Meta meta;
    meta.attempt = 3;
    meta.set("trace", "abc");
    if (auto st = p->push(key(), bloccs::bytes("payload one"), meta); !st)
      return fail(3, "push", st);
    if (auto st = p->push(key(), {}, {}); !st) return fail(4, "push empty", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "payload one");
  EXPECT_EQ(m->meta.attempt, 3u);
  EXPECT_EQ(m->meta.get("trace"), std::optional<std::string_view>("abc"));
  auto e = port->receive(in(5s));
  ASSERT_TRUE(e) << describe(e);
  EXPECT_TRUE(e->payload.empty());
  EXPECT_EQ(e->meta, Meta{});
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortPush, TheOwnerCanPushIntoItsOwnPort) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  auto p = Pusher::open(ns.name());
  ASSERT_TRUE(p) << describe(p);
  ASSERT_TRUE(p->push(key(), bloccs::bytes("self")));
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "self");
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortPush, AMissingKeyIsNoProducerAtOnceAndLeavesNothingBehind) {
  TestNamespace ns;
  // A namespace where nothing ever started: pushing must not leave a registry behind.
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const auto t0 = Clock::now();
    auto st = p->push(key(), bloccs::bytes("x"));
    if (!is(st, Errc::no_producer)) return fail(3, "push to an empty namespace", st);
    if (st.error().message.empty()) return fail(4, "no_producer without a message");
    if (auto st2 = p->push_after(key(), bloccs::bytes("x"), {}, 1ms); !is(st2, Errc::no_producer))
      return fail(5, "push_after to an empty namespace", st2);
    if (Clock::now() - t0 > 1s) return fail(6, "no_producer was not at once");
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  EXPECT_SHM_CLEAN(ns);

  // A namespace with another key registered.
  auto port = Port::start(key("other"), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid2 = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key("in"), bloccs::bytes("x"));
    if (!is(st, Errc::no_producer)) return fail(3, "push to a missing key", st);
    auto st2 = p->push({"net", "other", "other"}, bloccs::bytes("x"));
    if (!is(st2, Errc::no_producer)) return fail(4, "push to a near-miss key", st2);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid2)), 0);
  EXPECT_EQ(port->stats().depth, 0u);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortPush, ParksWhenFullAndCompletesWhenTheConsumerFreesSpace) {
  TestNamespace ns;
  constexpr std::uint64_t kBuffer = 4, kMore = 6;
  auto port = Port::start(key(), {.buffer = kBuffer, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    bloccs::set_push_timeout(std::nullopt);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0; i < kBuffer + kMore; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "push", st);
    return 0;
  });
  ASSERT_TRUE(eventually([&] { return port->stats().parked_pushers == 1; }))
      << "the pusher never parked; depth " << port->stats().depth;
  EXPECT_EQ(port->stats().depth, kBuffer);
  std::this_thread::sleep_for(300ms);
  // Still parked, and counted as parked even while it looks at the owner between sleeps.
  EXPECT_EQ(port->stats().parked_pushers, 1u) << "woke with nothing received";
  EXPECT_EQ(port->stats().depth, kBuffer) << "the bound was exceeded";
  EXPECT_TRUE(running(kid)) << "the pusher finished without waiting for space";

  for (std::uint64_t i = 0; i < kBuffer + kMore; ++i) {
    auto m = port->receive(in(10s));
    ASSERT_TRUE(m) << "message " << i << ": " << describe(m);
    EXPECT_EQ(num(m->payload), i);
    EXPECT_LE(port->stats().depth, kBuffer);
  }
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  EXPECT_EQ(port->stats().parked_pushers, 0u);
  EXPECT_EQ(port->stats().depth, 0u);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// Item 7 of the reliability review: a waiter on an unbounded port must wake at once when the
// link it waits on is sealed (its pushers moved on to the next link) and read to its end. If the
// seal lands after the waiter looked and before it armed, only the re-check after arming can
// see it: receive's re-check did, wait_any's did not, and slept up to 100 ms beside a message.
// Test hooks stop the owner exactly there, and the pusher between making the next link and
// sealing this one.
TEST(PortWaitAny, AWaiterWakesAtOnceWhenItsLinkIsSealedRightBeforeItArms) {
  TestNamespace ns;
  Reaper reap;
  struct Board {
    std::atomic<int> received{0};
    std::atomic<std::int64_t> last_at{0};
  };
  Shared<Board> b;
  Signal ready;
  constexpr std::uint32_t kPayload = 60 * 1024;  // 17 fill a link of 1 MiB
  const pid_t owner = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "wait_any.park:stop", 1);
    auto p = Port::start(key(), {.buffer = std::nullopt, .max_payload = kPayload, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    Port* ports[] = {&*p};
    for (;;) {
      if (auto st = bloccs::wait_any(ports, in(60s), nullptr); !st) return fail(3, "wait_any", st);
      auto n = p->try_receive_batch([&](const MessageView&) { ++b->received; }, 1000);
      if (!n) return fail(4, "receive", n);
      if (*n) b->last_at = now_ns();
    }
  }));
  ASSERT_TRUE(ready.wait());
  ASSERT_TRUE(wait_stopped(owner)) << "the owner never reached its first wait";
  const pid_t pusher = reap(spawn([&] {
    setenv("BLOCCS_TEST_HOOK", "chain.seal:stop", 1);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const std::vector<std::byte> big(kPayload);
    for (int i = 0; i < 18; ++i)  // the 18th finds link 0 full: it stops before sealing it
      if (auto st = p->push(key(), big); !st) return fail(3, "push", st);
    return 0;
  }));
  ASSERT_TRUE(wait_stopped(pusher)) << "the pusher never had to seal link 0";
  // The owner drains link 0 (it is not sealed yet), then looks again and stops before arming.
  for (;;) {
    kill(owner, SIGCONT);
    ASSERT_TRUE(wait_stopped(owner));
    if (b->received.load() == 17) break;
    ASSERT_LT(b->received.load(), 17);
  }
  // Now the pusher seals link 0 and puts its 18th message into link 1, waking nobody: the owner
  // is not armed yet.
  kill(pusher, SIGCONT);
  EXPECT_EQ(exit_code(wait_child(pusher)), 0);
  const std::int64_t t0 = now_ns();
  kill(owner, SIGCONT);  // it arms link 0's line, and re-checks
  ASSERT_TRUE(eventually([&] { return b->received.load() == 18; }, 5s));
  const double woke_ms = ms(b->last_at.load() - t0);
  std::printf("the 18th message arrived %.2f ms after the waiter went on\n", woke_ms);
  EXPECT_LT(woke_ms, 50.0) << "the waiter slept beside a sealed, read link";
  kill(owner, SIGKILL);
}

TEST(PortPush, AnUnboundedPortTakesAHundredThousandMessagesWithNoConsumerThenDeliversThemInOrder) {
  TestNamespace ns;
  const std::uint64_t count = scaled(100'000);
  constexpr std::size_t kMax = 64;
  auto port = Port::start(key(), {.buffer = std::nullopt, .max_payload = kMax, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    // A parked push would time out here: nobody consumes while it runs.
    bloccs::set_push_timeout(200ms);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    std::vector<std::byte> msg;
    for (std::uint64_t seq = 0; seq < count; ++seq) {
      fill_message(msg, 1, seq, message_size(1, seq, kMax));
      Meta meta;
      meta.attempt = static_cast<std::uint32_t>(seq);
      if (auto st = p->push(key(), msg, meta); !st) {
        std::fprintf(stderr, "seq %llu\n", static_cast<unsigned long long>(seq));
        return fail(is(st, Errc::timeout) ? 3 : 4, "push into the unbounded port", st);
      }
    }
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid, 120s)), 0);
  const auto stats = port->stats();
  EXPECT_EQ(stats.depth, count);
  EXPECT_EQ(stats.parked_pushers, 0u);
  std::printf("unbounded port: %llu messages span %u segment(s)\n",
              static_cast<unsigned long long>(count), stats.links);

  StreamChecker checker(2, kMax);
  std::string failure;
  std::uint64_t meta_mismatch = 0;
  while (checker.total() < count && failure.empty()) {
    const std::uint64_t before = checker.total();
    auto n = port->receive_batch(
        [&](const MessageView& m) {
          const std::uint64_t seq = checker.next(1);
          if (failure.empty()) failure = checker.check(m.payload);
          if (m.meta.attempt() != static_cast<std::uint32_t>(seq)) ++meta_mismatch;
        },
        4096, in(10s));
    ASSERT_TRUE(n) << describe(n) << " after " << before << " messages";
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(checker.next(1), count);
  EXPECT_EQ(meta_mismatch, 0u);
  auto rest = port->try_receive();
  ASSERT_TRUE(rest) << describe(rest);
  EXPECT_FALSE(rest->has_value());
  port->stop();
  EXPECT_SHM_CLEAN(ns);  // the chained segments too
}

TEST(PortPush, APayloadOverMaxPayloadIsPayloadTooLargeAndNothingIsEnqueued) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .max_payload = 100, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const std::vector<std::byte> big(101, std::byte{7}), fits(100, std::byte{8}), huge(1 << 20);
    if (auto st = p->push(key(), big); !is(st, Errc::payload_too_large))
      return fail(3, "101 bytes", st);
    if (auto st = p->push(key(), huge); !is(st, Errc::payload_too_large))
      return fail(4, "1 MiB", st);
    if (auto st = p->push_after(key(), big, {}, 1ms); !is(st, Errc::payload_too_large))
      return fail(5, "push_after 101 bytes", st);
    if (auto st = p->push(key(), fits); !st) return fail(6, "100 bytes", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(m->payload, std::vector<std::byte>(100, std::byte{8}));
  std::this_thread::sleep_for(50ms);  // a wrongly accepted push_after would be due by now
  auto rest = port->try_receive();
  ASSERT_TRUE(rest) << describe(rest);
  EXPECT_FALSE(rest->has_value()) << "an oversized payload was enqueued";
  EXPECT_EQ(port->stats().pending_after, 0u);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// Item 2 of the reliability review: a pusher process that re-execs itself is a new program; the
// single pusher slot its old program held is free (before, it kept it for ever: pusher_limit
// naming its own pid, for itself and everyone else).
TEST(PortPush, APusherThatExecsGivesUpItsSinglePusherSlot) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 64, .single_pusher = true, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Signal pushed;
  const pid_t first = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    if (auto st = p->push(key(), bloccs::bytes("before the exec")); !st) return fail(3, "push", st);
    pushed.notify();
    execl("/bin/sleep", "sleep", "30", nullptr);
    return fail(4, "exec failed");
  });
  Reaper reap;
  reap(first);
  ASSERT_TRUE(pushed.wait());
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "before the exec");
  const pid_t next = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    // The exec'd program may take a moment to be through its exec.
    for (int tries = 0;; ++tries) {
      auto st = p->push(key(), bloccs::bytes("after"));
      if (st) return 0;
      if (!is(st, Errc::pusher_limit) || tries == 200) return fail(3, "push", st);
      std::this_thread::sleep_for(5ms);
    }
  });
  EXPECT_EQ(exit_code(wait_child(next)), 0);
  auto after = port->receive(in(5s));
  ASSERT_TRUE(after) << describe(after);
  EXPECT_EQ(str(after->payload), "after");
  EXPECT_TRUE(running(first));
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortPush, ASinglePusherPortWorksWithOnePusherAndRefusesASecondAtOnce) {
  TestNamespace ns;
  const std::uint64_t count = scaled(100'000);
  constexpr std::size_t kMax = 48;
  auto port = Port::start(
      key(), {.buffer = 64, .max_payload = kMax, .single_pusher = true, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Signal attached, second_done;
  const pid_t first = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    std::vector<std::byte> msg;
    fill_message(msg, 1, 0, message_size(1, 0, kMax));
    if (auto st = p->push(key(), msg); !st) return fail(3, "first push", st);
    attached.notify();
    if (!second_done.wait(60s)) return fail(4, "the second pusher never finished");
    for (std::uint64_t seq = 1; seq < count; ++seq) {
      fill_message(msg, 1, seq, message_size(1, seq, kMax));
      if (auto st = p->push(key(), msg); !st) return fail(5, "push", st);
    }
    return 0;
  });
  ASSERT_TRUE(attached.wait());
  const pid_t second = spawn([&] {
    bloccs::set_push_timeout(5s);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    const auto t0 = Clock::now();
    auto st = p->push(key(), bloccs::bytes("intruder"));
    if (!is(st, Errc::pusher_limit)) return fail(3, "second simultaneous pusher", st);
    if (st.error().message.empty()) return fail(4, "pusher_limit without a message");
    if (Clock::now() - t0 > 1s) return fail(5, "pusher_limit was not at once");
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(second)), 0);
  second_done.notify();

  StreamChecker checker(2, kMax);
  std::string failure;
  while (checker.total() < count && failure.empty()) {
    auto n = port->receive_batch(
        [&](const MessageView& m) {
          if (failure.empty()) failure = checker.check(m.payload);
        },
        1024, in(10s));
    ASSERT_TRUE(n) << describe(n) << " after " << checker.total();
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(exit_code(wait_child(first)), 0);

  // Once the first pusher has gone, another process may push.
  const pid_t third = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("next"));
    return st ? 0 : fail(3, "push after the first pusher exited", st);
  });
  EXPECT_EQ(exit_code(wait_child(third)), 0);
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "next");
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortPush, FourPusherProcessesIntoEightPortsLoseNothingAndKeepEachPushersOrder) {
  TestNamespace ns;
  constexpr std::uint32_t kPushers = 4, kPorts = 8;
  constexpr std::size_t kMax = 128;
  const std::uint64_t each = scaled(100'000);
  Signal ready;
  const pid_t owner = spawn([&] {
    std::vector<Port> ports;
    for (std::uint32_t i = 0; i < kPorts; ++i) {
      auto p = Port::start(key("p" + std::to_string(i)),
                           {.buffer = 1024, .max_payload = kMax, .ns = ns.name()});
      if (!p) return fail(2, "start", p);
      ports.push_back(std::move(*p));
    }
    ready.notify(kPushers);
    std::vector<StreamChecker> checkers(kPorts, StreamChecker(kPushers, kMax));
    std::string failure;
    std::uint64_t got = 0, wrong_meta = 0;
    const std::uint64_t want = std::uint64_t{kPushers} * kPorts * each;
    const auto give_up = Clock::now() + 250s;
    std::size_t rr = 0;
    while (got < want) {
      std::size_t round = 0;
      for (std::uint32_t i = 0; i < kPorts; ++i) {
        auto n = ports[i].try_receive_batch(
            [&](const MessageView& m) {
              if (failure.empty()) {
                failure = checkers[i].check(m.payload);
                if (!failure.empty()) failure = "port " + std::to_string(i) + ": " + failure;
              }
              if (m.meta.attempt() != i) ++wrong_meta;
            },
            4096);
        if (!n) return fail(3, "try_receive_batch", n);
        round += *n;
      }
      got += round;
      if (!failure.empty()) return fail(4, failure.c_str());
      if (round == 0) {
        if (Clock::now() > give_up) {
          std::fprintf(stderr, "got %llu of %llu\n", static_cast<unsigned long long>(got),
                       static_cast<unsigned long long>(want));
          return fail(5, "gave up waiting for messages");
        }
        auto n = ports[rr].receive_batch(
            [&](const MessageView& m) {
              if (failure.empty()) {
                failure = checkers[rr].check(m.payload);
                if (!failure.empty()) failure = "port " + std::to_string(rr) + ": " + failure;
              }
              if (m.meta.attempt() != rr) ++wrong_meta;
            },
            4096, in(1ms));
        if (!n && n.code() != Errc::timeout) return fail(6, "receive_batch", n);
        if (n) got += *n;
        rr = (rr + 1) % kPorts;
      }
    }
    if (!failure.empty()) return fail(4, failure.c_str());
    if (wrong_meta) return fail(7, "a message carried another port's meta");
    for (std::uint32_t i = 0; i < kPorts; ++i)
      for (std::uint32_t id = 0; id < kPushers; ++id)
        if (checkers[i].next(id) != each) return fail(8, "a stream is incomplete");
    for (auto& p : ports)
      if (p.stats().depth != 0) return fail(9, "messages beyond the streams");
    std::printf("owner: %llu messages received and checked\n",
                static_cast<unsigned long long>(got));
    std::fflush(stdout);
    return 0;
  });
  std::vector<pid_t> pushers;
  for (std::uint32_t id = 0; id < kPushers; ++id)
    pushers.push_back(spawn([&, id] {
      if (!ready.wait()) return fail(2, "the owner never started");
      auto p = Pusher::open(ns.name());
      if (!p) return fail(3, "open", p);
      std::vector<PortKey> keys;
      for (std::uint32_t i = 0; i < kPorts; ++i) keys.push_back(key("p" + std::to_string(i)));
      std::vector<Meta> metas(kPorts);
      for (std::uint32_t i = 0; i < kPorts; ++i) metas[i].attempt = i;
      std::vector<std::byte> msg;
      for (std::uint64_t seq = 0; seq < each; ++seq) {
        fill_message(msg, id, seq, message_size(id, seq, kMax));
        // Rotate the starting port so that the pushers do not move in lockstep.
        for (std::uint32_t j = 0; j < kPorts; ++j) {
          const std::uint32_t i = (j + id + static_cast<std::uint32_t>(seq)) % kPorts;
          if (auto st = p->push(keys[i], msg, metas[i]); !st) return fail(4, "push", st);
        }
      }
      return 0;
    }));
  for (pid_t k : pushers) EXPECT_EQ(exit_code(wait_child(k, 280s)), 0);
  EXPECT_EQ(exit_code(wait_child(owner, 60s)), 0);
  EXPECT_SHM_CLEAN(ns);
}

// ---- 3. push_timeout ----------------------------------------------------------------------------

TEST(PortPushTimeout, SetPushTimeoutBoundsTheParkAndEnqueuesNothing) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 2, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto def = bloccs::push_timeout();
    if (!def) return fail(2, "default push_timeout", def);
    if (def->has_value()) return fail(3, "the default push_timeout is not infinite");
    bloccs::set_push_timeout(150ms);
    auto t = bloccs::push_timeout();
    if (!t || *t != std::optional<std::chrono::milliseconds>(150ms))
      return fail(4, "push_timeout()");
    return fill_then_time_out(ns.name(), 150ms);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  expect_only_the_two_filling_messages(*port);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// ---- 5. meta ------------------------------------------------------------------------------------

namespace {

// attempt, binary keys and values (NULs and 0xff), an empty value, the longest key and value.
Meta rich_meta() {
  Meta m;
  m.attempt = 0xfffffffeu;
  m.values.emplace_back("a", "1");
  m.values.emplace_back(std::string("\0\x01\xff", 3), std::string("\xff\0x\0", 4));
  m.values.emplace_back("empty", "");
  m.values.emplace_back(std::string(bloccs::kMetaMaxKey, 'k'),
                        std::string(bloccs::kMetaMaxValue, '\x80'));
  m.values.emplace_back("z", "last");
  return m;
}

// Checks a received meta in place against `want`, pair by pair in order. Empty string if equal.
std::string compare(const bloccs::MetaView& got, const Meta& want) {
  if (got.attempt() != want.attempt) return "attempt " + std::to_string(got.attempt());
  if (got.size() != want.values.size()) return "pairs " + std::to_string(got.size());
  std::size_t i = 0;
  std::string diff;
  got.for_each([&](std::string_view k, std::string_view v) {
    if (diff.empty() &&
        (i >= want.values.size() || k != want.values[i].first || v != want.values[i].second))
      diff = "pair " + std::to_string(i) + " differs";
    ++i;
  });
  if (!diff.empty()) return diff;
  for (const auto& [k, v] : want.values)
    if (got.get(k) != std::optional<std::string_view>(v)) return "get(" + k + ") differs";
  if (got.copy() != want) return "copy() differs";
  return {};
}

}  // namespace

TEST(PortMeta, ArrivesUnchangedViaPushAndPushAfter) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Meta exact;  // exactly kMetaMaxBytes encoded: 8 + (3 + 64 + 256) + (3 + 10 + 168)
  exact.attempt = 1;
  exact.values.emplace_back(std::string(64, 'K'), std::string(256, 'V'));
  exact.values.emplace_back(std::string(10, 'k'), std::string(168, 'v'));
  Meta many;  // kMetaMaxPairs pairs
  for (std::size_t i = 0; i < bloccs::kMetaMaxPairs; ++i)
    many.values.emplace_back("k" + std::to_string(i), std::string(i, 'v'));
  const std::vector<std::pair<std::string, Meta>> cases = {
      {"rich", rich_meta()}, {"empty", Meta{}}, {"exact", exact}, {"many", many}};

  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    int rc = 0;
    for (const auto& [name, meta] : cases)
      if (auto st = p->push(key(), bloccs::bytes("push " + name), meta); !st)
        rc = fail(3, name.c_str(), st);
    for (const auto& [name, meta] : cases)
      if (auto st = p->push_after(key(), bloccs::bytes("after " + name), meta, 10ms); !st)
        rc = fail(4, name.c_str(), st);
    return rc;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  std::size_t seen = 0;
  while (seen < 2 * cases.size()) {
    auto n = port->receive_batch(
        [&](const MessageView& m) {
          const std::string payload = str(m.payload);
          const std::string name = payload.substr(payload.find(' ') + 1);
          auto it =
              std::find_if(cases.begin(), cases.end(), [&](auto& c) { return c.first == name; });
          ASSERT_NE(it, cases.end()) << payload;
          EXPECT_EQ(compare(m.meta, it->second), "") << payload;
          ++seen;
        },
        16, in(5s));
    ASSERT_TRUE(n) << describe(n) << " after " << seen;
  }
  // And through receive(), as an owned Message.
  auto p = Pusher::open(ns.name());
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->push(key(), bloccs::bytes("owned"), rich_meta()));
  auto m = port->receive(in(5s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(m->meta, rich_meta());
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortMeta, OversizedMetaIsBadMetaAndNothingIsEnqueued) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  std::vector<std::pair<std::string, Meta>> bad;
  {
    Meta m;
    for (std::size_t i = 0; i <= bloccs::kMetaMaxPairs; ++i)
      m.values.emplace_back("k" + std::to_string(i), "");
    bad.emplace_back("too many pairs", m);
  }
  {
    Meta m;
    m.values.emplace_back(std::string(bloccs::kMetaMaxKey + 1, 'k'), "v");
    bad.emplace_back("key too long", m);
  }
  {
    Meta m;
    m.values.emplace_back("k", std::string(bloccs::kMetaMaxValue + 1, 'v'));
    bad.emplace_back("value too long", m);
  }
  {
    Meta m;  // 8 + 323 + 182 = 513
    m.values.emplace_back(std::string(64, 'K'), std::string(256, 'V'));
    m.values.emplace_back(std::string(10, 'k'), std::string(169, 'v'));
    bad.emplace_back("total too big", m);
  }
  {
    Meta m;
    m.values.emplace_back("", "v");
    bad.emplace_back("empty key", m);
  }
  // (Built from a list: GCC 12 at -O3 misreads two emplace_backs here as out of bounds.)
  bad.emplace_back("duplicate key", Meta{.attempt = 0, .values = {{"same", "1"}, {"same", "2"}}});
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    int rc = 0;
    for (const auto& [name, meta] : bad) {
      if (auto st = p->push(key(), bloccs::bytes(name), meta); !is(st, Errc::bad_meta))
        rc = fail(3, ("push: " + name).c_str(), st);
      if (auto st = p->push_after(key(), bloccs::bytes(name), meta, 1ms); !is(st, Errc::bad_meta))
        rc = fail(4, ("push_after: " + name).c_str(), st);
    }
    return rc;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  std::this_thread::sleep_for(50ms);  // a wrongly accepted push_after would be due by now
  EXPECT_EQ(port->stats().depth, 0u);
  EXPECT_EQ(port->stats().pending_after, 0u);
  auto rest = port->try_receive();
  ASSERT_TRUE(rest) << describe(rest);
  EXPECT_FALSE(rest->has_value()) << "enqueued: " << str((*rest)->payload);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// ---- receiving ----------------------------------------------------------------------------------

TEST(PortReceive, ReceiveWithADeadlineTimesOutWhenNothingComes) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const auto t0 = Clock::now();
  auto m = port->receive(in(150ms));
  const auto waited = Clock::now() - t0;
  EXPECT_TRUE(is(m, Errc::timeout)) << describe(m);
  EXPECT_GE(waited, 150ms);
  EXPECT_LT(waited, 5s);
  int calls = 0;
  auto n = port->receive_batch([&](const MessageView&) { ++calls; }, 8, in(50ms));
  EXPECT_TRUE(is(n, Errc::timeout)) << describe(n);
  EXPECT_EQ(calls, 0);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortReceive, ABlockedReceiveWakesWhenAnotherProcessPushes) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    std::this_thread::sleep_for(200ms);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("wake"));
    return st ? 0 : fail(3, "push", st);
  });
  auto m = port->receive(in(10s));
  ASSERT_TRUE(m) << describe(m);
  EXPECT_EQ(str(m->payload), "wake");
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortReceive, TryReceiveReturnsAnEmptyOptionalWhenNothingIsQueued) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  auto m = port->try_receive();
  ASSERT_TRUE(m) << describe(m);
  EXPECT_FALSE(m->has_value());
  int calls = 0;
  auto n = port->try_receive_batch([&](const MessageView&) { ++calls; }, 8);
  ASSERT_TRUE(n) << describe(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(calls, 0);

  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    auto st = p->push(key(), bloccs::bytes("one"));
    return st ? 0 : fail(3, "push", st);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  auto one = port->try_receive();
  ASSERT_TRUE(one) << describe(one);
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ(str((*one)->payload), "one");
  auto none = port->try_receive();
  ASSERT_TRUE(none) << describe(none);
  EXPECT_FALSE(none->has_value());
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

TEST(PortReceive, ReceiveBatchDrainsUpToNAtOnceInArrivalOrder) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 16, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0; i < 10; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(3, "push", st);
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  ASSERT_EQ(port->stats().depth, 10u);
  std::vector<std::uint64_t> got;
  auto take = [&](const MessageView& m) { got.push_back(num(m.payload)); };
  auto a = port->receive_batch(take, 4, in(5s));
  ASSERT_TRUE(a) << describe(a);
  EXPECT_EQ(*a, 4u);
  EXPECT_EQ(port->stats().depth, 6u);
  auto b = port->try_receive_batch(take, 4);
  ASSERT_TRUE(b) << describe(b);
  EXPECT_EQ(*b, 4u);
  auto c = port->receive_batch(take, 100, in(5s));
  ASSERT_TRUE(c) << describe(c);
  EXPECT_EQ(*c, 2u);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(port->stats().depth, 0u);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// ---- footprint -------------------------------------------------------------------------------

namespace {

// Bytes of /dev/shm the namespace's segments take (their sizes; the tmpfs allocates on touch,
// so this is what they can grow to).
std::uint64_t namespace_bytes(const TestNamespace& ns) {
  std::uint64_t total = 0;
  for (const std::string& name : ns.leftovers()) {
    struct stat st {};
    if (stat(("/dev/shm/" + name).c_str(), &st) == 0)
      total += static_cast<std::uint64_t>(st.st_size);
  }
  return total;
}

}  // namespace

// Docker gives a container 64 MB of /dev/shm: it holds at least 50 default ports, each with its
// ring, due lane and push_after link. Eight are started (ThreadSanitizer follows at most 64
// locks a thread holds, and a port's keeper holds several) and their sizes, registry included,
// counted for fifty.
TEST(PortFootprint, ADefaultPortTakesLessThanAFiftiethOfAContainersSixtyFourMegabytes) {
  TestNamespace ns;
  constexpr int kPorts = 8;
  std::vector<Port> ports;
  for (int i = 0; i < kPorts; ++i) {
    auto p = Port::start(key("in" + std::to_string(i)), {.ns = ns.name()});
    ASSERT_TRUE(p) << describe(p);
    ports.push_back(std::move(p).value());
  }
  const std::uint64_t per_port = namespace_bytes(ns) / kPorts;
  RecordProperty("bytes_per_default_port", static_cast<int>(per_port));
  EXPECT_GT(per_port, 500u * 1000) << "the segments were not all counted";
  EXPECT_LE(50 * per_port, 64u * 1000 * 1000) << per_port << " bytes per default port";
  ports.clear();
  EXPECT_SHM_CLEAN(ns);
}

// typical_payload sizes the ring: a port sized for its max_payload holds `buffer` messages of
// that size without parking; a default one parks on bytes first, and frees as it is read.
TEST(PortFootprint, TheTypicalPayloadSizesTheRingAndLargerMessagesParkOnBytes) {
  TestNamespace ns;
  const std::vector<std::byte> big(4096, std::byte{7});
  auto roomy = Port::start(key("roomy"), {.buffer = 64, .typical_payload = 4096, .ns = ns.name()});
  auto lean = Port::start(key("lean"), {.buffer = 64, .ns = ns.name()});
  ASSERT_TRUE(roomy && lean);
  const pid_t kid = spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (int i = 0; i < 64; ++i)
      if (auto st = p->push(key("roomy"), big, {}, in(1s)); !st) return fail(3, "roomy push", st);
    int fitted = 0;
    while (p->push(key("lean"), big, {}, in(20ms))) ++fitted;
    if (fitted >= 64 || fitted < 2) return fail(4, "the lean port's ring is not sized by bytes");
    return fitted;
  });
  const int fitted = exit_code(wait_child(kid));
  ASSERT_GE(fitted, 2);
  EXPECT_EQ(roomy->stats().depth, 64u);
  EXPECT_EQ(lean->stats().depth, static_cast<std::uint64_t>(fitted));
  RecordProperty("lean_port_4k_messages", fitted);
}
