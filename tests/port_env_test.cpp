// SPDX-License-Identifier: Apache-2.0
// The process-wide settings read from the environment: BLOCCS_PUSH_TIMEOUT_MS and
// BLOCCS_NAMESPACE. They are read at a process's first use and the value is inherited across
// fork, so this binary's test process never pushes itself: each child sets the variable and then
// reads it afresh. (In port_test, the parent pushes, and its children would inherit its reading.)
#include <cstdlib>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "port_test_support.hpp"

using bloccs::Errc;
using bloccs::Meta;
using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;

TEST(PortPush, TheProcessWideFunctionsUseBloccsNamespaceAndOneThreadLocalPusher) {
  TestNamespace ns;
  // Forked before this process runs a timer thread: the child starts a thread of its own.
  Signal go;
  const pid_t kid = spawn([&] {
    if (!go.wait()) return fail(9, "never told to go");
    setenv("BLOCCS_NAMESPACE", ns.name().c_str(), 1);
    Meta meta;
    meta.attempt = 2;
    if (auto st = bloccs::push(key(), bloccs::bytes("free push"), meta); !st) return fail(2, "push", st);
    if (auto st = bloccs::push_after(key(), bloccs::bytes("free push_after"), meta, 20ms); !st)
      return fail(3, "push_after", st);
    if (auto st = bloccs::push(key("missing"), bloccs::bytes("x")); !is(st, Errc::no_producer))
      return fail(4, "push to a missing key", st);
    // Another thread gets its own Pusher.
    int thread_rc = 0;
    std::thread t([&] {
      if (auto st = bloccs::push(key(), bloccs::bytes("from a thread")); !st) thread_rc = 5;
    });
    t.join();
    return thread_rc;
  });
  auto port = Port::start(key(), {.buffer = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  go.notify();
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i) {
    auto m = port->receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(m->meta.attempt, str(m->payload) == "from a thread" ? 0u : 2u);
    got.push_back(str(m->payload));
  }
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"free push", "free push_after", "from a thread"}));
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}


TEST(PortPushTimeout, TheEnvironmentVariableSetsIt) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 2, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  const pid_t kid = spawn([&] {
    setenv("BLOCCS_PUSH_TIMEOUT_MS", "150", 1);
    auto t = bloccs::push_timeout();
    if (!t) return fail(2, "push_timeout()", t);
    if (*t != std::optional<std::chrono::milliseconds>(150ms)) return fail(3, "push_timeout() is not 150 ms");
    return fill_then_time_out(ns.name(), 150ms);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  expect_only_the_two_filling_messages(*port);

  // "infinite" is infinite, and set_push_timeout overrides the environment.
  const pid_t kid2 = spawn([&] {
    setenv("BLOCCS_PUSH_TIMEOUT_MS", "infinite", 1);
    auto t = bloccs::push_timeout();
    if (!t) return fail(2, "push_timeout() with infinite", t);
    if (t->has_value()) return fail(3, "\"infinite\" is not infinite");
    bloccs::set_push_timeout(100ms);
    return fill_then_time_out(ns.name(), 100ms);
  });
  EXPECT_EQ(exit_code(wait_child(kid2)), 0);
  expect_only_the_two_filling_messages(*port);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}


TEST(PortPushTimeout, ABadEnvironmentVariableIsBadConfigForPushTooAndEnqueuesNothing) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 2, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  int n = 0;
  for (const char* bad : {"abc", "-5", "12ms", "1.5", " 100x", "99999999999999999999999"}) {
    ++n;
    const pid_t kid = spawn([&] {
      setenv("BLOCCS_PUSH_TIMEOUT_MS", bad, 1);
      auto t = bloccs::push_timeout();
      if (!is(t, Errc::bad_config)) return fail(2, "push_timeout()", t);
      if (t.error().message.find("BLOCCS_PUSH_TIMEOUT_MS") == std::string::npos)
        return fail(3, "the error does not name the variable");
      auto p = Pusher::open(ns.name());
      if (!p) return fail(4, "open", p);
      auto st = p->push(key(), num(7));
      if (!is(st, Errc::bad_config)) return fail(5, "push with a bad BLOCCS_PUSH_TIMEOUT_MS", st);
      return 0;
    });
    EXPECT_EQ(exit_code(wait_child(kid)), 0) << "BLOCCS_PUSH_TIMEOUT_MS=\"" << bad << "\"";
  }
  EXPECT_EQ(port->stats().depth, 0u);

  // set_push_timeout overrides even a bad variable.
  const pid_t kid = spawn([&] {
    setenv("BLOCCS_PUSH_TIMEOUT_MS", "abc", 1);
    bloccs::set_push_timeout(100ms);
    auto t = bloccs::push_timeout();
    if (!t || *t != std::optional<std::chrono::milliseconds>(100ms))
      return fail(2, "set_push_timeout did not override a bad variable");
    return fill_then_time_out(ns.name(), 100ms);
  });
  EXPECT_EQ(exit_code(wait_child(kid)), 0);
  expect_only_the_two_filling_messages(*port);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// Item 16 of the reliability review: a huge push_timeout, by setting or by environment, used to
// overflow the milliseconds-to-nanoseconds conversion (undefined behaviour: the sanitizer build
// traps; elsewhere a push could time out at once). It now means "as long as can be": the push
// parks, and completes when the consumer frees space.
TEST(PortPushTimeout, AHugeTimeoutParksAsLongAsItTakesInsteadOfOverflowing) {
  TestNamespace ns;
  auto port = Port::start(key(), {.buffer = 2, .max_payload = 8, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  for (const char* how : {"environment", "setting", "u64"}) {
    const pid_t kid = spawn([&] {
      if (std::string(how) == "environment")
        setenv("BLOCCS_PUSH_TIMEOUT_MS", "9223372036854775807", 1);
      else if (std::string(how) == "u64")
        setenv("BLOCCS_PUSH_TIMEOUT_MS", "18446744073709551615", 1);
      else
        bloccs::set_push_timeout(std::chrono::milliseconds::max());
      auto p = Pusher::open(ns.name());
      if (!p) return fail(2, "open", p);
      for (std::uint64_t i = 0; i < 2; ++i)
        if (auto st = p->push(key(), num(i)); !st) return fail(3, "fill", st);
      const auto t0 = Clock::now();
      auto st = p->push(key(), num(2));  // parks until the parent receives
      if (!st) return fail(4, "the parked push", st);
      if (Clock::now() - t0 < 150ms) return fail(5, "it did not park");
      return 0;
    });
    ASSERT_TRUE(eventually([&] { return port->stats().parked_pushers == 1; })) << how;
    std::this_thread::sleep_for(200ms);
    for (std::uint64_t i = 0; i < 3; ++i) {
      auto m = port->receive(in(5s));
      ASSERT_TRUE(m) << how << ": " << describe(m);
      EXPECT_EQ(num(m->payload), i) << how;
    }
    EXPECT_EQ(exit_code(wait_child(kid)), 0) << how;
  }
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}
