// Every transport bloccs-bench drives, between real processes: messages arrive whole and in
// order, round trips come back, several pushers lose nothing, and nothing stays in /dev/shm.
#include <dirent.h>
#include <fcntl.h>
#include <mqueue.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/suite/process.hpp"
#include "benchmarks/suite/scenarios.hpp"
#include "benchmarks/suite/transport.hpp"

namespace {

using namespace bloccs::bench;

std::vector<std::string> transport_names() {
  std::vector<std::string> names;
  for (const Transport& t : all_transports()) names.emplace_back(t.name);
  return names;
}

// Entries of /dev/shm whose name contains `tag`.
std::vector<std::string> shm_entries(const std::string& tag) {
  std::vector<std::string> found;
  if (DIR* dir = opendir("/dev/shm")) {
    while (const dirent* e = readdir(dir))
      if (std::strstr(e->d_name, tag.c_str())) found.emplace_back(e->d_name);
    closedir(dir);
  }
  return found;
}

// Byte j of message i: the sequence number i + 1 first (the floors' signal), then a pattern.
std::byte pattern(std::uint64_t i, std::size_t j) {
  if (j < 8) return static_cast<std::byte>(((i + 1) >> (8 * j)) & 0xff);
  return static_cast<std::byte>((i * 31 + j * 7) & 0xff);
}

class Transports : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    t_ = find_transport(GetParam());
    ASSERT_NE(t_, nullptr);
    static int n = 0;
    ns_ = "bt-" + std::to_string(getpid()) + "-" + std::to_string(++n);
    alarm(120);  // a transport that hangs fails the test instead of blocking ctest
  }
  void TearDown() override {
    alarm(0);
    EXPECT_TRUE(shm_entries(ns_).empty()) << "left in /dev/shm: " << shm_entries(ns_).front();
  }
  const Transport* t_ = nullptr;
  std::string ns_;
};

TEST_P(Transports, RoundTripsComeBackForEverySize) {
  for (std::size_t bytes : {64u, 512u, 4096u}) {
    LatencyHistogram h;
    const RoundTripPlan plan{ns_, "rt" + std::to_string(bytes), bytes, 20, 500, -1};
    auto st = measure_round_trips(*t_, plan, h);
    ASSERT_TRUE(st) << bytes << " B: " << st.error().message;
    EXPECT_EQ(h.count(), 500u);
    EXPECT_GT(h.min(), 0u);
  }
}

TEST_P(Transports, OneWayMessagesArriveWholeAndInOrder) {
  if (t_->floor) GTEST_SKIP() << "a floor holds one message at a time: round trips only";
  for (std::size_t bytes : {64u, 512u, 4096u}) {
    constexpr std::uint64_t kMessages = 2'000;
    auto channel = t_->make_channel({"ow" + std::to_string(bytes), ns_, bytes, 64, 1});
    ASSERT_TRUE(channel) << channel.error().message;
    auto sender = Child::spawn("sender", -1, [&](ParentLink& link) {
      if (!link.wait_release()) return 1;
      auto tx = (*channel)->open_sender();
      if (!tx || !link.ready()) return 2;
      std::vector<std::byte> m(bytes);
      for (std::uint64_t i = 0; i < kMessages; ++i) {
        for (std::size_t j = 0; j < bytes; ++j) m[j] = pattern(i, j);
        if (!(*tx)->send(m)) return 3;
      }
      return 0;
    });
    ASSERT_TRUE(sender) << sender.error().message;
    auto rx = (*channel)->open_receiver();
    ASSERT_TRUE(rx) << rx.error().message;
    ASSERT_TRUE(sender->release());
    ASSERT_TRUE(sender->wait_ready());
    (*channel)->unlink_names();
    std::vector<std::byte> m(bytes);
    for (std::uint64_t i = 0; i < kMessages; ++i) {
      auto st = (*rx)->receive(m);
      ASSERT_TRUE(st) << st.error().message;
      for (std::size_t j = 0; j < bytes; ++j)
        ASSERT_EQ(m[j], pattern(i, j)) << bytes << " B, message " << i << ", byte " << j;
    }
    auto exit = sender->join();
    ASSERT_TRUE(exit) << exit.error().message;
  }
}

TEST_P(Transports, SeveralPushersLoseNothing) {
  if (!t_->multi_sender) GTEST_SKIP() << GetParam() << " takes one sending process";
  for (std::size_t bytes : {64u, 4096u}) {
    const StreamPlan plan{ns_, "sp" + std::to_string(bytes), bytes, 3, 3'000, 16,
                          std::chrono::nanoseconds(0), -1};
    auto r = measure_stream(*t_, plan);  // an error unless exactly 3 x 3,000 arrive
    ASSERT_TRUE(r) << bytes << " B: " << r.error().message;
    EXPECT_EQ(r->messages, 9'000u);
    EXPECT_GT(r->seconds, 0);
  }
}

TEST_P(Transports, ASlowConsumerHoldsBackItsPushers) {
  if (t_->floor) GTEST_SKIP() << "floors are measured in round trips only";
  const std::uint32_t pushers = t_->multi_sender ? 2 : 1;
  const StreamPlan plan{ns_, "bp", 64, pushers, 500, 8, std::chrono::microseconds(20), -1};
  auto r = measure_stream(*t_, plan);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->messages, 500u * pushers);
  // The consumer's 20 us per message bounds the rate whatever the transport.
  EXPECT_LE(r->msgs_per_s(), 1.0 / 20e-6 * 1.01);
  EXPECT_GE(r->pusher_cpu_seconds, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Suite, Transports, ::testing::ValuesIn(transport_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

TEST(PosixQueue, IsUnlinkedOnceEveryEndIsOpen) {
  const std::string ns = "bt-" + std::to_string(getpid()) + "-mq";
  const Transport* t = find_transport("posix-mq");
  ASSERT_NE(t, nullptr);
  auto channel = t->make_channel({"q", ns, 64, 8, 1});
  ASSERT_TRUE(channel);
  auto rx = (*channel)->open_receiver();
  ASSERT_TRUE(rx) << rx.error().message;
  auto tx = (*channel)->open_sender();
  ASSERT_TRUE(tx) << tx.error().message;
  const std::string name = "/bloccs-" + ns + "-q";
  const mqd_t before = mq_open(name.c_str(), O_RDONLY);
  EXPECT_NE(before, static_cast<mqd_t>(-1)) << "the test must know the queue's name";
  if (before != static_cast<mqd_t>(-1)) mq_close(before);
  (*channel)->unlink_names();
  EXPECT_EQ(mq_open(name.c_str(), O_RDONLY), static_cast<mqd_t>(-1));
  EXPECT_EQ(errno, ENOENT);
  // The open ends still work after the name is gone.
  std::vector<std::byte> m(64, std::byte{7});
  ASSERT_TRUE((*tx)->send(m));
  std::vector<std::byte> got(64);
  ASSERT_TRUE((*rx)->receive(got));
  EXPECT_EQ(got, m);
}

}  // namespace
