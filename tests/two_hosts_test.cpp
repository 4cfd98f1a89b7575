// SPDX-License-Identifier: Apache-2.0
// A pipeline placed on two hosts (issue 17): each "host" is a `bloccs run --host` of its own
// namespace on this machine, and the wire between them is carried by a nats-server with
// JetStream that the test starts on loopback. The demo split (generator and transform on a,
// the sink on b): every message delivered or dead-lettered, each host's ledger adding up; and
// back-pressure across hosts: a slow sink on b holds the source on a to its pace while the
// stream never holds more than its bound.
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "bridge/jetstream.hpp"
#include "nats_support.hpp"
#include "port_test_support.hpp"

using namespace bloccs::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct Split {
  std::uint64_t messages = 4000;
  int work_us = 50;
  int fail_percent = 20;
  int sink_buffer = 64;
};

fs::path write_pipeline(const TempDir& dir, const std::vector<std::string>& urls,
                        const Split& s) {
  std::string list;
  for (const auto& u : urls) list += (list.empty() ? "\"" : ", \"") + u + "\"";
  const std::string programs = DEMO_PROGRAM_DIR;
  std::ofstream(dir / "split.toml") << R"([pipeline]
network = "demo"
conserved = true

[hosts.a]
nats = [)" << list << R"(]
[hosts.b]
nats = [)" << list << R"(]

[nodes.generator]
program = ")" << programs << R"(/bloccs-demo-generator"
host = "a"
args = ["--messages", ")" << s.messages << R"("]
outputs.out = "transform.in"

[nodes.transform]
program = ")" << programs << R"(/bloccs-demo-transform"
host = "a"
args = ["--fail-percent", ")" << s.fail_percent << R"("]
inputs.in = { buffer = 256 }
outputs.out = "sink.in"
retry = { max_attempts = 4, base_ms = 5, factor = 2.0, cap_ms = 50, jitter = 0.25 }

[nodes.sink]
program = ")" << programs << R"(/bloccs-demo-sink"
host = "b"
args = ["--work-us", ")" << s.work_us << R"(", "--record", ")" << (dir / "received").string() << R"("]
inputs.in = { buffer = )" << s.sink_buffer << R"( }
)";
  return dir / "split.toml";
}

pid_t run_host(const fs::path& file, const std::string& host, const TestNamespace& ns,
               const TempDir& dir, int status_ms = 0, std::vector<std::string> more = {}) {
  std::vector<std::string> args{"run", file.string(), "--host", host, "--namespace", ns.name(),
                                "--status-interval", std::to_string(status_ms), "--summary-json",
                                (dir / (host + ".json")).string(), "--dead-letters",
                                (dir / (host + "-dead.jsonl")).string()};
  args.insert(args.end(), more.begin(), more.end());
  return start_program(BLOCCS_CLI_PATH, args, dir / (host + ".log"));
}

// The threads of process `pid` besides its first that leave SIGINT or SIGTERM unblocked (the
// first may be in sigtimedwait, which unblocks what it waits for while it waits).
std::vector<std::string> threads_taking_stop_signals(pid_t pid) {
  std::vector<std::string> out;
  const fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : fs::directory_iterator(tasks)) {
    if (t.path().filename() == std::to_string(pid)) continue;
    std::ifstream status(t.path() / "status");
    for (std::string line; std::getline(status, line);)
      if (line.starts_with("SigBlk:")) {
        const unsigned long long blocked = std::stoull(line.substr(7), nullptr, 16);
        const unsigned long long stop = (1ULL << (SIGINT - 1)) | (1ULL << (SIGTERM - 1));
        if ((blocked & stop) != stop) out.push_back(t.path().filename().string() + " " + line);
      }
  }
  return out;
}

// The metrics a launcher serves (--metrics 127.0.0.1:0), at the address its log names.
std::string scrape(const fs::path& log) {
  const std::string text = read_file(log);
  const std::string at = "metrics at http://127.0.0.1:";
  const auto p = text.find(at);
  if (p == std::string::npos) return "";
  httplib::Client c("127.0.0.1", std::atoi(text.c_str() + p + at.size()));
  auto r = c.Get("/metrics");
  return r && r->status == 200 ? r->body : "";
}

// Both hosts' runs end, and well.
void expect_both_end_ok(pid_t a, pid_t b, const TempDir& dir) {
  EXPECT_TRUE(exited_ok(wait_child(a, 120s))) << read_file(dir / "a.log");
  EXPECT_TRUE(exited_ok(wait_child(b, 120s))) << read_file(dir / "b.log");
}

// `bloccs ledger FILES...` of summaries in `dir`: its exit status, its output in `out`.
int sum_ledger(const TempDir& dir, const std::vector<std::string>& files, std::string& out) {
  std::vector<std::string> args{"ledger"};
  for (const auto& f : files) args.push_back((dir / f).string());
  const fs::path log = dir / "ledger.out";
  const int status = wait_child(start_program(BLOCCS_CLI_PATH, args, log), 30s);
  out = read_file(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::set<std::uint64_t> lines_of(const fs::path& file) {
  std::set<std::uint64_t> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.insert(std::stoull(line));
  return out;
}

std::set<std::uint64_t> dead_of(const fs::path& file) {
  std::set<std::uint64_t> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    out.insert(std::stoull(json::parse(line)["meta"]["seq"].get<std::string>()));
  return out;
}

}  // namespace

TEST(TwoHosts, TheDemoSplitOverTwoHostsDeliversOrDeadLettersEveryMessage) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  const Split s;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t b = run_host(file, "b", ns_b, dir);  // b first: its ingress waits for a's end
  const pid_t a = run_host(file, "a", ns_a, dir);
  expect_both_end_ok(a, b, dir);

  const json ja = json::parse(read_file(dir / "a.json"), nullptr, false);
  const json jb = json::parse(read_file(dir / "b.json"), nullptr, false);
  ASSERT_FALSE(ja.is_discarded() || jb.is_discarded()) << read_file(dir / "a.log");
  // Each host's part adds up on its own: on a, what the egress took counts as delivered.
  EXPECT_TRUE(ja.value("adds_up", false)) << ja.dump(2);
  EXPECT_TRUE(jb.value("adds_up", false)) << jb.dump(2);
  EXPECT_EQ(ja.value("in", 0u), s.messages) << ja.dump(2);
  // What a handed over is what b took in: nothing lost or duplicated between them.
  EXPECT_EQ(jb.value("in", 0u), ja.value("delivered", 1u)) << ja.dump(2) << jb.dump(2);
  EXPECT_EQ(jb.value("delivered", 0u), jb.value("in", 1u)) << jb.dump(2);
  // The bridges in each summary: which way, the wire's port, what they carried.
  EXPECT_EQ(ja.value("host", ""), "a");
  const json out = ja["nodes"]["sink"].value("bridge", json::object());
  EXPECT_EQ(out.value("direction", ""), "out") << ja.dump(2);
  EXPECT_EQ(out.value("port", ""), "demo/sink/in") << ja.dump(2);
  EXPECT_EQ(out.value("carried", 0u), ja.value("delivered", 1u)) << ja.dump(2);
  const json in = jb["nodes"]["sink-in-from-net"].value("bridge", json::object());
  EXPECT_EQ(in.value("direction", ""), "in") << jb.dump(2);
  EXPECT_EQ(in.value("carried", 0u), jb.value("in", 1u)) << jb.dump(2);
  // What the engine said at each end: the stream empty, nothing in flight.
  EXPECT_EQ(in["stream"].value("stored", 1u), 0u) << jb.dump(2);
  EXPECT_EQ(in["stream"].value("in_flight", 1u), 0u) << jb.dump(2);
  EXPECT_EQ(out["stream"].value("stored", 1u), 0u) << ja.dump(2);
  // Summed over both hosts: the sources' messages, the sink's, the dead letters.
  std::string sums;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b.json"}, sums), 0) << sums;
  EXPECT_NE(sums.find("messages in " + std::to_string(s.messages) + " = delivered " +
                      std::to_string(jb.value("delivered", 0u)) + " + dead-lettered " +
                      std::to_string(ja.value("dead_lettered", 0u)) +
                      " + lost 0 + in the wires 0: adds up"),
            std::string::npos)
      << sums;

  const auto got = lines_of(dir / "received");
  const auto dead = dead_of(dir / "a-dead.jsonl");
  EXPECT_EQ(got.size() + dead.size(), s.messages);
  for (std::uint64_t seq = 0; seq < s.messages; ++seq)
    ASSERT_NE(got.contains(seq), dead.contains(seq)) << "message " << seq;
  EXPECT_NE(read_file(dir / "b.log").find("0 more than once"), std::string::npos)
      << read_file(dir / "b.log");
  EXPECT_TRUE(ns_a.leftovers().empty()) << join(ns_a.leftovers());
  EXPECT_TRUE(ns_b.leftovers().empty()) << join(ns_b.leftovers());
}

namespace {

// A live status line of `log` shows the wire into demo/sink/in with messages in its stream
// (of its 32) and the ingress pulling: "wire out demo/sink/in: 17/32 in the stream, 3 in
// flight, 0 redelivered".
bool shows_wire_filled(const std::string& log, const std::string& direction) {
  const std::string head = "wire " + direction + " demo/sink/in: ";
  for (auto at = log.find(head); at != std::string::npos; at = log.find(head, at + 1)) {
    unsigned stored = 0, bound = 0, in_flight = 0, redelivered = 1;
    if (std::sscanf(log.c_str() + at + head.size(),
                    "%u/%u in the stream, %u in flight, %u redelivered", &stored, &bound,
                    &in_flight, &redelivered) == 4 &&
        stored >= 1 && bound == 32 && redelivered == 0)
      return true;
  }
  return false;
}

// Every message the generator emitted reached the sink (some may have come twice), and in the
// order the generator emitted them: one source, no retries, so each message's first arrival
// comes after every earlier message's (a repeat after a crash comes again later, which is not
// a first arrival).
void expect_none_lost(const TempDir& dir, std::uint64_t messages) {
  const auto got = lines_of(dir / "received");
  std::uint64_t missing = 0;
  for (std::uint64_t seq = 0; seq < messages; ++seq) missing += !got.contains(seq);
  EXPECT_EQ(missing, 0u) << read_file(dir / "a.log") << read_file(dir / "b.log");
  std::ifstream in(dir / "received");
  std::uint64_t before = 0, n = 0, out_of_order = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const std::uint64_t seq = std::stoull(line);
    if (n && seq < before) ++out_of_order;
    before = seq;
  }
  EXPECT_EQ(out_of_order, 0u) << "first arrivals out of the source's order";
}

}  // namespace

TEST(TwoHosts, ASlowSinkOnOneHostHoldsTheSourceOnTheOtherToItsPace) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 3000;
  s.work_us = 1000;  // the sink takes about 1,000 a second (a little less: sleeps overshoot)
  s.fail_percent = 0;
  s.sink_buffer = 32;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t b = run_host(file, "b", ns_b, dir, 200);
  const pid_t a = run_host(file, "a", ns_a, dir, 200);

  // Meanwhile the stream never holds more than its bound: the sink's 32.
  auto watch = bloccs::bridge::Engine::connect(
      {.urls = {nats.url()}, .credentials = {}, .client_name = "test"});
  ASSERT_TRUE(watch) << watch.error().message;
  std::uint64_t most = 0;
  int looks = 0;
  while (waitpid(a, nullptr, WNOHANG) == 0) {
    if (auto n = (*watch)->pending({"demo", "sink", "in"}); n) {
      most = std::max(most, *n);
      ++looks;
    }
    std::this_thread::sleep_for(20ms);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(exited_ok(wait_child(b, 120s))) << read_file(dir / "b.log");
  const std::string log_a = read_file(dir / "a.log");
  std::printf("3000 messages through a 1 ms sink on the other host: %.1f s; the stream held at "
              "most %llu (%d looks)\n",
              seconds, static_cast<unsigned long long>(most), looks);
  EXPECT_GT(looks, 10);
  EXPECT_LE(most, 32u);
  // The source could emit all in milliseconds; held back, it takes the sink's 3 s (or more).
  EXPECT_GE(seconds, 2.5) << log_a;
  const auto gen = log_a.find("generator: emitted 3000 messages in ");
  ASSERT_NE(gen, std::string::npos) << log_a;
  EXPECT_GE(std::stod(log_a.substr(gen + 36)), 2.0) << log_a;
  expect_none_lost(dir, 3000);
  // Both launchers' live status showed the wire as the engine saw it, the stream filled.
  EXPECT_TRUE(shows_wire_filled(log_a, "out")) << log_a;
  const std::string log_b = read_file(dir / "b.log");
  EXPECT_TRUE(shows_wire_filled(log_b, "in")) << log_b;
  EXPECT_NE(log_b.find("wire in demo/sink/in: 0/32 in the stream, 0 in flight"), std::string::npos)
      << log_b;  // at the end, in the summary
}

namespace {

// The pid of the bridge `direction` ("out" or "in") among the launcher's children, or -1.
pid_t bridge_of(pid_t launcher, const std::string& direction) {
  const std::string cmd = "pgrep -P " + std::to_string(launcher) + " -f 'bridge " + direction + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char line[64] = {};
  const bool got = std::fgets(line, sizeof line, p) != nullptr;
  pclose(p);
  return got ? static_cast<pid_t>(std::atoi(line)) : -1;
}


}  // namespace

// Each bridge SIGKILLed mid-stream: its launcher restarts it, the restarted egress takes its
// port's queued messages over, the restarted ingress gets what its predecessor had not acked.
TEST(TwoHosts, BridgesKilledMidStreamAreRestartedAndNothingIsLost) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 8000;
  s.work_us = 250;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t b = run_host(file, "b", ns_b, dir);
  const pid_t a = run_host(file, "a", ns_a, dir);
  pid_t in = -1, out = -1;
  ASSERT_TRUE(eventually([&] { return (in = bridge_of(b, "in")) > 0; })) << read_file(dir / "b.log");
  ASSERT_TRUE(eventually([&] { return (out = bridge_of(a, "out")) > 0; })) << read_file(dir / "a.log");
  // The ingress killed while it holds messages it has not acked (the slow sink keeps it so).
  auto watch = bloccs::bridge::Engine::connect(
      {.urls = {nats.url()}, .credentials = {}, .client_name = "test"});
  ASSERT_TRUE(watch) << watch.error().message;
  ASSERT_TRUE(eventually([&] {
    auto w = (*watch)->wire_state({"demo", "sink", "in"});
    return w && w->in_flight >= 16;
  })) << read_file(dir / "b.log");
  ASSERT_EQ(kill(in, SIGKILL), 0);
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(kill(out, SIGKILL), 0);
  expect_both_end_ok(a, b, dir);
  const json ja = json::parse(read_file(dir / "a.json"), nullptr, false);
  const json jb = json::parse(read_file(dir / "b.json"), nullptr, false);
  EXPECT_GE(ja.value("restarts", 0), 1) << ja.dump(2);
  EXPECT_GE(jb.value("restarts", 0), 1) << jb.dump(2);
  // The killed ingress held a fetched batch it had not acked: the engine delivered it again.
  EXPECT_GE(jb["nodes"]["sink-in-from-net"]["bridge"]["stream"].value("redelivered", 0u), 1u)
      << jb.dump(2);
  std::string sums;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b.json"}, sums), 0) << sums;
  EXPECT_NE(sums.find("every message accounted for"), std::string::npos) << sums;
  expect_none_lost(dir, s.messages);
  EXPECT_TRUE(ns_a.leftovers().empty()) << join(ns_a.leftovers());
  EXPECT_TRUE(ns_b.leftovers().empty()) << join(ns_b.leftovers());
}

// The egress SIGKILLed again and again, mostly while it waits for a publish's ack: a publish
// the server stored but never acked is repeated by the next egress under the same message id,
// and the server drops it, so the sink sees every message exactly once.
TEST(TwoHosts, AnEgressKilledMidPublishRepeatsNothingAtTheSink) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 10000;
  s.work_us = 50;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t b = run_host(file, "b", ns_b, dir);
  const pid_t a = run_host(file, "a", ns_a, dir);
  pid_t killed = -1;
  for (int round = 0; round < 4; ++round) {
    pid_t out = -1;
    ASSERT_TRUE(eventually([&] { return (out = bridge_of(a, "out")) > 0 && out != killed; }))
        << read_file(dir / "a.log");
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(kill(out, SIGKILL), 0);
    killed = out;
  }
  expect_both_end_ok(a, b, dir);
  const json ja = json::parse(read_file(dir / "a.json"), nullptr, false);
  EXPECT_EQ(ja.value("restarts", 0), 4) << ja.dump(2);
  expect_none_lost(dir, s.messages);
  EXPECT_NE(read_file(dir / "b.log").find("received 10000 distinct messages, 0 more than once"),
            std::string::npos)
      << read_file(dir / "b.log");
  EXPECT_TRUE(ns_a.leftovers().empty()) << join(ns_a.leftovers());
  EXPECT_TRUE(ns_b.leftovers().empty()) << join(ns_b.leftovers());
}

// The NATS server SIGKILLed mid-run and started again a second later on the same port and
// store: the bridges reconnect and go on; what it had stored is delivered.
TEST(TwoHosts, TheNatsServerKilledAndRestartedMidRunLosesNothing) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 8000;
  s.work_us = 250;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t b = run_host(file, "b", ns_b, dir);
  const pid_t a = run_host(file, "a", ns_a, dir);
  std::this_thread::sleep_for(700ms);
  nats.kill_now();
  std::this_thread::sleep_for(1s);
  nats.restart();
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  expect_both_end_ok(a, b, dir);
  expect_none_lost(dir, s.messages);
}

// Host b's launcher not running at first, then stopped mid-run and started again: the stream
// holds the backlog within its bound (a's source waits meanwhile), and b's later runs take it.
TEST(TwoHosts, TheReceivingHostStoppedAndStartedLaterGetsTheBacklog) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 3000;
  s.work_us = 100;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t a = run_host(file, "a", ns_a, dir, 100, {"--metrics", "127.0.0.1:0"});
  // a runs alone: its bridge fills the stream to its bound (64), then a's source waits.
  auto watch = bloccs::bridge::Engine::connect(
      {.urls = {nats.url()}, .credentials = {}, .client_name = "test"});
  ASSERT_TRUE(watch) << watch.error().message;
  const bloccs::PortKey wire{"demo", "sink", "in"};
  ASSERT_TRUE(eventually([&] {
    auto n = (*watch)->pending(wire);
    return n && *n == 64;
  })) << read_file(dir / "a.log");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ((*watch)->pending(wire).value(), 64u) << "never past its bound";
  EXPECT_EQ(waitpid(a, nullptr, WNOHANG), 0) << "a waits for b";
  // a's live status says so: the stream full, nobody pulling from it yet.
  EXPECT_TRUE(eventually([&] {
    return read_file(dir / "a.log").find("wire out demo/sink/in: 64/64 in the stream, not pulled yet") !=
           std::string::npos;
  })) << read_file(dir / "a.log");
  // Its threads (the wire watch's, NATS's, the metrics server's) leave SIGINT and SIGTERM to
  // the launcher's own wait: one that took them would end the launcher instead of the run.
  EXPECT_TRUE(threads_taking_stop_signals(a).empty()) << join(threads_taking_stop_signals(a));
  // ... and so do its metrics.
  const std::string labels = "{namespace=\"" + ns_a.name() +
                             "\",network=\"demo\",direction=\"out\",node=\"sink\",port=\"in\"}";
  std::string metrics;
  EXPECT_TRUE(eventually([&] {
    metrics = scrape(dir / "a.log");
    return metrics.find("bloccs_wire_stream_messages" + labels + " 64\n") != std::string::npos;
  })) << metrics << read_file(dir / "a.log");
  EXPECT_NE(metrics.find("bloccs_wire_engine_up" + labels + " 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("bloccs_wire_stream_bound" + labels + " 64\n"), std::string::npos) << metrics;

  // b's first run, stopped (SIGINT) mid-way: what it did not take stays in the stream. With
  // threads of its own (the wire watch's, the metrics server's), which must not take the SIGINT.
  pid_t b = run_host(file, "b", ns_b, dir, 0, {"--metrics", "127.0.0.1:0"});
  std::this_thread::sleep_for(400ms);
  ASSERT_EQ(kill(b, SIGINT), 0);
  // A stop by signal drains what b holds and ends it cleanly.
  EXPECT_TRUE(exited_ok(wait_child(b, 60s))) << read_file(dir / "b.log");
  const std::set<std::uint64_t> first = lines_of(dir / "received");
  std::printf("b's first run took %zu of %llu\n", first.size(),
              static_cast<unsigned long long>(s.messages));
  fs::rename(dir / "b.json", dir / "b1.json");
  // b again, to the end.
  b = run_host(file, "b", ns_b, dir);
  expect_both_end_ok(a, b, dir);
  std::set<std::uint64_t> all = lines_of(dir / "received");
  all.insert(first.begin(), first.end());
  std::uint64_t missing = 0;
  for (std::uint64_t seq = 0; seq < s.messages; ++seq) missing += !all.contains(seq);
  EXPECT_EQ(missing, 0u) << read_file(dir / "b.log");
  // The sums over a and b's first run: what b's second run took was still in the stream.
  const json b2 = json::parse(read_file(dir / "b.json"), nullptr, false);
  std::string sums;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b1.json"}, sums), 0) << sums;
  EXPECT_NE(sums.find("so " + std::to_string(b2.value("in", 0u)) + " still in the stream"),
            std::string::npos)
      << sums << b2.dump(2);
  EXPECT_NE(sums.find(": adds up"), std::string::npos) << sums;
  // ... and over all three runs, nothing.
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b1.json", "b.json"}, sums), 0) << sums;
  EXPECT_NE(sums.find("so 0 still in the stream"), std::string::npos) << sums;
  EXPECT_NE(sums.find("in the wires 0: adds up"), std::string::npos) << sums;
  EXPECT_TRUE(ns_b.leftovers().empty()) << join(ns_b.leftovers());
}

// A three-server JetStream cluster on loopback, its streams kept on all three: one server
// SIGKILLed mid-run, and the bridges fail over to the others with nothing lost.
TEST(TwoHosts, AClusterServerKilledMidRunFailsOverAndLosesNothing) {
  TempDir dir;
  NatsCluster cluster(dir);
  // Formed, with a JetStream leader: a replicated stream can be made.
  ASSERT_TRUE(eventually(
      [&] {
        auto e = bloccs::bridge::Engine::connect(
            {.urls = cluster.urls(), .credentials = {}, .client_name = "test"});
        return e && (*e)->ensure_stream({"probe", "p", "in"}, 10, 3);
      },
      60s))
      << read_file(dir / "nats-s0.log");
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 6000;
  s.work_us = 250;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, cluster.urls(), s);
  const pid_t b = run_host(file, "b", ns_b, dir);
  const pid_t a = run_host(file, "a", ns_a, dir);
  std::this_thread::sleep_for(800ms);
  cluster.kill(0);  // the server both sides connected to first
  expect_both_end_ok(a, b, dir);
  expect_none_lost(dir, s.messages);
}

// Bad engines, as a user meets them: an URL where no server listens, and a server without
// JetStream. The host's run fails within seconds, its log naming the URL and what to do.
TEST(TwoHosts, AnUnreachableEngineAndOneWithoutJetStreamFailTheRunSayingWhy) {
  TempDir dir;
  NatsServer plain(dir, /*jetstream=*/false);
  ASSERT_TRUE(plain.ready());
  const std::string nobody = "nats://127.0.0.1:" + std::to_string(free_loopback_port());
  for (const auto& [url, says] : std::vector<std::pair<std::string, std::string>>{
           {nobody, "cannot reach the NATS server at " + nobody},
           {plain.url(), "has no JetStream; start it with -js"}}) {
    std::ofstream(dir / "bad.toml") << R"([pipeline]
network = "demo"
restart = { base_ms = 50, max_restarts = 1 }
[hosts.a]
nats = ")" << url << R"("
[hosts.b]
nats = ")" << url << R"("
[nodes.generator]
program = ")" << DEMO_PROGRAM_DIR << R"(/bloccs-demo-generator"
host = "a"
outputs.out = "sink.in"
[nodes.sink]
program = ")" << DEMO_PROGRAM_DIR << R"(/bloccs-demo-sink"
host = "b"
)";
    TestNamespace ns;
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t a = start_program(BLOCCS_CLI_PATH,
                                  {"run", (dir / "bad.toml").string(), "--host", "a",
                                   "--namespace", ns.name(), "--status-interval", "0"},
                                  dir / "bad.log");
    EXPECT_EQ(exit_code(wait_child(a, 60s)), 1) << read_file(dir / "bad.log");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "no hang";
    EXPECT_NE(read_file(dir / "bad.log").find(says), std::string::npos) << read_file(dir / "bad.log");
    EXPECT_TRUE(ns.leftovers().empty()) << join(ns.leftovers());
  }
}

// The engine down when both hosts start, up a second later: the bridges fail to connect and
// are restarted until it is up, and no message pushed meanwhile is lost (a bridge connects
// before its port exists, so the pushers wait for the port instead of filling one that a
// failing bridge would take down with it).
TEST(TwoHosts, HostsStartedWhileTheEngineIsDownWaitForItAndLoseNothing) {
  TempDir dir;
  NatsServer nats(dir);
  ASSERT_TRUE(nats.ready());
  nats.stop();
  TestNamespace ns_a, ns_b;
  Split s;
  s.messages = 3000;
  s.work_us = 100;
  s.fail_percent = 0;
  const fs::path file = write_pipeline(dir, {nats.url()}, s);
  const pid_t b = run_host(file, "b", ns_b, dir);
  const pid_t a = run_host(file, "a", ns_a, dir);
  std::this_thread::sleep_for(1s);
  nats.restart();
  ASSERT_TRUE(nats.ready()) << read_file(dir / "nats-server.log");
  expect_both_end_ok(a, b, dir);
  expect_none_lost(dir, s.messages);
}

// `bloccs ledger` refuses what is not a host's run summary, naming the file, and sums with
// restarts as the launcher does: a message handed over twice is counted twice, never lost.
TEST(TwoHosts, TheSummedLedgerNamesABadFileAndAllowsRepeatsAfterRestarts) {
  TempDir dir;
  std::ofstream(dir / "plain.json") << R"({"network": "demo", "in": 3, "nodes": {}})";
  std::ofstream(dir / "other.json") << R"({"network": "x", "host": "b", "nodes": {}})";
  std::ofstream(dir / "a.json") << R"({"network": "demo", "host": "a", "conserved": true,
    "in": 10, "delivered": 10, "dead_lettered": 0, "lost": 0, "restarts": 0,
    "nodes": {"sink": {"handled": 10, "bridge": {"direction": "out", "port": "demo/sink/in",
                                                  "carried": 10}}}})";
  std::ofstream(dir / "b.json") << R"({"network": "demo", "host": "b", "conserved": true,
    "in": 11, "delivered": 11, "dead_lettered": 0, "lost": 0, "restarts": 1,
    "nodes": {"sink-in-from-net": {"emitted": 11, "bridge": {"direction": "in",
              "port": "demo/sink/in", "carried": 11}}}})";
  std::string out;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "plain.json"}, out), 2) << out;
  EXPECT_NE(out.find("plain.json: is not the summary of a host's part"), std::string::npos) << out;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "other.json"}, out), 2) << out;
  EXPECT_NE(out.find("other.json: is of network x, the files before it of demo"),
            std::string::npos)
      << out;
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b.json"}, out), 0) << out;
  EXPECT_NE(out.find("(1 handed over twice)"), std::string::npos) << out;
  EXPECT_NE(out.find("messages in 10 = delivered 11 + dead-lettered 0 + lost 0 + in the wires 0: "
                     "every message accounted for"),
            std::string::npos)
      << out;
  // Without the restart, one more taken in than carried out cannot be.
  std::ofstream(dir / "b.json") << R"({"network": "demo", "host": "b", "conserved": true,
    "in": 9, "delivered": 9, "restarts": 0, "nodes": {"sink-in-from-net": {"bridge":
    {"direction": "in", "port": "demo/sink/in", "carried": 9}}}})";
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b.json"}, out), 0) << out;
  EXPECT_NE(out.find("so 1 still in the stream"), std::string::npos) << out;
  std::ofstream(dir / "a.json") << R"({"network": "demo", "host": "a", "conserved": true,
    "in": 12, "delivered": 10, "restarts": 0, "nodes": {"sink": {"bridge":
    {"direction": "out", "port": "demo/sink/in", "carried": 10}}}})";
  EXPECT_EQ(sum_ledger(dir, {"a.json", "b.json"}, out), 1) << out;
  EXPECT_NE(out.find("DOES NOT ADD UP"), std::string::npos) << out;
}
