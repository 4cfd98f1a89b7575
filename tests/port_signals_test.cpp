// SPDX-License-Identifier: Apache-2.0
// stop_on_signals (item 21 of the reliability review): Ctrl-C or `kill` used to kill a program
// blocked in receive or parked in push with its default action, leaving its ports registered
// and its segments in /dev/shm for the next start to take over. Now the first SIGINT or SIGTERM
// ends every blocking wait with Errc::stopping, main returns, and nothing is left; a second one
// ends the process at once.
#include <pthread.h>
#include <signal.h>

#include <thread>

#include <gtest/gtest.h>

#include "bloccs/port.hpp"
#include "bloccs/wait_any.hpp"
#include "port_test_support.hpp"

using bloccs::Errc;
using bloccs::Port;
using bloccs::Pusher;
using namespace bloccs::test;

namespace {

bool says_stop(const bloccs::Error& e) {
  return e.message.find("asked to stop") != std::string::npos &&
         e.message.find("return from main") != std::string::npos;
}

struct Waited {
  std::atomic<int> code{-1};        // Errc of the wait that ended, as an int
  std::atomic<bool> worded{false};  // its message says what happened and what to do
  std::atomic<std::int64_t> took_ns{0};
};

template <class R>
void record(Waited& w, const R& r, std::int64_t since) {
  w.took_ns = now_ns() - since;
  w.code = r.ok() ? -2 : static_cast<int>(r.code());
  w.worded = !r.ok() && says_stop(r.error());
}

}  // namespace

// An owner blocked in receive: SIGTERM ends the receive, main returns, and the port's segments
// and registry entry go with it. Before, the signal killed it and everything stayed.
TEST(PortSignals, SigtermEndsABlockedReceiveAndTheOwnerLeavesNothingBehind) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  Shared<Waited> w;
  const pid_t owner = reap(spawn([&] {
    if (auto st = bloccs::stop_on_signals(); !st) return fail(2, "stop_on_signals", st);
    if (bloccs::stop_requested()) return fail(3, "a stop was requested before any signal");
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(4, "start", p);
    ready.notify();
    const auto t0 = now_ns();
    auto m = p->receive();  // no deadline: only the signal ends it
    record(*w, m, t0);
    if (!bloccs::stop_requested()) return fail(5, "stop_requested is false after the signal");
    return 0;  // ~Port stops the port
  }));
  ASSERT_TRUE(ready.wait());
  std::this_thread::sleep_for(100ms);  // parked on the futex by now
  const auto sent = now_ns();
  kill(owner, SIGTERM);
  EXPECT_EQ(exit_code(wait_child(owner, 10s)), 0) << "SIGTERM killed the owner";
  EXPECT_EQ(w->code.load(), static_cast<int>(Errc::stopping));
  EXPECT_TRUE(w->worded) << "the error does not say that a stop was asked for and what to do";
  EXPECT_LT(ms(now_ns() - sent), 2000.0);
  EXPECT_SHM_CLEAN(ns);
}

// Under load a receive never waits, yet the stop must still end the loop: a blocking receive
// returns stopping even with messages ready, and try_receive then drains what is queued.
TEST(PortSignals, AReceiveLoopUnderLoadStopsAndTryReceiveDrainsTheRest) {
  TestNamespace ns;
  Reaper reap;
  Signal ready, flowing;
  struct Count {
    std::atomic<std::uint64_t> received{0};
    std::atomic<std::uint64_t> drained{0};
    std::atomic<int> code{-1};  // the Errc that ended the receive loop
  };
  Shared<Count> c;
  const pid_t owner = reap(spawn([&] {
    if (auto st = bloccs::stop_on_signals(); !st) return fail(2, "stop_on_signals", st);
    auto p = Port::start(key(), {.buffer = 64, .ns = ns.name()});
    if (!p) return fail(3, "start", p);
    ready.notify();
    for (;;) {
      auto m = p->receive(in(30s));
      if (!m) {
        c->code = static_cast<int>(m.code());
        break;
      }
      if (++c->received == 1000) flowing.notify();
    }
    // What is queued is still there to take (bounded: the pusher goes on until we are gone).
    for (int i = 0; i < 64; ++i) {
      auto m = p->try_receive();
      if (!m) return fail(4, "try_receive after the stop", m);
      if (!m->has_value()) break;
      ++c->drained;
    }
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  const pid_t pusher = reap(spawn([&] {
    auto p = Pusher::open(ns.name());
    if (!p) return fail(2, "open", p);
    for (std::uint64_t i = 0;; ++i)  // until the owner is gone
      if (auto st = p->push(key(), num(i)); !st) return st.code() == Errc::no_producer ? 0 : 3;
  }));
  ASSERT_TRUE(flowing.wait());
  kill(owner, SIGTERM);
  EXPECT_EQ(exit_code(wait_child(owner, 10s)), 0) << "the receive loop did not stop";
  EXPECT_EQ(c->code.load(), static_cast<int>(Errc::stopping));
  EXPECT_GE(c->received.load(), 1000u);
  EXPECT_EQ(exit_code(wait_child(pusher, 10s)), 0) << "the pusher did not get no_producer";
  EXPECT_SHM_CLEAN(ns);
}

// A pusher parked on a full port: SIGINT ends the push with stopping and enqueues nothing.
TEST(PortSignals, SigintEndsAParkedPushAndNothingIsEnqueued) {
  TestNamespace ns;
  Reaper reap;
  auto port = Port::start(key(), {.buffer = 2, .ns = ns.name()});
  ASSERT_TRUE(port) << describe(port);
  Shared<Waited> w;
  const pid_t pusher = reap(spawn([&] {
    if (auto st = bloccs::stop_on_signals(); !st) return fail(2, "stop_on_signals", st);
    auto p = Pusher::open(ns.name());
    if (!p) return fail(3, "open", p);
    for (std::uint64_t i = 0; i < 2; ++i)
      if (auto st = p->push(key(), num(i)); !st) return fail(4, "filling push", st);
    const auto t0 = now_ns();
    auto st = p->push(key(), num(99));  // parks: the port is full
    record(*w, st, t0);
    // A push that fits still succeeds after the stop: here none fits, and it does not wait.
    auto again = p->push(key(), num(98));
    if (!is(again, Errc::stopping)) return fail(5, "a second push after the stop", again);
    return 0;
  }));
  ASSERT_TRUE(eventually([&] { return port->stats().parked_pushers == 1; }))
      << "the pusher never parked";
  kill(pusher, SIGINT);
  EXPECT_EQ(exit_code(wait_child(pusher, 10s)), 0) << "SIGINT killed the parked pusher";
  EXPECT_EQ(w->code.load(), static_cast<int>(Errc::stopping));
  EXPECT_TRUE(w->worded);
  expect_only_the_two_filling_messages(*port);
  port->stop();
  EXPECT_SHM_CLEAN(ns);
}

// The signal interrupts one thread; the waits of the others end at their next look (within the
// 100 ms recheck): a receive, a wait_any and a parked push, each in a thread of its own.
TEST(PortSignals, TheWaitsOfEveryThreadEndNotOnlyTheInterruptedOne) {
  TestNamespace ns;
  Reaper reap;
  Signal ready;
  Shared<std::array<Waited, 3>> w;
  const pid_t owner = reap(spawn([&] {
    if (auto st = bloccs::stop_on_signals(); !st) return fail(2, "stop_on_signals", st);
    auto a = Port::start(key("a"), {.buffer = 8, .ns = ns.name()});
    auto b = Port::start(key("b"), {.buffer = 8, .ns = ns.name()});
    auto full = Port::start(key("full"), {.buffer = 1, .ns = ns.name()});
    if (!a || !b || !full) return fail(3, "start");
    auto pusher = Pusher::open(ns.name());
    if (!pusher || !pusher->push(key("full"), num(0))) return fail(4, "filling the port");
    // The waiting threads block the signals, so that none of their waits is the one the kernel
    // interrupts: each must see the stop by itself. The main thread takes the signal.
    sigset_t both, before;
    sigemptyset(&both);
    sigaddset(&both, SIGINT);
    sigaddset(&both, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &both, &before);
    std::thread t1([&] {
      const auto t0 = now_ns();
      record((*w)[0], a->receive(), t0);
    });
    std::thread t2([&] {
      Port* ports[] = {&*b};
      const auto t0 = now_ns();
      bloccs::Status st;
      do  // as a node loops: wait_any also returns ok at its 100 ms look, for the drain
        st = bloccs::wait_any(ports, bloccs::kNoDeadline);
      while (st && b->try_receive());
      record((*w)[1], st, t0);
    });
    std::thread t3([&] {
      const auto t0 = now_ns();
      record((*w)[2], pusher->push(key("full"), num(1)), t0);
    });
    ready.notify();
    while (!bloccs::stop_requested()) sigsuspend(&before);  // no signal slips in before it
    t1.join();
    t2.join();
    t3.join();
    return 0;
  }));
  ASSERT_TRUE(ready.wait());
  std::this_thread::sleep_for(200ms);  // every thread parked
  kill(owner, SIGTERM);
  EXPECT_EQ(exit_code(wait_child(owner, 10s)), 0);
  const char* what[] = {"receive", "wait_any", "parked push"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*w)[i].code.load(), static_cast<int>(Errc::stopping)) << what[i];
    EXPECT_TRUE((*w)[i].worded) << what[i];
  }
  EXPECT_SHM_CLEAN(ns);
}

// A program that does not stop (it never waits in bloccs) ends at the second signal, by the
// default action, as a second Ctrl-C is expected to.
TEST(PortSignals, ASecondSignalEndsAProgramThatDoesNotStop) {
  Reaper reap;
  Signal ready, asked;
  const pid_t stubborn = reap(spawn([&] {
    if (auto st = bloccs::stop_on_signals(); !st) return fail(2, "stop_on_signals", st);
    // Blocked but in sigsuspend, so that no signal slips in between the look and the sleep.
    sigset_t both, before;
    sigemptyset(&both);
    sigaddset(&both, SIGINT);
    sigaddset(&both, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &both, &before);
    ready.notify();
    while (!bloccs::stop_requested()) sigsuspend(&before);
    asked.notify();
    pthread_sigmask(SIG_SETMASK, &before, nullptr);  // the second one, pending or not, kills
    for (;;) pause();
  }));
  ASSERT_TRUE(ready.wait());
  kill(stubborn, SIGTERM);
  ASSERT_TRUE(asked.wait(10s)) << "the first SIGTERM did not ask for the stop";
  EXPECT_TRUE(running(stubborn)) << "the first SIGTERM ended the process";
  kill(stubborn, SIGINT);
  EXPECT_EQ(exit_code(wait_child(stubborn, 10s)), 1000 + SIGINT);
}

// request_stop, from a program's own handler or any thread, asks for the same stop.
TEST(PortSignals, RequestStopEndsAWaitAsASignalWould) {
  TestNamespace ns;
  Reaper reap;
  Shared<Waited> w;
  const pid_t owner = reap(spawn([&] {
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    std::thread asker([] {
      std::this_thread::sleep_for(100ms);
      bloccs::request_stop();
    });
    const auto t0 = now_ns();
    record(*w, p->receive(), t0);
    asker.join();
    return 0;
  }));
  EXPECT_EQ(exit_code(wait_child(owner, 10s)), 0);
  EXPECT_EQ(w->code.load(), static_cast<int>(Errc::stopping));
  EXPECT_LT(ms(w->took_ns), 5000.0);
  EXPECT_SHM_CLEAN(ns);
}
