// SPDX-License-Identifier: Apache-2.0
// Rings across real processes: volume, order, back-pressure, parking, deadlines, owner death.
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <array>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "lockfree/cpu_relax.hpp"
#include "lockfree/ring.hpp"
#include "lockfree/ring_pusher.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::lockfree;
using namespace bloccs::test;

namespace {

Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

// A child that opens the ring and pushes `count` messages of pusher `id`; exit code 0 on success.
int push_stream(const std::string& ns, std::uint32_t id, std::uint64_t count, std::size_t max) {
  auto pusher = RingPusher::open(ns, "r");
  if (!pusher) {
    std::fprintf(stderr, "pusher %u: %s\n", id, pusher.error().message.c_str());
    return 2;
  }
  std::vector<std::byte> msg;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    fill_message(msg, id, seq, message_size(id, seq, max));
    if (auto st = pusher->push(msg); !st) {
      std::fprintf(stderr, "pusher %u seq %llu: %s\n", id, static_cast<unsigned long long>(seq),
                   st.error().message.c_str());
      return 3;
    }
  }
  return 0;
}

// The owner drains until every pusher's stream is complete, checking each message.
void drain_and_check(Ring& ring, std::uint32_t pushers, std::uint64_t each, std::size_t max) {
  StreamChecker checker(pushers, max);
  std::string failure;
  while (checker.total() < pushers * each && failure.empty()) {
    auto n = ring.drain(
        [&](std::span<const std::byte> m) {
          if (failure.empty()) failure = checker.check(m);
        },
        4096, in(std::chrono::seconds(30)));
    ASSERT_TRUE(n) << n.error().message << " after " << checker.total() << " messages; abandoned "
                   << ring.stats().abandoned << ", depth " << ring.stats().depth;
  }
  ASSERT_EQ(failure, "");
  for (std::uint32_t id = 0; id < pushers; ++id)
    EXPECT_EQ(checker.next(id), each) << "pusher " << id;
  EXPECT_EQ(ring.stats().depth, 0u);
  EXPECT_EQ(ring.stats().abandoned, 0u);
}

void run_volume(RingKind kind, std::uint32_t pushers, std::uint64_t each, std::size_t max,
                std::uint32_t buffer) {
  TestNamespace ns;
  auto ring = Ring::create(
      ns.name(), "r",
      {.kind = kind, .buffer = buffer, .max_payload = static_cast<std::uint32_t>(max)});
  ASSERT_TRUE(ring) << ring.error().message;
  std::vector<pid_t> kids;
  for (std::uint32_t id = 0; id < pushers; ++id)
    kids.push_back(spawn([&, id] { return push_stream(ns.name(), id, each, max); }));
  drain_and_check(*ring, pushers, each, max);
  for (pid_t k : kids) EXPECT_TRUE(exited_ok(wait_child(k)));
}

}  // namespace

TEST(RingProcess, SpscTenMillionMessagesInOrder) {
  run_volume(RingKind::spsc, 1, scaled(10'000'000), 48, 4096);
}

TEST(RingProcess, MpscOnePusherMillionMixedSizes) {
  run_volume(RingKind::mpsc, 1, scaled(1'000'000), 512, 1024);
}
TEST(RingProcess, MpscTwoPushersMillionEachMixedSizes) {
  run_volume(RingKind::mpsc, 2, scaled(1'000'000), 512, 1024);
}
TEST(RingProcess, MpscFourPushersMillionEachMixedSizes) {
  run_volume(RingKind::mpsc, 4, scaled(1'000'000), 512, 1024);
}

TEST(RingProcess, TinyRingUnderHeavyBackPressureLosesNothing) {
  // Buffer 2: every push parks or spins; exercises park/wake on both sides thousands of times.
  run_volume(RingKind::mpsc, 3, scaled(50'000), 64, 2);
  run_volume(RingKind::spsc, 1, scaled(100'000), 64, 2);
}

TEST(RingProcess, FullRingParksThePusherWithoutBurningCpuUntilSpaceFrees) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::spsc, .buffer = 4, .max_payload = 8});
  ASSERT_TRUE(ring);
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    std::uint64_t seq = 0;
    for (; seq < 4; ++seq)
      if (!pusher->push(std::as_bytes(std::span{&seq, 1}))) return 3;
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    const auto t0 = Clock::now();
    if (!pusher->push(std::as_bytes(std::span{&seq, 1}))) return 4;  // parks: the ring is full
    const auto waited = Clock::now() - t0;
    getrusage(RUSAGE_SELF, &after);
    auto us = [](const rusage& r) {
      return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1'000'000ll + r.ru_utime.tv_usec +
             r.ru_stime.tv_usec;
    };
    const long long out[2] = {
        us(after) - us(before),
        std::chrono::duration_cast<std::chrono::microseconds>(waited).count()};
    return write(report[1], out, sizeof out) == sizeof out ? 0 : 5;
  });
  // Prove it parked: the waiter count in the segment shows it.
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (ring->stats().parked_pushers == 0 && Clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(ring->stats().parked_pushers, 1u);
  EXPECT_EQ(ring->stats().depth, 4u);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Still parked: nothing let it through, and it stays counted as parked even while it looks
  // at the owner between sleeps (every 100 ms).
  int status = 0;
  EXPECT_EQ(waitpid(kid, &status, WNOHANG), 0) << "the push returned while the ring was full";
  for (int i = 0; i < 200; ++i) {  // 200 looks over ~200 ms: across at least one owner check
    ASSERT_EQ(ring->stats().parked_pushers, 1u) << "look " << i;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  std::uint64_t got = 0;
  ASSERT_EQ(ring->pop(std::as_writable_bytes(std::span{&got, 1})).value(), 8u);
  EXPECT_EQ(got, 0u);
  ASSERT_TRUE(exited_ok(wait_child(kid)));
  long long cpu_and_wait[2] = {0, 0};
  ASSERT_EQ(read(report[0], cpu_and_wait, sizeof cpu_and_wait),
            static_cast<ssize_t>(sizeof cpu_and_wait));
  close(report[0]);
  close(report[1]);
  EXPECT_GE(cpu_and_wait[1], 500'000) << "the push returned before the consumer popped";
  EXPECT_LT(cpu_and_wait[0], 50'000) << "the parked pusher used " << cpu_and_wait[0]
                                     << " us of CPU in " << cpu_and_wait[1] << " us";
  for (std::uint64_t want = 1; want <= 4; ++want) {
    ASSERT_EQ(
        ring->pop(std::as_writable_bytes(std::span{&got, 1}), in(std::chrono::seconds(1))).value(),
        8u);
    EXPECT_EQ(got, want);
  }
  EXPECT_EQ(ring->stats().parked_pushers, 0u);
}

TEST(RingProcess, ParkedConsumerWakesForAPushFromAnotherProcess) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::mpsc, .max_payload = 8});
  ASSERT_TRUE(ring);
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // long past the consumer's spin
    const std::uint64_t v = 7;
    return pusher->push(std::as_bytes(std::span{&v, 1})) ? 0 : 3;
  });
  std::uint64_t got = 0;
  const auto t0 = Clock::now();
  auto n = ring->pop(std::as_writable_bytes(std::span{&got, 1}), in(std::chrono::seconds(10)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(got, 7u);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(exited_ok(wait_child(kid)));
}

// A pusher wakes a parked consumer with no fence of its own: the consumer makes every CPU pass
// one between arming and its last look (lockfree/asymmetric_fence.hpp). Here the consumer parks
// whenever the ring is empty, with its periodic look switched off, so a lost wake-up stalls it
// for good; the pusher pushes one message, waits until it was taken, pauses 0 to ~4 us (about
// as long as the consumer takes to look and park), and pushes the next: every push races the
// consumer's going to sleep, and each must be taken within seconds.
TEST(RingProcess, AConsumerThatParksAtOnceMissesNoWakeUpFromAPusherWithoutFences) {
  for (RingKind kind : {RingKind::spsc, RingKind::mpsc}) {
    SCOPED_TRACE(kind == RingKind::spsc ? "spsc" : "mpsc");
    TestNamespace ns;
    const std::uint64_t count = scaled(50'000);
    auto* taken = static_cast<std::atomic<std::uint64_t>*>(
        mmap(nullptr, sizeof(std::atomic<std::uint64_t>), PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(taken, MAP_FAILED);
    new (taken) std::atomic<std::uint64_t>(0);
    const pid_t consumer = spawn([&] {
      setenv("BLOCCS_TEST_HOOK", "consumer.no_recheck", 1);
      auto ring = Ring::create(ns.name(), "r", {.kind = kind, .buffer = 64, .max_payload = 8});
      if (!ring) return 2;
      ring->set_spin({.consumer = std::chrono::nanoseconds(0)});  // park whenever empty
      while (taken->load() < count) {
        auto n = ring->drain([&](std::span<const std::byte>) { taken->fetch_add(1); }, 64,
                             in(std::chrono::seconds(10)));
        if (!n) {
          std::fprintf(stderr, "consumer, after %llu of %llu: %s\n",
                       static_cast<unsigned long long>(taken->load()),
                       static_cast<unsigned long long>(count), n.error().message.c_str());
          return 3;
        }
      }
      return 0;
    });
    const pid_t pusher = spawn([&] {
      std::optional<RingPusher> p;
      for (const auto until = Clock::now() + std::chrono::seconds(10); !p;) {
        if (auto opened = RingPusher::open(ns.name(), "r"))
          p.emplace(std::move(opened).value());
        else if (Clock::now() > until)
          return 4;
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::mt19937 rng(7);
      for (std::uint64_t i = 0; i < count; ++i) {
        if (!p->push(std::as_bytes(std::span{&i, 1}))) return 5;
        for (const auto until = Clock::now() + std::chrono::seconds(10); taken->load() <= i;)
          if (Clock::now() > until) return 6;  // the consumer slept through this push
        for (unsigned spin = rng() % 2048; spin; --spin) cpu_relax();
      }
      return 0;
    });
    EXPECT_TRUE(exited_ok(wait_child(pusher))) << "a wake-up was lost (6), or see stderr";
    EXPECT_TRUE(exited_ok(wait_child(consumer)));
    munmap(taken, sizeof(std::atomic<std::uint64_t>));
  }
}

TEST(RingProcess, PushPastItsDeadlineTimesOutAndEnqueuesNothing) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::mpsc, .buffer = 2, .max_payload = 8});
  ASSERT_TRUE(ring);
  const pid_t kid = spawn([&] {
    auto pusher = RingPusher::open(ns.name(), "r");
    if (!pusher) return 2;
    std::uint64_t v = 1;
    if (!pusher->push(std::as_bytes(std::span{&v, 1})) ||
        !pusher->push(std::as_bytes(std::span{&v, 1})))
      return 3;
    v = 99;
    const auto t0 = Clock::now();
    auto r = pusher->push(std::as_bytes(std::span{&v, 1}),
                          Clock::now() + std::chrono::milliseconds(150));
    if (r || r.code() != Errc::timeout) return 4;
    return Clock::now() - t0 >= std::chrono::milliseconds(150) ? 0 : 5;
  });
  ASSERT_TRUE(exited_ok(wait_child(kid)));
  EXPECT_EQ(ring->stats().depth, 2u);
  std::vector<std::uint64_t> got;
  ASSERT_TRUE(ring->try_drain([&](auto m) {
    std::uint64_t v;
    std::memcpy(&v, m.data(), 8);
    got.push_back(v);
  }));
  EXPECT_EQ(got, (std::vector<std::uint64_t>{1, 1}));
}

TEST(RingProcess, ParkedPusherLearnsThatTheOwnerDied) {
  TestNamespace ns;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t owner = spawn([&] {
    auto ring =
        Ring::create(ns.name(), "r", {.kind = RingKind::mpsc, .buffer = 1, .max_payload = 8});
    if (!ring) return 2;
    char c = 1;
    if (write(ready[1], &c, 1) != 1) return 3;
    pause();  // never consumes; the test SIGKILLs it
    return 0;
  });
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  auto pusher = RingPusher::open(ns.name(), "r");
  ASSERT_TRUE(pusher) << pusher.error().message;
  const std::uint64_t v = 1;
  ASSERT_TRUE(pusher->push(std::as_bytes(std::span{&v, 1})));
  Clock::time_point killed_at;
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    killed_at = Clock::now();
    kill(owner, SIGKILL);
  });
  auto r = pusher->push(std::as_bytes(std::span{&v, 1}));  // no deadline: only the death ends it
  const auto returned_at = Clock::now();
  killer.join();  // orders killed_at before the read below
  wait_child(owner);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::owner_dead);
  // A parked pusher checks its owner every 100 ms; 400 ms leaves room for a loaded machine.
  EXPECT_LT(returned_at - killed_at, std::chrono::milliseconds(400));
  close(ready[0]);
  close(ready[1]);
}

// The state letter /proc/<pid>/stat shows for `pid` ('R', 'S', 'Z', ...), or '?'.
char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t paren = stat.rfind(')');  // the command name may hold spaces and ')'
  return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
}

TEST(RingProcess, AProcessWhoseMainThreadExitedIsStillAlive) {
  TestNamespace ns;
  auto ring = Ring::create(ns.name(), "r", {.kind = RingKind::spsc, .max_payload = 32});
  ASSERT_TRUE(ring);
  Signal opened, go;
  const pid_t kid = spawn([&] {
    auto p = RingPusher::open(ns.name(), "r");
    if (!p) return 2;
    opened.notify();
    std::thread worker([&] {
      if (!go.wait()) _exit(5);
      const std::string msg = "from a thread";
      _exit(p->push(std::as_bytes(std::span{msg.data(), msg.size()}))
                ? 0
                : 3);  // no atexit, no leak check
    });
    worker.detach();
    // End the main thread only (as pthread_exit from main() would, without unwinding through
    // the test's frames): /proc now shows the process as a zombie while its thread runs on.
    syscall(SYS_exit, 0);
    return 4;
  });
  ASSERT_TRUE(opened.wait());
  // Wait until /proc shows the main thread gone (the process a zombie) while its worker lives.
  const auto end = Clock::now() + std::chrono::seconds(10);
  while (proc_state(kid) != 'Z' && Clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(proc_state(kid), 'Z') << "the child's main thread did not exit";
  auto second = RingPusher::open(ns.name(), "r");
  go.notify();
  ASSERT_FALSE(second) << "a second SPSC pusher was let in beside a live one";
  EXPECT_EQ(second.code(), Errc::pusher_limit);
  std::array<std::byte, 32> out{};
  auto n = ring->pop(out, in(std::chrono::seconds(5)));
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data()), *n), "from a thread");
  EXPECT_TRUE(exited_ok(wait_child(kid)));
}
