// SPDX-License-Identifier: Apache-2.0
// The node runtime between real processes: routing, per-source order, retries with backoff,
// dead letters, back-pressure, and waiting on several ports without spinning. Each node is a
// forked process built from a PipelineSpec written here (the launcher has its own test).
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <set>

#include "bloccs/node.hpp"
#include "bloccs/wait_any.hpp"
#include "port_test_support.hpp"
#include "tools/shmctl/inspect.hpp"

namespace bloccs::test {
namespace {

InputSpec input(std::string name, std::optional<std::uint32_t> buffer) {
  InputSpec in;
  in.name = std::move(name);
  in.buffer = buffer;
  return in;
}

OutputSpec output(std::string name, std::vector<Target> targets) {
  OutputSpec out;
  out.name = std::move(name);
  out.targets = std::move(targets);
  return out;
}

NodeSpec node(std::string id, std::vector<InputSpec> inputs, std::vector<OutputSpec> outputs) {
  NodeSpec n;
  n.id = std::move(id);
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

PipelineSpec pipeline(std::vector<NodeSpec> nodes) {
  PipelineSpec p;
  p.file = "node_test.toml";
  p.network = "net";
  p.nodes = std::move(nodes);
  return p;
}

// Starts node `id` in a child and runs `body(node)`; the child exits with its result.
template <class Body>
pid_t spawn_node(const PipelineSpec& p, const std::string& id, const TestNamespace& ns, Body body) {
  return spawn([&p, id, &ns, body]() -> int {
    auto n = Node::start(p, id, {.ns = ns.name()});
    if (!n) return fail(10, "Node::start", n);
    return body(*n);
  });
}

// A node that passes each message on unchanged.
int relay(Node& n) {
  n.on_message(
      [](const Delivery& in, Outputs& out) { return out.emit("out", in.payload, in.meta.copy()); });
  return n.run();
}

// Waits until `pid` has exited (then reaped), after asking it to stop once `when` holds.
int stop_and_wait(pid_t pid) {
  kill(pid, SIGTERM);
  return exit_code(wait_child(pid, 60s));
}

std::uint64_t meta_number(const MetaView& m, std::string_view key) {
  return std::stoull(std::string(m.get(key).value_or("0")));
}

constexpr std::size_t kMaxSeq = 4096;

TEST(Node, ThreeNodesDeliverEveryMessageOnceInPerSourceOrder) {
  TestNamespace ns;
  const std::uint64_t n = std::min<std::uint64_t>(scaled(3000), kMaxSeq);
  const auto p = pipeline({
      node("a", {}, {output("out", {{"relay", "in"}})}),
      node("b", {}, {output("out", {{"relay", "in"}})}),
      node("relay", {input("in", 64)}, {output("out", {{"sink", "in"}})}),
      node("sink", {input("in", 32)}, {}),
  });
  struct Seen {
    std::atomic<std::uint32_t> count[2][kMaxSeq];
    std::atomic<std::uint64_t> next[2];
    std::atomic<std::uint64_t> out_of_order;
  };
  Shared<Seen> seen;
  const pid_t sink = spawn_node(p, "sink", ns, [&](Node& node) {
    node.on_message([&](const Delivery& in, Outputs&) -> Status {
      const auto src = meta_number(in.meta, "src"), seq = meta_number(in.meta, "seq");
      if (src > 1 || seq >= kMaxSeq) return Error{Errc::corrupt, "bad meta"};
      seen->count[src][seq].fetch_add(1);
      if (seen->next[src].exchange(seq + 1) != seq) seen->out_of_order.fetch_add(1);
      if (std::to_string(seq) != in.text()) return Error{Errc::corrupt, "payload changed"};
      return {};
    });
    return node.run();
  });
  const pid_t middle = spawn_node(p, "relay", ns, relay);
  std::vector<pid_t> sources;
  for (int src = 0; src < 2; ++src)
    sources.push_back(spawn_node(p, src ? "b" : "a", ns, [&, src](Node& node) {
      for (std::uint64_t seq = 0; seq < n; ++seq) {
        Meta meta;
        meta.set("src", std::to_string(src)).set("seq", std::to_string(seq));
        if (auto st = node.emit("out", std::to_string(seq), meta); !st) return fail(20, "emit", st);
      }
      return 0;
    }));
  for (pid_t s : sources) EXPECT_EQ(exit_code(wait_child(s, 60s)), 0);
  EXPECT_EQ(stop_and_wait(middle), 0);  // drains first: everything reaches the sink
  EXPECT_EQ(stop_and_wait(sink), 0);
  for (int src = 0; src < 2; ++src)
    for (std::uint64_t seq = 0; seq < n; ++seq)
      ASSERT_EQ(seen->count[src][seq].load(), 1u) << "source " << src << " message " << seq;
  EXPECT_EQ(seen->out_of_order.load(), 0u);
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

TEST(Node, AFailedMessageIsRetriedThenDeadLetteredWithItsAttemptsAndError) {
  TestNamespace ns;
  const std::uint64_t n = 300;
  auto flaky = node("flaky", {input("in", 16)}, {output("out", {{"sink", "in"}})});
  flaky.retry = {.max_attempts = 3, .base = 1ms, .factor = 2.0, .cap = 4ms, .jitter = 0.0};
  const auto p = pipeline({node("src", {}, {output("out", {{"flaky", "in"}})}), flaky,
                           node("sink", {input("in", 16)}, {})});
  struct Seen {
    std::atomic<std::uint32_t> delivered[kMaxSeq];
    std::atomic<std::uint32_t> attempt[kMaxSeq];
    std::atomic<std::uint32_t> tries[kMaxSeq];
    std::atomic<std::uint32_t> last_try_attempt[kMaxSeq];  // meta.attempt the handler saw last
  };
  Shared<Seen> seen;
  const pid_t sink = spawn_node(p, "sink", ns, [&](Node& node) {
    node.on_message([&](const Delivery& in, Outputs&) -> Status {
      const auto seq = meta_number(in.meta, "seq");
      seen->delivered[seq].fetch_add(1);
      seen->attempt[seq].store(in.meta.attempt());
      return {};
    });
    return node.run();
  });
  // seq % 3 == 0 always fails (dead letter after 3 attempts); == 1 fails once, by throwing;
  // == 2 passes at once.
  const pid_t middle = spawn_node(p, "flaky", ns, [&](Node& node) {
    node.on_message([&](const Delivery& in, Outputs& out) -> Status {
      const auto seq = meta_number(in.meta, "seq");
      seen->tries[seq].fetch_add(1);
      seen->last_try_attempt[seq].store(in.meta.attempt());
      if (seq % 3 == 0) return Error{Errc::bad_config, "always fails: " + std::to_string(seq)};
      if (seq % 3 == 1 && in.meta.attempt() == 0) throw std::runtime_error("first try throws");
      return out.emit("out", in.payload, in.meta.copy());
    });
    return node.run();
  });
  const pid_t src = spawn_node(p, "src", ns, [&](Node& node) {
    for (std::uint64_t seq = 0; seq < n; ++seq) {
      Meta meta;
      meta.set("seq", std::to_string(seq));
      if (auto st = node.emit("out", "x", meta); !st) return fail(20, "emit", st);
    }
    return 0;
  });
  // The dead-letter port belongs to whoever runs the pipeline: here, the test.
  auto dead = Port::start(dead_letter_key(p), {.ns = ns.name()});
  ASSERT_TRUE(dead.ok()) << describe(dead);
  std::set<std::uint64_t> dead_seqs;
  std::string bad;
  auto take = [&](const MessageView& m) {
    const auto seq = meta_number(m.meta, "seq");
    dead_seqs.insert(seq);
    if (m.meta.attempt() != 3 || m.meta.get("node") != "flaky" || m.meta.get("port") != "in" ||
        m.meta.get("error") != "always fails: " + std::to_string(seq))
      bad = "dead letter " + std::to_string(seq) + " has attempt " +
            std::to_string(m.meta.attempt()) + ", error " +
            std::string(m.meta.get("error").value_or("none"));
  };
  EXPECT_EQ(exit_code(wait_child(src, 60s)), 0);
  while (dead_seqs.size() < n / 3) {
    auto got = dead->receive_batch(take, 64, in(20s));
    ASSERT_TRUE(got.ok()) << describe(got) << " after " << dead_seqs.size() << " dead letters";
  }
  EXPECT_EQ(stop_and_wait(middle), 0);
  EXPECT_EQ(stop_and_wait(sink), 0);
  EXPECT_EQ(dead->try_receive_batch(take, 64).value(), 0u) << "more dead letters than failures";
  EXPECT_EQ(bad, "");
  for (std::uint64_t seq = 0; seq < n; ++seq) {
    SCOPED_TRACE("message " + std::to_string(seq));
    EXPECT_EQ(seen->tries[seq].load(), seq % 3 == 0 ? 3u : seq % 3 == 1 ? 2u : 1u);
    EXPECT_EQ(seen->delivered[seq].load(), seq % 3 == 0 ? 0u : 1u);
    EXPECT_EQ(dead_seqs.contains(seq), seq % 3 == 0);
    if (seq % 3) {
      EXPECT_EQ(seen->attempt[seq].load(), 0u) << "attempt counts retries at one port only";
    }
    EXPECT_EQ(seen->last_try_attempt[seq].load(), seq % 3 == 0 ? 2u : seq % 3 == 1 ? 1u : 0u);
  }
  dead->stop();
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

// A node that emits large frames through loans (out.loan): each is written once into the first
// target's ring, sent when the handler returns ok (copied to the second target), and a failed
// attempt's loan is aborted: its retry sends the frame once.
TEST(Node, ALoanedEmitIsSentOnlyWhenItsHandlerSucceedsAndReachesEveryTarget) {
  TestNamespace ns;
  const std::uint64_t n = 200;
  auto framer = node("framer", {input("in", 16)},
                     {output("out", {{"a", "in"}, {"b", "in"}}), output("spare", {})});
  framer.retry = {.max_attempts = 3, .base = 1ms, .factor = 2.0, .cap = 4ms, .jitter = 0.0};
  constexpr std::size_t kLoan = 64 * 1024;
  auto big = [&](std::string id) {
    auto in = input("in", 8);
    in.max_payload = kLoan;
    return node(std::move(id), {in}, {});
  };
  const auto p =
      pipeline({node("src", {}, {output("out", {{"framer", "in"}})}), framer, big("a"), big("b")});
  auto frame_byte = [](std::uint64_t seq, std::size_t i) {
    return static_cast<std::byte>((seq * 7 + i * 13) & 0xff);
  };
  auto frame_size = [](std::uint64_t seq) { return 1000 + seq * 97 % 60'000; };
  struct Seen {
    std::atomic<std::uint32_t> got[2][kMaxSeq];
    std::atomic<std::uint32_t> bad;
  };
  Shared<Seen> seen;
  std::vector<pid_t> sinks;
  for (int side = 0; side < 2; ++side)
    sinks.push_back(spawn_node(p, side ? "b" : "a", ns, [&, side](Node& node) {
      node.on_message([&, side](const Delivery& in, Outputs&) -> Status {
        const auto seq = meta_number(in.meta, "seq");
        bool ok = seq < n && in.payload.size() == frame_size(seq);
        for (std::size_t i = 0; ok && i < in.payload.size(); ++i)
          ok = in.payload[i] == frame_byte(seq, i);
        if (!ok)
          seen->bad.fetch_add(1);
        else
          seen->got[side][seq].fetch_add(1);
        return {};
      });
      return node.run();
    }));
  const pid_t middle = spawn_node(p, "framer", ns, [&](Node& node) {
    node.on_message([&](const Delivery& in, Outputs& out) -> Status {
      const auto seq = meta_number(in.meta, "seq");
      Meta meta;
      meta.set("seq", std::to_string(seq));
      auto loan = out.loan("out", kLoan, meta);
      if (!loan) return std::move(loan).error();
      if (loan->bytes().size() != kLoan) return Error{Errc::corrupt, "loan size"};
      if (auto second = out.loan("out", 8); second || second.code() != Errc::bad_loan)
        return Error{Errc::corrupt, "a second loan of one output was not refused"};
      if (seq % 4 == 0 && in.meta.attempt() == 0) {
        std::memset(loan->bytes().data(), 0xee, kLoan);  // garbage nobody may receive
        return Error{Errc::bad_config, "first attempt fails"};
      }
      for (std::size_t i = 0; i < frame_size(seq); ++i) loan->bytes()[i] = frame_byte(seq, i);
      loan->use(frame_size(seq));
      auto spare = out.loan("spare", 100);  // wired nowhere: plain memory, sent to nobody
      if (!spare || spare->bytes().size() != 100) return Error{Errc::corrupt, "spare loan"};
      return {};
    });
    return node.run();
  });
  const pid_t src = spawn_node(p, "src", ns, [&](Node& node) {
    for (std::uint64_t seq = 0; seq < n; ++seq) {
      Meta meta;
      meta.set("seq", std::to_string(seq));
      if (auto st = node.emit("out", "x", meta); !st) return fail(20, "emit", st);
    }
    return 0;
  });
  EXPECT_EQ(exit_code(wait_child(src, 60s)), 0);
  const auto limit = Clock::now() + 30s;
  auto all_arrived = [&] {
    for (int side = 0; side < 2; ++side)
      for (std::uint64_t seq = 0; seq < n; ++seq)
        if (seen->got[side][seq].load() == 0) return false;
    return true;
  };
  while (!all_arrived() && Clock::now() < limit) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(stop_and_wait(middle), 0);
  for (pid_t s : sinks) EXPECT_EQ(stop_and_wait(s), 0);
  EXPECT_EQ(seen->bad.load(), 0u) << "a sink received a damaged or aborted frame";
  for (int side = 0; side < 2; ++side)
    for (std::uint64_t seq = 0; seq < n; ++seq)
      ASSERT_EQ(seen->got[side][seq].load(), 1u) << "sink " << side << " frame " << seq;
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

TEST(Node, RetriesWaitAtLeastTheirBackoff) {
  TestNamespace ns;
  auto flaky = node("flaky", {input("in", 8)}, {});
  flaky.retry = {.max_attempts = 5, .base = 20ms, .factor = 2.0, .cap = 50ms, .jitter = 0.5};
  const auto p = pipeline({flaky});
  struct Times {
    std::atomic<std::int64_t> at[8];
    std::atomic<std::uint32_t> n;
  };
  Shared<Times> times;
  const pid_t owner = spawn_node(p, "flaky", ns, [&](Node& node) {
    node.on_message([&](const Delivery&, Outputs&) -> Status {
      const auto i = times->n.fetch_add(1);
      if (i < 8) times->at[i].store(now_ns());
      return Error{Errc::bad_config, "never works"};
    });
    return node.run();
  });
  auto dead = Port::start(dead_letter_key(p), {.ns = ns.name()});
  ASSERT_TRUE(dead.ok()) << describe(dead);
  auto pusher = Pusher::open(ns.name());
  ASSERT_TRUE(pusher.ok());
  Status st = pusher->push(port_key(p, "flaky", "in"), bytes("m"));
  for (int i = 0; i < 500 && is(st, Errc::no_producer); ++i) {
    std::this_thread::sleep_for(10ms);
    st = pusher->push(port_key(p, "flaky", "in"), bytes("m"));
  }
  ASSERT_TRUE(st.ok()) << describe(st);
  auto letter = dead->receive(in(20s));
  ASSERT_TRUE(letter.ok()) << describe(letter);
  EXPECT_EQ(letter->meta.attempt, 5u);
  EXPECT_EQ(stop_and_wait(owner), 0);
  ASSERT_EQ(times->n.load(), 5u);
  for (std::uint32_t k = 1; k < 5; ++k) {
    const auto floor = flaky.retry.delay(k, 0.0);
    const double gap = ms(times->at[k].load() - times->at[k - 1].load());
    EXPECT_GE(gap, static_cast<double>(floor.count())) << "retry " << k;
    // Jitter adds at most half; the rest is scheduling, generous on a shared machine.
    EXPECT_LE(gap, static_cast<double>(floor.count()) * 1.5 + 500) << "retry " << k;
  }
  dead->stop();
}

TEST(Node, ASlowSinkParksTheSourceAndItsQueueStaysWithinItsBuffer) {
  TestNamespace ns;
  const std::uint64_t n = 150;
  const auto work = 4ms;
  const auto p = pipeline(
      {node("src", {}, {output("out", {{"sink", "in"}})}), node("sink", {input("in", 8)}, {})});
  struct Times {
    std::atomic<std::int64_t> source_done, sink_done;
  };
  Shared<Times> t;
  const pid_t sink = spawn_node(p, "sink", ns, [&](Node& node) {
    std::uint64_t got = 0;
    node.on_message([&](const Delivery&, Outputs&) -> Status {
      std::this_thread::sleep_for(work);
      if (++got == n) t->sink_done.store(now_ns());
      return {};
    });
    return node.run();
  });
  const std::int64_t start = now_ns();
  const pid_t src = spawn_node(p, "src", ns, [&](Node& node) {
    for (std::uint64_t i = 0; i < n; ++i)
      if (auto st = node.emit("out", "x"); !st) return fail(20, "emit", st);
    t->source_done.store(now_ns());
    return 0;
  });
  // Watch the sink's port from outside, as shmctl does.
  std::uint64_t max_depth = 0, parked_seen = 0;
  while (running(src)) {
    if (auto reg = shmctl::open_registry(ns.name()))
      if (auto e = reg->lookup(port_key(p, "sink", "in"))) {
        const auto v = shmctl::inspect(ns.name(), *e);
        max_depth = std::max(max_depth, v.depth);
        parked_seen += v.parked_pushers > 0;
      }
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(exit_code(wait_child(src, 60s)), 0);
  EXPECT_EQ(stop_and_wait(sink), 0);
  // The source could not run ahead: it finished no sooner than the sink had handled all but
  // what the port (8) and one batch in the sink's hands hold.
  const double source_ms = ms(t->source_done.load() - start);
  EXPECT_GE(source_ms, static_cast<double>((n - 8 - 8) * work.count()));
  EXPECT_LE(max_depth, 8u);
  EXPECT_GT(parked_seen, 0u) << "the source was never seen parked on the full port";
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

TEST(Node, WaitsOnAllItsPortsAtOnceWithoutSpinning) {
  TestNamespace ns;
  const auto p = pipeline({node("multi", {input("a", 8), input("b", 8), input("c", 8)}, {})});
  struct Seen {
    std::atomic<std::uint32_t> on[3];
    std::atomic<std::int64_t> cpu_us_before_idle, cpu_us_after_idle;
  };
  Shared<Seen> seen;
  Signal ready, idle_done;
  const pid_t owner = spawn_node(p, "multi", ns, [&](Node& node) {
    node.on_message([&](const Delivery& in, Outputs&) -> Status {
      seen->on[in.port[0] - 'a'].fetch_add(1);
      rusage ru{};
      getrusage(RUSAGE_SELF, &ru);  // the whole process: its ports' timer threads too
      const std::int64_t cpu_us = ru.ru_utime.tv_sec * 1'000'000 + ru.ru_utime.tv_usec +
                                  ru.ru_stime.tv_sec * 1'000'000 + ru.ru_stime.tv_usec;
      (in.text() == "last" ? seen->cpu_us_after_idle : seen->cpu_us_before_idle).store(cpu_us);
      return {};
    });
    ready.notify();
    return node.run();
  });
  ASSERT_TRUE(ready.wait());
  auto pusher = Pusher::open(ns.name());
  ASSERT_TRUE(pusher.ok());
  auto push = [&](const char* port, const char* text) {
    Status st = pusher->push(port_key(p, "multi", port), bytes(text));
    for (int i = 0; i < 500 && is(st, Errc::no_producer); ++i) {
      std::this_thread::sleep_for(10ms);
      st = pusher->push(port_key(p, "multi", port), bytes(text));
    }
    return st;
  };
  ASSERT_TRUE(push("c", "x").ok());
  ASSERT_TRUE(push("a", "x").ok());
  // Idle for a second: a node that spun would burn most of it.
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(push("b", "last").ok());
  const auto end = Clock::now() + 10s;
  while (seen->on[1].load() == 0 && Clock::now() < end) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(stop_and_wait(owner), 0);
  EXPECT_EQ(seen->on[0].load(), 1u);
  EXPECT_EQ(seen->on[1].load(), 1u);
  EXPECT_EQ(seen->on[2].load(), 1u);
  // The second of idle between the last "x" and "last"; a spinning node would show close to
  // 1,000,000 us.
  const std::int64_t idle_cpu_us = seen->cpu_us_after_idle.load() - seen->cpu_us_before_idle.load();
  std::printf("CPU in a second idle: %lld us\n", static_cast<long long>(idle_cpu_us));
  EXPECT_LT(idle_cpu_us, 100'000) << "the idle node used CPU";
  EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
}

TEST(Node, AWaitOnPortsEndsWhenItsWakeUpIsNotified) {
  TestNamespace ns;
  auto a = Port::start(key("a"), {.ns = ns.name()});
  ASSERT_TRUE(a.ok()) << describe(a);
  WakeUp wake;
  std::array<Port*, 1> ports{&*a};
  EXPECT_TRUE(is(wait_any(ports, in(30ms), &wake), Errc::timeout));
  std::thread notifier([&] {
    std::this_thread::sleep_for(20ms);
    wake.notify();
  });
  EXPECT_TRUE(wait_any(ports, in(10s), &wake).ok());
  notifier.join();
  EXPECT_TRUE(wake.notified());
}

}  // namespace
}  // namespace bloccs::test
