// SPDX-License-Identifier: Apache-2.0
// What the bridges between hosts need of NATS JetStream (bridge/jetstream.hpp, issue 17),
// against a real nats-server on loopback started here: a wire's messages and meta across
// processes in order, acked out of the stream; a full stream refusing publishes until its
// consumer acks (how back-pressure crosses hosts); a message not acked coming again; a
// server restart keeping what was stored; clear errors for an unreachable URL and a server
// without JetStream.
#include <thread>

#include <gtest/gtest.h>

#include "bridge/in_order.hpp"
#include "bridge/jetstream.hpp"
#include "nats_support.hpp"
#include "port_test_support.hpp"

using namespace bloccs::test;
namespace br = bloccs::bridge;

namespace {

const bloccs::PortKey kWire{"net", "sink", "in"};

std::unique_ptr<br::Engine> engine(const NatsServer& s, const std::string& name = "test") {
  std::unique_ptr<br::Engine> e;
  // Just started: JetStream may take a moment after the port opens.
  eventually([&] {
    auto c = br::Engine::connect({.urls = {s.url()}, .credentials = {}, .client_name = name});
    if (c) e = std::move(c).value();
    return e != nullptr;
  });
  return e;
}

// Messages in the wire's stream, or UINT64_MAX if the server could not say.
std::uint64_t pending_of(br::Engine& e) {
  auto n = e.pending(kWire);
  return n ? *n : UINT64_MAX;
}

bloccs::Meta meta_of(std::uint64_t i) {
  bloccs::Meta m;
  m.attempt = static_cast<std::uint32_t>(i % 3);
  if (i % 2) m.set("i", std::to_string(i));
  return m;
}

}  // namespace

TEST(JetStream, AWireCarriesMessagesAndMetaAcrossProcessesInOrder) {
  TempDir dir;
  NatsServer server(dir);
  ASSERT_TRUE(server.ready());
  constexpr std::uint64_t kN = 300;
  // The publisher is forked before this process starts the NATS client's threads: a child
  // of a process running them could not use the client (as a bridge, exec'd, can).
  const pid_t kid = spawn([&] {
    auto pub = engine(server, "pub");
    if (!pub) return 2;
    if (!pub->ensure_stream(kWire, 1000)) return 3;
    if (!pub->ensure_stream(kWire, 1000)) return 4;  // again: idempotent
    for (std::uint64_t i = 0; i < kN; ++i) {
      auto stored = pub->publish(kWire, num(i), meta_of(i));
      if (!stored || !*stored) return fail(5, "publish", stored);
    }
    return 0;
  });
  ASSERT_EQ(exit_code(wait_child(kid)), 0);
  auto e = engine(server);
  ASSERT_TRUE(e);
  EXPECT_EQ(pending_of(*e), kN);
  auto puller = e->pull(kWire, "bridge");
  ASSERT_TRUE(puller) << describe(puller);
  std::uint64_t next = 0;
  while (next < kN) {
    auto got = (*puller)->fetch(64, 2s);
    ASSERT_TRUE(got) << describe(got);
    ASSERT_FALSE(got->empty()) << "stalled at " << next;
    for (br::Pulled& m : *got) {
      EXPECT_EQ(num(m.payload()), next);
      EXPECT_EQ(m.meta(), meta_of(next)) << next;
      EXPECT_EQ(m.delivered(), 1u);
      ASSERT_TRUE(m.ack());
      ++next;
    }
  }
  // Acked messages leave a work queue.
  EXPECT_TRUE(eventually([&] { return pending_of(*e) == 0; }));
}

TEST(JetStream, AFullStreamRefusesPublishesUntilItsConsumerAcks) {
  TempDir dir;
  NatsServer server(dir);
  ASSERT_TRUE(server.ready());
  auto e = engine(server);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->ensure_stream(kWire, 10));
  for (std::uint64_t i = 0; i < 10; ++i) {
    auto stored = e->publish(kWire, num(i), {});
    ASSERT_TRUE(stored && *stored) << i;
  }
  auto refused = e->publish(kWire, num(10), {});
  ASSERT_TRUE(refused) << describe(refused);
  EXPECT_FALSE(*refused) << "a full stream (discard new) stores nothing more";
  EXPECT_EQ(pending_of(*e), 10u);
  auto puller = e->pull(kWire, "bridge");
  ASSERT_TRUE(puller) << describe(puller);
  auto got = (*puller)->fetch(3, 2s);
  ASSERT_TRUE(got && got->size() == 3u);
  for (br::Pulled& m : *got) ASSERT_TRUE(m.ack());
  // Three places free once the server has the acks.
  EXPECT_TRUE(eventually([&] {
    auto stored = e->publish(kWire, num(10), {});
    return stored && *stored;
  }));
  // The bound follows the pipeline file: a larger one takes more at once.
  ASSERT_TRUE(e->ensure_stream(kWire, 20));
  auto more = e->publish(kWire, num(11), {});
  EXPECT_TRUE(more && *more);
}

// A publish repeated under the same message id is stored once, even after the first one was
// taken and acked: the egress repeats a publish whose ack it never saw, under the same id.
TEST(JetStream, APublishRepeatedUnderItsIdIsStoredOnce) {
  TempDir dir;
  NatsServer server(dir);
  ASSERT_TRUE(server.ready());
  auto e = engine(server);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->ensure_stream(kWire, 10));
  for (int i = 0; i < 2; ++i) {
    auto stored = e->publish(kWire, num(1), {}, "a.run.1");
    ASSERT_TRUE(stored && *stored) << describe(stored);
  }
  EXPECT_EQ(pending_of(*e), 1u);
  auto puller = e->pull(kWire, "bridge");
  ASSERT_TRUE(puller) << describe(puller);
  auto got = (*puller)->fetch(10, 2s);
  ASSERT_TRUE(got && got->size() == 1u);
  ASSERT_TRUE(got->front().ack());
  EXPECT_TRUE(eventually([&] { return pending_of(*e) == 0; }));
  auto again = e->publish(kWire, num(1), {}, "a.run.1");
  ASSERT_TRUE(again && *again) << describe(again);
  auto other = e->publish(kWire, num(2), {}, "a.run.2");
  ASSERT_TRUE(other && *other) << describe(other);
  EXPECT_EQ(pending_of(*e), 1u) << "the repeat was dropped, the next id stored";
}

TEST(JetStream, WhatAServerStoredSurvivesItsSigkillAndRestart) {
  TempDir dir;
  NatsServer server(dir);
  ASSERT_TRUE(server.ready());
  {
    auto e = engine(server);
    ASSERT_TRUE(e);
    ASSERT_TRUE(e->ensure_stream(kWire, 100));
    for (std::uint64_t i = 0; i < 20; ++i) ASSERT_TRUE(e->publish(kWire, num(i), meta_of(i)));
  }
  server.kill_now();
  server.restart();
  ASSERT_TRUE(server.ready());
  auto e = engine(server);
  ASSERT_TRUE(e);
  auto puller = e->pull(kWire, "bridge");
  ASSERT_TRUE(puller) << describe(puller);
  std::uint64_t next = 0;
  while (next < 20) {
    auto got = (*puller)->fetch(20, 5s);
    ASSERT_TRUE(got && !got->empty()) << "stalled at " << next;
    for (br::Pulled& m : *got) {
      EXPECT_EQ(num(m.payload()), next);
      EXPECT_EQ(m.meta(), meta_of(next));
      ASSERT_TRUE(m.ack());
      ++next;
    }
  }
}

TEST(JetStream, AnUnreachableUrlAndAServerWithoutJetStreamAreClearErrors) {
  const int nobody = free_loopback_port();
  const auto t0 = std::chrono::steady_clock::now();
  auto none = br::Engine::connect({.urls = {"nats://127.0.0.1:" + std::to_string(nobody)},
                                   .credentials = {},
                                   .client_name = "test",
                                   .connect_timeout = 500ms});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "no hang";
  ASSERT_FALSE(none);
  EXPECT_EQ(none.code(), bloccs::Errc::not_ready);
  EXPECT_NE(none.error().message.find("cannot reach the NATS server at nats://127.0.0.1:" +
                                      std::to_string(nobody)),
            std::string::npos)
      << none.error().message;

  TempDir dir;
  NatsServer plain(dir, /*jetstream=*/false);
  ASSERT_TRUE(plain.ready());
  auto no_js = br::Engine::connect({.urls = {plain.url()}, .credentials = {}, .client_name = "t"});
  ASSERT_FALSE(no_js);
  EXPECT_EQ(no_js.code(), bloccs::Errc::bad_config);
  EXPECT_NE(no_js.error().message.find("has no JetStream; start it with -js"), std::string::npos)
      << no_js.error().message;
}

// The ingress's ordering: a later message waits for the one before it (redelivered after a
// crash), a repeat of one handed on is refused, and each sequence goes out once.
TEST(InOrder, HandsMessagesOnInStreamOrderOnce) {
  br::InOrder<std::string> order(5);
  EXPECT_FALSE(order.offer(4, "four")) << "handed on before this ingress started";
  EXPECT_TRUE(order.offer(7, "seven"));
  EXPECT_TRUE(order.offer(6, "six"));
  EXPECT_FALSE(order.take()) << "5 has not come yet";
  EXPECT_EQ(order.held(), 2u);
  EXPECT_TRUE(order.offer(5, "five"));
  EXPECT_TRUE(order.offer(6, "six again"));  // redelivered while held: the newer one counts
  std::vector<std::string> out;
  while (auto m = order.take()) out.push_back(*m);
  EXPECT_EQ(out, (std::vector<std::string>{"five", "six again", "seven"}));
  EXPECT_EQ(order.next(), 8u);
  EXPECT_FALSE(order.offer(6, "six, late")) << "each sequence goes out once";
  // A gap the stream no longer has: skipped, and what is held beyond it goes on.
  EXPECT_TRUE(order.offer(10, "ten"));
  order.skip_to(10);
  auto ten = order.take();
  ASSERT_TRUE(ten);
  EXPECT_EQ(*ten, "ten");
}

