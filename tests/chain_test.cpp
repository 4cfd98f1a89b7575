// SPDX-License-Identifier: Apache-2.0
// Chains of rings (lockfree/chain.hpp) across real processes: order across links while the
// consumer drains, a slow pusher that must not bring back finished links, a link left half-made
// by a killed creator, and a full /dev/shm.
#include <sys/mount.h>
#include <sys/wait.h>

#include <thread>

#include <gtest/gtest.h>

#include "lockfree/chain.hpp"
#include "test_support.hpp"

using bloccs::Errc;
using namespace bloccs::lockfree;
using namespace bloccs::test;
namespace shm = bloccs::shm;

namespace {

constexpr std::size_t kMax = 200;  // payload bytes

// The shared word a chain keeps its newest link's index in, in a segment of its own.
struct NewestWord {
  explicit NewestWord(const std::string& ns)
      : seg(std::move(shm::Segment::create(ns, "newest", shm::SegmentKind::port, 128)).value()) {
    EXPECT_TRUE(seg.publish());
  }
  std::atomic<std::uint64_t>* word() const {
    return reinterpret_cast<std::atomic<std::uint64_t>*>(seg.base() + 64);
  }
  shm::Segment seg;
};

ChainSpec spec(const std::string& ns, std::atomic<std::uint64_t>* newest, RingKind kind) {
  return {.ns = ns,
          .base = "q",
          .newest = newest,
          .unbounded = true,
          .link = {.kind = kind, .buffer = kMaxBuffer, .max_payload = kMax, .capacity = 4096},
          .owner = shm::self_process()};
}

int push_stream(const ChainSpec& s, std::uint32_t id, std::uint64_t count) {
  auto pusher = ChainPusher::open(s);
  if (!pusher) return 2;
  std::vector<std::byte> msg;
  for (std::uint64_t seq = 0; seq < count; ++seq) {
    fill_message(msg, id, seq, message_size(id, seq, kMax));
    if (!pusher->push({}, msg, {})) return 3;
  }
  return 0;
}

std::string link_dump(const ChainConsumer& chain) {
  std::string out;
  for (const auto& e : shm_entries(chain.spec().ns, chain.spec().base + ".")) {
    auto seg = shm::Segment::open(chain.spec().ns, e.substr(e.find('/') + 1),
                                  shm::SegmentKind::ring, {.read_only = true});
    if (!seg) continue;
    auto* c = reinterpret_cast<const RingControl*>(seg->base());
    const Cursor h = Cursor::unpack(c->consumer.head.load());
    const Cursor t = Cursor::unpack(c->producer.tail.load());
    out += "\n " + e + ": head " + std::to_string(h.pos) + "/" + std::to_string(h.count) +
           " tail " + std::to_string(t.pos) + "/" + std::to_string(t.count);
    if (out.size() > 600) break;
  }
  return out;
}

std::string drain_all(ChainConsumer& chain, std::uint32_t pushers, std::uint64_t each) {
  StreamChecker checker(pushers, kMax);
  std::string failure;
  while (checker.total() < pushers * each && failure.empty()) {
    auto n = chain.try_drain([&](std::span<const std::byte> m) {
      if (failure.empty()) failure = checker.check(m);
    });
    if (!failure.empty())
      return failure + " at link " + std::to_string(chain.link_id().index) + link_dump(chain);
    if (!n) return n.error().message;
    if (*n == 0) {
      if (auto st = chain.wait(Clock::now() + std::chrono::seconds(30)); !st) {
        std::uint32_t links = 0;
        const RingStats rs = chain.stats(&links);
        return st.error().message + " after " + std::to_string(checker.total()) +
               " messages; depth " + std::to_string(rs.depth) + " in " + std::to_string(links) +
               " links, current one sealed: " + std::to_string(rs.sealed) + link_dump(chain);
      }
    }
  }
  return failure;
}

std::size_t links_in_shm(const TestNamespace& ns) {
  std::size_t n = 0;
  for (const auto& e : ns.leftovers()) n += e.find("/q.") != std::string::npos;
  return n;
}

class ChainKinds : public ::testing::TestWithParam<RingKind> {};

TEST_P(ChainKinds, EachPushersOrderHoldsAcrossLinksWhileTheConsumerDrains) {
  TestNamespace ns;
  NewestWord newest(ns.name());
  auto s = spec(ns.name(), newest.word(), GetParam());
  auto chain = ChainConsumer::create(s);
  ASSERT_TRUE(chain) << chain.error().message;
  const std::uint32_t pushers = GetParam() == RingKind::spsc ? 1 : 3;
  const std::uint64_t each = scaled(40'000);
  std::vector<pid_t> kids;
  for (std::uint32_t id = 0; id < pushers; ++id)
    kids.push_back(spawn([&, id] { return push_stream(s, id, each); }));
  // A consumer that keeps up would never let a link fill, so it starts only once the pushers
  // have grown the chain (4 KiB links hold about 20 records of up to 200 bytes): the drain
  // then crosses links for sure, however fast this machine is.
  const auto grew_by = Clock::now() + std::chrono::seconds(30);
  while (LinkId::unpack(newest.word()->load()).index == 0 && Clock::now() < grew_by)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  EXPECT_GT(LinkId::unpack(newest.word()->load()).index, 0u) << "the pushers never grew the chain";
  EXPECT_EQ(drain_all(*chain, pushers, each), "");
  for (pid_t k : kids) EXPECT_TRUE(exited_ok(wait_child(k)));
  // Every finished link is gone.
  EXPECT_EQ(links_in_shm(ns), 1u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, ChainKinds, ::testing::Values(RingKind::spsc, RingKind::mpsc),
                         [](const auto& info) {
                           return info.param == RingKind::spsc ? "spsc" : "mpsc";
                         });

TEST(Chain, ASlowPusherNeverBringsBackALinkTheConsumerFinished) {
  TestNamespace ns;
  NewestWord newest(ns.name());
  auto s = spec(ns.name(), newest.word(), RingKind::mpsc);
  auto chain = ChainConsumer::create(s);
  ASSERT_TRUE(chain);
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  // The slow pusher attaches to link 0, then sleeps until the chain has moved far past it.
  const pid_t slow = spawn([&] {
    auto pusher = ChainPusher::open(s);
    if (!pusher) return 2;
    char c;
    if (read(go[0], &c, 1) != 1) return 3;
    std::vector<std::byte> msg;
    for (std::uint64_t seq = 0; seq < 100; ++seq) {
      fill_message(msg, 1, seq, message_size(1, seq, kMax));
      if (!pusher->push({}, msg, {})) return 4;
    }
    return 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it attach to link 0
  const pid_t fast = spawn([&] { return push_stream(s, 0, 500); });
  ASSERT_TRUE(exited_ok(wait_child(fast)));
  StreamChecker checker(2, kMax);
  std::string failure;
  while (checker.next(0) < 500) {  // read (and remove) every link the fast pusher filled
    auto n = chain->try_drain([&](std::span<const std::byte> m) {
      if (failure.empty()) failure = checker.check(m);
    });
    ASSERT_TRUE(n);
  }
  const std::uint32_t newest_before = LinkId::unpack(newest.word()->load()).index;
  ASSERT_GT(newest_before, 5u);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  while (checker.next(1) < 100 && failure.empty()) {
    auto n = chain->try_drain([&](std::span<const std::byte> m) {
      if (failure.empty()) failure = checker.check(m);
    });
    ASSERT_TRUE(n);
    if (*n == 0) {
      ASSERT_TRUE(chain->wait(Clock::now() + std::chrono::seconds(10)));
    }
  }
  EXPECT_EQ(failure, "");
  EXPECT_TRUE(exited_ok(wait_child(slow)));
  // Its link 0 was sealed; it went on to the newest link rather than re-creating link 1:
  // only the link being read is left.
  EXPECT_EQ(links_in_shm(ns), 1u);
  EXPECT_GE(chain->link_id().index, newest_before);
  close(go[0]);
  close(go[1]);
}

TEST(Chain, ALinkMadeButNeverOfferedIsNeverFollowed) {
  TestNamespace ns;
  NewestWord newest(ns.name());
  auto s = spec(ns.name(), newest.word(), RingKind::mpsc);
  auto chain = ChainConsumer::create(s);
  ASSERT_TRUE(chain);
  // A creator killed between making link 1 and offering it to link 0: an orphan.
  const LinkId orphan{1, 0xdead};
  const pid_t dead = spawn([&] {
    return Ring::create_for(ns.name(), s.link_name(orphan), s.link, shm::self_process()) ? 0 : 2;
  });
  ASSERT_TRUE(exited_ok(wait_child(dead)));
  // The pusher fills link 0 and grows the chain past it before the consumer reads a message,
  // so the consumer must cross from link 0 however fast it is.
  const pid_t pusher = spawn([&] { return push_stream(s, 0, 300); });
  EXPECT_TRUE(exited_ok(wait_child(pusher)));
  EXPECT_EQ(drain_all(*chain, 1, 300), "");
  EXPECT_GT(chain->link_id().index, 1u) << "the chain never grew past the orphan's index";
  EXPECT_NE(chain->link_id().pack(), orphan.pack());
  auto left = shm::Segment::open(ns.name(), s.link_name(orphan), shm::SegmentKind::ring);
  ASSERT_TRUE(left);  // untouched: the owner's stop removes the whole family
  auto* c = reinterpret_cast<const RingControl*>(left->base());
  EXPECT_EQ(Cursor::unpack(c->producer.tail.load()).count, 0u) << "someone pushed into it";
}

// Runs `body` in a child with a private mount namespace whose /dev/shm is a tmpfs of `bytes`.
// Skips (exit 77) where that is not allowed (not root, or no CAP_SYS_ADMIN).
int with_small_dev_shm(std::size_t bytes, const std::function<int()>& body) {
  if (unshare(CLONE_NEWNS) != 0) return 77;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
  const std::string opts = "size=" + std::to_string(bytes);
  if (mount("tmpfs", "/dev/shm", "tmpfs", 0, opts.c_str()) != 0) return 77;
  return body();
}

class FullDevShm : public ::testing::TestWithParam<RingKind> {};

// Fills a 1 MiB /dev/shm until push says out_of_memory, then drains what was queued (the
// consumer frees the links it finished) and pushes again: every message pushed with `ok` must
// arrive, in order, and none pushed after the error may vanish into a link nobody reads.
TEST_P(FullDevShm, IsAClearErrorAndPushingResumesOnceSpaceFrees) {
  TestNamespace ns;
  const pid_t child = spawn([&] {
    return with_small_dev_shm(1 << 20, [&] {
      NewestWord newest(ns.name());
      auto s = spec(ns.name(), newest.word(), GetParam());
      s.link.capacity = 64 << 10;
      auto chain = ChainConsumer::create(s);
      if (!chain) return 2;
      auto pusher = ChainPusher::open(s);
      if (!pusher) return 3;
      std::vector<std::byte> msg;
      std::uint64_t pushed = 0;
      auto push_until_full = [&]() -> int {
        for (int i = 0; i < 100'000; ++i) {  // 20 MB: far more than fits
          fill_message(msg, 0, pushed, message_size(0, pushed, kMax));
          auto st = pusher->push({}, msg, {});
          if (!st) return st.code() == Errc::out_of_memory ? 0 : 4;
          ++pushed;
        }
        return 5;  // never ran out
      };
      if (int rc = push_until_full(); rc) return rc;
      StreamChecker checker(1, kMax);
      auto drain = [&]() -> int {
        for (;;) {
          std::string failure;
          auto n = chain->try_drain([&](std::span<const std::byte> m) {
            if (failure.empty()) failure = checker.check(m);
          });
          if (!n || !failure.empty()) return 6;
          if (*n == 0) return 0;
        }
      };
      if (int rc = drain(); rc) return rc;
      if (checker.total() != pushed) return 7;
      if (int rc = push_until_full(); rc) return rc;  // room again: it goes on from there
      if (int rc = drain(); rc) return rc;
      return checker.total() == pushed && pushed > 0 ? 0 : 8;
    });
  });
  const int status = wait_child(child);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 77) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
  EXPECT_TRUE(exited_ok(status)) << "child exit " << WEXITSTATUS(status);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FullDevShm, ::testing::Values(RingKind::spsc, RingKind::mpsc),
                         [](const auto& info) {
                           return info.param == RingKind::spsc ? "spsc" : "mpsc";
                         });

}  // namespace
