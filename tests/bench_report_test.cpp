// SPDX-License-Identifier: Apache-2.0
// bloccs-bench's report: results.json's shape and reading it back, the targets' PASS/MISS right
// around their limits, the Markdown tables, the gnuplot script and the PNGs it draws.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>

#include "benchmarks/suite/report.hpp"

namespace {

using namespace bloccs::bench;
using nlohmann::json;

const std::vector<std::string> kPeers = {"boost-mq", "posix-mq", "uds", "pipe", "zmq-ipc"};

Figure rtt(const std::string& transport, std::uint32_t bytes, Percentiles p) {
  Figure f;
  f.transport = transport;
  f.test = "rtt";
  f.bytes = bytes;
  f.count = 100'000;
  f.rtt = p;
  return f;
}

Figure stream(const std::string& test, const std::string& transport, std::uint32_t bytes,
              std::uint32_t pushers, double msgs_per_s) {
  Figure f;
  f.transport = transport;
  f.test = test;
  f.bytes = bytes;
  f.pushers = pushers;
  f.count = static_cast<std::uint64_t>(msgs_per_s / 4);  // a quarter-second measurement
  f.msgs_per_s = msgs_per_s;
  return f;
}

// A whole run with figures like a 2-vCPU machine's: every transport, size and pusher count.
// Every target passes except the parked p99 against the best peer (92 µs vs pipe's 80 µs).
Suite realistic_suite() {
  Suite s;
  s.machine = {"2026-11-26T12:00:00Z",
               "bench-host",
               "Test CPU @ 3.0GHz",
               2,
               {0, 1},
               "6.1.0-18",
               "GCC 12.2.0",
               "Release",
               "bloccs-bench --out bench-results",
               false};
  const std::vector<std::pair<std::string, Percentiles>> rtt64 = {
      {"floor-spin", {190, 230, 480, 2'400, 85'000}},
      {"floor-futex", {9'500, 12'000, 21'000, 48'000, 900'000}},
      {"bloccs-spsc", {260, 310, 700, 3'100, 95'000}},
      {"bloccs-mpsc", {300, 400, 900, 4'000, 120'000}},
      {"bloccs-spsc-parked", {11'000, 14'000, 92'000, 150'000, 1'100'000}},
      {"boost-mq", {45'000, 60'000, 120'000, 300'000, 4'000'000}},
      {"posix-mq", {38'000, 50'000, 95'000, 250'000, 3'500'000}},
      {"uds", {41'000, 52'000, 100'000, 260'000, 3'200'000}},
      {"pipe", {35'000, 45'000, 80'000, 200'000, 3'000'000}},
      {"zmq-ipc", {80'000, 95'000, 160'000, 400'000, 5'000'000}},
  };
  for (std::uint32_t bytes : {64u, 512u, 4096u}) {
    const double scale = bytes == 64 ? 1.0 : bytes == 512 ? 1.08 : 1.4;  // copies cost
    for (const auto& [name, p] : rtt64) {
      const auto scaled = [&](std::uint64_t v) { return std::uint64_t(std::llround(v * scale)); };
      s.results.push_back(
          rtt(name, bytes,
              {scaled(p.p50), scaled(p.p90), scaled(p.p99), scaled(p.p999), scaled(p.max)}));
    }
  }
  // msgs/s at 64 B for 1, 2, 4 pushers; the single-sender ones have only 1.
  const std::vector<std::pair<std::string, std::vector<double>>> rates64 = {
      {"bloccs-spsc", {28e6}},
      {"bloccs-mpsc", {16e6, 9e6, 7e6}},
      {"bloccs-spsc-parked", {22e6}},
      {"boost-mq", {1.1e6, 0.9e6, 0.8e6}},
      {"posix-mq", {0.9e6, 0.8e6, 0.7e6}},
      {"uds", {1.4e6, 1.1e6, 1.0e6}},
      {"pipe", {1.9e6, 1.2e6, 1.0e6}},
      {"zmq-ipc", {0.5e6, 0.4e6, 0.3e6}},
  };
  for (std::uint32_t bytes : {64u, 4096u})
    for (const auto& [name, rates] : rates64)
      for (std::size_t i = 0; i < rates.size(); ++i)
        s.results.push_back(
            stream("throughput", name, bytes, 1u << i, bytes == 64 ? rates[i] : rates[i] / 9));
  const std::vector<std::pair<std::string, double>> pusher_cpu = {
      {"bloccs-spsc", 0.04}, {"bloccs-mpsc", 0.06}, {"bloccs-spsc-parked", 0.03},
      {"boost-mq", 0.41},    {"posix-mq", 0.02},    {"uds", 0.03},
      {"pipe", 0.02},        {"zmq-ipc", 0.9}};
  for (const auto& [name, cpu] : pusher_cpu) {
    Figure f =
        stream("backpressure", name, 64, name.ends_with("spsc") || name.ends_with("parked") ? 1 : 2,
               name == "boost-mq" ? 150e3 : 186e3);
    f.consumer_alone_msgs_per_s = 195e3;
    f.pusher_cpu = cpu;
    s.results.push_back(f);
  }
  return s;
}

Figure& figure(Suite& s, const std::string& transport, const std::string& test,
               std::uint32_t bytes = 64, std::uint32_t pushers = 1) {
  for (Figure& f : s.results)
    if (f.transport == transport && f.test == test && f.bytes == bytes && f.pushers == pushers)
      return f;
  throw std::runtime_error("the suite has no " + transport + " " + test);
}

Percentiles& rtt64(Suite& s, const std::string& transport) {
  return *figure(s, transport, "rtt").rtt;
}

void erase(Suite& s, const std::string& transport, const std::string& test) {
  std::erase_if(s.results,
                [&](const Figure& f) { return f.transport == transport && f.test == test; });
}

const TargetCheck& target(const std::vector<TargetCheck>& checks, const std::string& name) {
  for (const TargetCheck& c : checks)
    if (c.name == name) return c;
  throw std::runtime_error("no target named " + name);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Figure and friends have no operator==: compare every field here.
bool same(const Figure& a, const Figure& b) {
  const auto p = [](const std::optional<Percentiles>& r) {
    return r ? std::vector<std::uint64_t>{r->p50, r->p90, r->p99, r->p999, r->max}
             : std::vector<std::uint64_t>{};
  };
  return a.transport == b.transport && a.test == b.test && a.bytes == b.bytes &&
         a.pushers == b.pushers && a.count == b.count && p(a.rtt) == p(b.rtt) &&
         a.msgs_per_s == b.msgs_per_s &&
         a.consumer_alone_msgs_per_s == b.consumer_alone_msgs_per_s && a.pusher_cpu == b.pusher_cpu;
}

bool same(const Suite& a, const Suite& b) {
  const Machine &m = a.machine, &n = b.machine;
  if (std::tie(m.date, m.host, m.cpu_model, m.cpus, m.pinned, m.kernel, m.compiler, m.build_type,
               m.command, m.quick) != std::tie(n.date, n.host, n.cpu_model, n.cpus, n.pinned,
                                               n.kernel, n.compiler, n.build_type, n.command,
                                               n.quick))
    return false;
  if (a.results.size() != b.results.size()) return false;
  for (std::size_t i = 0; i < a.results.size(); ++i)
    if (!same(a.results[i], b.results[i])) return false;
  return true;
}

std::set<std::string> keys(const json& object) {
  std::set<std::string> out;
  for (const auto& [key, value] : object.items()) out.insert(key);
  return out;
}

// ---- results.json -------------------------------------------------------------------------------

TEST(ReportJson, HasTheIssuesShapeAndLeavesOutWhatDoesNotApply) {
  Suite s = realistic_suite();
  figure(s, "pipe", "backpressure", 64, 2).pusher_cpu = NAN;  // not finite: left out, not null
  const json j = to_json(s);
  EXPECT_EQ(keys(j), (std::set<std::string>{"machine", "results"}));
  EXPECT_EQ(keys(j["machine"]),
            (std::set<std::string>{"date", "host", "cpu_model", "cpus", "pinned", "kernel",
                                   "compiler", "build_type", "command", "quick"}));
  EXPECT_EQ(j["machine"]["pinned"], json::array({0, 1}));
  ASSERT_EQ(j["results"].size(), s.results.size());

  const std::set<std::string> common = {"transport", "test", "bytes", "pushers", "count"};
  for (const json& r : j["results"]) {
    std::set<std::string> expected = common;
    if (r["test"] == "rtt") expected.insert({"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"});
    if (r["test"] != "rtt") expected.insert({"msgs_per_s", "bytes_per_s"});
    if (r["test"] == "backpressure" && r["transport"] != "pipe")
      expected.insert({"consumer_alone_msgs_per_s", "pusher_cpu"});
    if (r["test"] == "backpressure" && r["transport"] == "pipe")
      expected.insert("consumer_alone_msgs_per_s");
    EXPECT_EQ(keys(r), expected) << r.dump();
    if (r.contains("bytes_per_s")) {
      EXPECT_DOUBLE_EQ(r["bytes_per_s"].get<double>(),
                       r["msgs_per_s"].get<double>() * r["bytes"].get<double>());
    }
  }
  const json& first = j["results"][0];
  EXPECT_EQ(first["transport"], "floor-spin");
  EXPECT_EQ(first["bytes"], 64);
  EXPECT_EQ(first["pushers"], 1);
  EXPECT_EQ(first["p50_ns"], 190);
  EXPECT_EQ(first["p999_ns"], 2'400);
  EXPECT_EQ(first["max_ns"], 85'000);
}

TEST(ReportJson, ReadsBackToTheSameSuite) {
  Suite s = realistic_suite();
  s.machine.quick = true;
  s.machine.pinned = {};
  auto back = from_json(to_json(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(same(*back, s));
  // Through text, as --report reads a saved file.
  auto reread = from_json(json::parse(to_json(s).dump(2)));
  ASSERT_TRUE(reread) << reread.error().message;
  EXPECT_TRUE(same(*reread, s));
  // And the comparison itself sees a difference.
  figure(s, "uds", "throughput", 4096, 4).msgs_per_s = 1;
  EXPECT_FALSE(same(*back, s));
}

TEST(ReportJson, MalformedInputNamesTheResultAndTheField) {
  struct Case {
    std::function<void(json&)> spoil;
    std::string says;
  };
  const std::vector<Case> cases = {
      {[](json& j) { j["results"][3]["p50_ns"] = "fast"; },
       "results[3].p50_ns must be a non-negative integer, not \"fast\""},
      {[](json& j) { j["results"][0].erase("transport"); }, "results[0].transport is missing"},
      {[](json& j) { j["results"][5]["bytes"] = -64; }, "results[5].bytes must be a non-negative"},
      {[](json& j) { j["results"][6]["pushers"] = 1ull << 40; }, "results[6].pushers"},
      {[](json& j) { j["results"][2].erase("p90_ns"); }, "results[2].p90_ns is missing"},
      {[](json& j) { j["results"][1]["test"] = "latency"; }, "results[1].test must be \"rtt\""},
      {[](json& j) { j["results"][40]["msgs_per_s"] = nullptr; },
       "results[40].msgs_per_s must be a number, not null"},
      {[](json& j) { j["results"][7] = 7; }, "results[7] must be an object"},
      {[](json& j) { j["machine"]["cpus"] = "two"; }, "machine.cpus must be a non-negative"},
      {[](json& j) {
         j["machine"]["pinned"] = json::array({0, -1});
       },
       "machine.pinned"},
      {[](json& j) { j["results"] = json::object(); }, "results must be an array"},
      {[](json& j) { j = json::array(); }, "needs \"machine\" and \"results\""},
  };
  for (const Case& c : cases) {
    json j = to_json(realistic_suite());
    c.spoil(j);
    auto r = from_json(j);
    ASSERT_FALSE(r) << c.says;
    EXPECT_EQ(r.code(), bloccs::Errc::bad_config);
    EXPECT_TRUE(contains(r.error().message, c.says)) << r.error().message;
  }
}

TEST(ReportJson, MachineFieldsMayBeLeftOut) {
  json j = to_json(realistic_suite());
  j["machine"] = json::object();
  auto r = from_json(j);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->machine.cpus, 0u);
  EXPECT_EQ(r->results.size(), realistic_suite().results.size());
}

// ---- targets ------------------------------------------------------------------------------------

TEST(ReportTargets, NineTargetsAndTheRealisticRunMeetsAllButOne) {
  const auto checks = check_targets(realistic_suite());
  ASSERT_EQ(checks.size(), 9u);
  for (const TargetCheck& c : checks) {
    EXPECT_TRUE(c.ratio) << c.name;
    EXPECT_EQ(c.met, c.name != "bloccs-spsc-parked rtt p99 vs best peer")
        << c.name << ": " << c.detail;
  }
}

// Each target gets a ratio just inside and just outside its limit.
TEST(ReportTargets, EachPassesJustInsideItsLimitAndMissesJustOutside) {
  // Sets the subject's figure so that the target's ratio is `r`.
  using Setter = std::function<void(Suite&, double)>;
  struct Case {
    std::string name;
    double limit;
    Setter set;
    double inside, outside;
  };
  // The best peer's figures, made round: pipe is best in every one.
  const auto round_peers = [](Suite& s) {
    for (const std::string& peer : kPeers) {
      const bool pipe = peer == "pipe";
      rtt64(s, peer).p50 = pipe ? 30'000 : 40'000;
      rtt64(s, peer).p99 = pipe ? 60'000 : 80'000;
      figure(s, peer, "throughput").msgs_per_s = pipe ? 2e6 : 1e6;
    }
  };
  const auto ns = [](double v) { return std::uint64_t(std::llround(v)); };
  const std::vector<Case> cases = {
      {"bloccs-spsc rtt p50 vs floor-spin", 1.4,
       [&](Suite& s, double r) {
         rtt64(s, "floor-spin").p50 = 200;
         rtt64(s, "bloccs-spsc").p50 = ns(200 * r);
       },
       1.39, 1.41},
      {"bloccs-spsc rtt p99 vs floor-spin", 2,
       [&](Suite& s, double r) {
         rtt64(s, "floor-spin").p99 = 400;
         rtt64(s, "bloccs-spsc").p99 = ns(400 * r);
       },
       1.99, 2.01},
      {"bloccs-spsc-parked rtt p50 vs floor-futex", 1.25,
       [&](Suite& s, double r) {
         rtt64(s, "floor-futex").p50 = 10'000;
         rtt64(s, "bloccs-spsc-parked").p50 = ns(10'000 * r);
       },
       1.24, 1.26},
      {"bloccs-mpsc rtt p50 vs floor-spin", 1.6,
       [&](Suite& s, double r) {
         rtt64(s, "floor-spin").p50 = 200;
         rtt64(s, "bloccs-mpsc").p50 = ns(200 * r);
       },
       1.59, 1.61},
      {"bloccs-spsc rtt p50 vs best peer", 100,
       [&](Suite& s, double r) {
         round_peers(s);
         rtt64(s, "bloccs-spsc").p50 = ns(30'000 / r);
       },
       101, 99},
      {"bloccs-mpsc rtt p50 vs best peer", 100,
       [&](Suite& s, double r) {
         round_peers(s);
         rtt64(s, "bloccs-mpsc").p50 = ns(30'000 / r);
       },
       101, 99},
      {"bloccs-spsc-parked rtt p50 vs best peer", 1,
       [&](Suite& s, double r) {
         round_peers(s);
         rtt64(s, "bloccs-spsc-parked").p50 = ns(30'000 * r);
       },
       0.99, 1.01},
      {"bloccs-spsc-parked rtt p99 vs best peer", 1,
       [&](Suite& s, double r) {
         round_peers(s);
         rtt64(s, "bloccs-spsc-parked").p99 = ns(60'000 * r);
       },
       0.99, 1.01},
      {"bloccs-spsc throughput msgs/s vs best peer", 10,
       [&](Suite& s, double r) {
         round_peers(s);
         figure(s, "bloccs-spsc", "throughput").msgs_per_s = 2e6 * r;
       },
       10.1, 9.9},
  };
  for (const Case& c : cases)
    for (const double r : {c.inside, c.outside}) {
      Suite s = realistic_suite();
      c.set(s, r);
      const TargetCheck t = target(check_targets(s), c.name);
      ASSERT_TRUE(t.ratio) << c.name;
      EXPECT_NEAR(*t.ratio, r, r * 0.002) << c.name;
      EXPECT_EQ(t.limit, c.limit) << c.name;
      EXPECT_EQ(t.met, r == c.inside) << c.name << " at " << r << ": " << t.detail;
    }
}

TEST(ReportTargets, EachComparisonPicksItsOwnBestPeer) {
  Suite s = realistic_suite();
  rtt64(s, "posix-mq").p50 = 9'000;                             // best p50
  rtt64(s, "uds").p99 = 20'000;                                 // best p99
  figure(s, "boost-mq", "throughput").msgs_per_s = 3e6;         // best msgs/s
  figure(s, "boost-mq", "throughput", 64, 2).msgs_per_s = 9e6;  // another pusher count: ignored
  const auto checks = check_targets(s);

  const TargetCheck& p50 = target(checks, "bloccs-spsc rtt p50 vs best peer");
  EXPECT_NEAR(*p50.ratio, 9'000.0 / 260, 1e-9);
  EXPECT_TRUE(contains(p50.detail, "best peer posix-mq 9.00 µs")) << p50.detail;
  const TargetCheck& parked = target(checks, "bloccs-spsc-parked rtt p50 vs best peer");
  EXPECT_NEAR(*parked.ratio, 11'000.0 / 9'000, 1e-9);
  EXPECT_FALSE(parked.met);

  const TargetCheck& p99 = target(checks, "bloccs-spsc-parked rtt p99 vs best peer");
  EXPECT_NEAR(*p99.ratio, 92'000.0 / 20'000, 1e-9);
  EXPECT_TRUE(contains(p99.detail, "best peer uds 20.0 µs")) << p99.detail;

  const TargetCheck& tp = target(checks, "bloccs-spsc throughput msgs/s vs best peer");
  EXPECT_NEAR(*tp.ratio, 28e6 / 3e6, 1e-9);
  EXPECT_FALSE(tp.met);
  EXPECT_TRUE(contains(tp.detail, "best peer boost-mq 3.00 M/s")) << tp.detail;
  EXPECT_TRUE(contains(format_targets(checks), "best peer boost-mq"));

  // Without the best peer, the next best one; and the report says who was not measured.
  erase(s, "posix-mq", "rtt");
  const TargetCheck next = target(check_targets(s), "bloccs-spsc rtt p50 vs best peer");
  EXPECT_NEAR(*next.ratio, 35'000.0 / 260, 1e-9);
  EXPECT_TRUE(contains(next.detail, "best peer pipe")) << next.detail;
  EXPECT_TRUE(contains(next.detail, "not measured: posix-mq")) << next.detail;
}

TEST(ReportTargets, AMissingFigureIsAMissThatSaysWhatIsMissing) {
  Suite s = realistic_suite();
  erase(s, "floor-futex", "rtt");
  erase(s, "bloccs-mpsc", "rtt");
  for (const std::string& peer : kPeers) erase(s, peer, "throughput");
  std::erase_if(s.results, [](const Figure& f) {
    return f.transport == "floor-spin" && f.bytes == 64;  // other sizes do not stand in
  });
  const auto checks = check_targets(s);
  const auto expect_missing = [&](const std::string& name, const std::string& says) {
    const TargetCheck& c = target(checks, name);
    EXPECT_FALSE(c.met) << name;
    EXPECT_FALSE(c.ratio) << name;
    EXPECT_TRUE(contains(c.detail, says)) << name << ": " << c.detail;
  };
  expect_missing("bloccs-spsc-parked rtt p50 vs floor-futex", "not measured: floor-futex rtt 64 B");
  expect_missing("bloccs-spsc rtt p50 vs floor-spin", "not measured: floor-spin rtt 64 B");
  expect_missing("bloccs-mpsc rtt p50 vs floor-spin",
                 "not measured: bloccs-mpsc rtt 64 B, floor-spin rtt 64 B");
  expect_missing("bloccs-mpsc rtt p50 vs best peer", "not measured: bloccs-mpsc rtt 64 B");
  expect_missing("bloccs-spsc throughput msgs/s vs best peer", "not measured: any peer");
  // Still measured: untouched.
  EXPECT_TRUE(target(checks, "bloccs-spsc rtt p50 vs best peer").met);

  const std::string text = format_targets(checks);
  EXPECT_TRUE(contains(text, "MISS         -  bloccs-spsc-parked rtt p50 vs floor-futex")) << text;
  EXPECT_TRUE(contains(text, "PASS")) << text;
}

TEST(ReportTargets, FormatShowsResultRatioRuleAndFigures) {
  Suite s = realistic_suite();
  rtt64(s, "floor-spin").p50 = 200;
  rtt64(s, "bloccs-spsc").p50 = 278;
  const std::string text = format_targets(check_targets(s));
  EXPECT_TRUE(contains(text,
                       "  PASS     1.39x  bloccs-spsc rtt p50 vs floor-spin: <= 1.4 x "
                       "floor-spin rtt p50 (bloccs-spsc 278 ns vs floor-spin 200 ns)\n"))
      << text;
  EXPECT_TRUE(contains(text,
                       "  MISS     1.15x  bloccs-spsc-parked rtt p99 vs best peer: <= the "
                       "best peer's rtt p99 (bloccs-spsc-parked 92.0 µs vs best peer pipe "
                       "80.0 µs)\n"))
      << text;
  EXPECT_TRUE(contains(text, "at least 100 x lower than the best peer's rtt p50")) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 10);  // a heading and nine targets
}

// ---- Markdown -----------------------------------------------------------------------------------

TEST(ReportMarkdown, ShowsEveryFigureWithItsRatio) {
  Suite s = realistic_suite();
  rtt64(s, "floor-spin") = {200, 230, 400, 2'400, 85'000};
  rtt64(s, "bloccs-spsc") = {298, 310, 700, 3'100, 95'000};
  const std::string md = markdown(s, check_targets(s));

  EXPECT_TRUE(contains(md,
                       "Test CPU @ 3.0GHz, 2 CPUs (receiver pinned to CPU 0, senders to CPU 1), "
                       "Linux 6.1.0-18, GCC 12.2.0, Release build."))
      << md;
  EXPECT_TRUE(contains(md, "Command: `bloccs-bench --out bench-results`"));
  EXPECT_FALSE(contains(md, "quick run"));
  // RTT: units that stay readable, and the ratios to floor-spin at the same size.
  EXPECT_TRUE(contains(md,
                       "| bloccs-spsc | 64 | 298 ns | 310 ns | 700 ns | 3.10 µs | 95.0 µs | "
                       "1.49x | 1.75x |"))
      << md;
  EXPECT_TRUE(contains(md,
                       "| bloccs-spsc-parked | 4096 | 15.4 µs | 19.6 µs | 129 µs | 210 µs | "
                       "1.54 ms | 57.9x | 192x |"))
      << md;
  // Throughput: M/s and k/s, MB/s, and the ratio to the best peer (pipe, 1.9 M/s).
  EXPECT_TRUE(contains(md, "| bloccs-spsc | 64 | 1 | 28.0 M/s | 1792 | 14.7x |")) << md;
  EXPECT_TRUE(contains(md, "| pipe | 64 | 1 | 1.90 M/s | 122 | 1.00x |")) << md;
  EXPECT_TRUE(contains(md, "| posix-mq | 4096 | 4 | 77.8 k/s | 319 | 0.70x |")) << md;
  EXPECT_TRUE(contains(md, "Best peer: 64 B, 1 pusher: pipe 1.90 M/s;")) << md;
  // Back-pressure: the pace against the consumer's own, and each pusher's CPU.
  EXPECT_TRUE(contains(md, "| boost-mq | 2 | 150 k/s | 195 k/s | 76.9 % | 41.0 % |")) << md;
  // Targets as a table.
  EXPECT_TRUE(contains(md,
                       "| **MISS** | bloccs-spsc rtt p50 vs floor-spin | <= 1.4 x floor-spin rtt "
                       "p50 | 1.49x |"))
      << md;
  EXPECT_TRUE(contains(md, "| **MISS** | bloccs-spsc-parked rtt p99 vs best peer |")) << md;
}

TEST(ReportMarkdown, RowsComeFloorsThenBloccsThenPeersWhateverTheInputOrder) {
  Suite s = realistic_suite();
  std::reverse(s.results.begin(), s.results.end());
  const std::string md = markdown(s, check_targets(s));
  std::size_t last = 0;
  for (const char* row :
       {"| floor-spin | 64 |", "| floor-futex | 64 |", "| bloccs-spsc | 64 |",
        "| bloccs-mpsc | 64 |", "| bloccs-spsc-parked | 64 |", "| boost-mq | 64 |",
        "| posix-mq | 64 |", "| uds | 64 |", "| pipe | 64 |", "| floor-spin | 512 |"}) {
    const std::size_t at = md.find(row, last);
    ASSERT_NE(at, std::string::npos) << row << " after offset " << last;
    last = at;
  }
}

TEST(ReportMarkdown, SaysWhatIsMissingAndWarnsAboutAQuickRun) {
  Suite s = realistic_suite();
  s.machine.quick = true;
  erase(s, "floor-spin", "rtt");
  std::erase_if(s.results, [](const Figure& f) { return f.test == "backpressure"; });
  const std::string md = markdown(s, check_targets(s));
  EXPECT_TRUE(contains(md, "**Warning: a quick run**")) << md;
  EXPECT_TRUE(
      contains(md, "| pipe | 64 | 35.0 µs | 45.0 µs | 80.0 µs | 200 µs | 3.00 ms | — | — |"))
      << md;
  EXPECT_TRUE(contains(md, "## Back-pressure\n\nNot measured in this run.\n")) << md;
}

// ---- gnuplot ------------------------------------------------------------------------------------

TEST(ReportPlots, ScriptHoldsItsDataAndDrawsOnlyWhatWasMeasured) {
  Suite s = realistic_suite();
  std::string gp = gnuplot_script(s);
  for (const char* part :
       {"$rtt64 << EOD\n# percentile floor-spin floor-futex bloccs-spsc",
        "p50 190 9500 260 300 11000 45000 38000 41000 35000 80000\n", "$rtt512 << EOD",
        "$rtt4096 << EOD", "$tp64 << EOD",
        "1 28000000 16000000 22000000 1100000 900000 1400000 1900000 500000\n",
        "2 - 9000000 - 900000 800000 1100000 1200000 400000\n", "$tp4096 << EOD", "$bp << EOD",
        "set terminal pngcairo noenhanced size 1000,600", "set output \"rtt.png\"",
        "set output \"throughput.png\"", "set output \"backpressure.png\"",
        "set multiplot layout 1,3", "set multiplot layout 1,2", "set logscale y",
        "title \"floor-spin\"", "dt 2 lw 2 title \"floor-futex\""})
    EXPECT_TRUE(contains(gp, part)) << part << "\n" << gp;

  // Without the 512-byte round trips, no panel for them; without back-pressure, no bar chart;
  // a transport measured at no size of a panel has no line in it.
  std::erase_if(s.results, [](const Figure& f) {
    return (f.test == "rtt" && f.bytes == 512) || f.test == "backpressure" ||
           (f.transport == "uds" && f.test == "rtt" && f.bytes == 4096);
  });
  gp = gnuplot_script(s);
  EXPECT_FALSE(contains(gp, "$rtt512")) << gp;
  EXPECT_TRUE(contains(gp, "set multiplot layout 1,2 title \"Round-trip")) << gp;
  EXPECT_FALSE(contains(gp, "backpressure.png")) << gp;
  EXPECT_TRUE(contains(gp,
                       "$rtt4096 << EOD\n# percentile floor-spin floor-futex bloccs-spsc "
                       "bloccs-mpsc bloccs-spsc-parked boost-mq posix-mq pipe zmq-ipc\n"))
      << gp;
  EXPECT_FALSE(contains(gnuplot_script(Suite{}), "set output")) << gnuplot_script(Suite{});
}

bool is_png(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  char signature[8] = {};
  in.read(signature, sizeof signature);
  return in && std::string(signature, 8) == "\x89PNG\r\n\x1a\n" &&
         std::filesystem::file_size(p) > 1000;
}

// A fresh directory under /tmp, removed however the test ends.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::path("/tmp") / (name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

bool gnuplot_on_path() {
  return std::system("command -v gnuplot >/dev/null 2>&1") == 0;
}
constexpr const char* kInstallGnuplot =
    "gnuplot is not on PATH: install it (apt-get install gnuplot-nox; scripts/install-deps.sh "
    "does)";

TEST(ReportFiles, WritesJsonTableScriptAndPngPlots) {
  ASSERT_TRUE(gnuplot_on_path()) << kInstallGnuplot;
  const TempDir dir("bloccs-report-test");
  const Suite s = realistic_suite();
  const auto where = dir.path / "made" / "by-write-report";  // made if missing
  auto st = write_report(s, where.string());
  ASSERT_TRUE(st) << st.error().message;
  for (const char* png : {"rtt.png", "throughput.png", "backpressure.png"})
    EXPECT_TRUE(is_png(where / png)) << png;

  std::ifstream json_file(where / "results.json");
  const std::string text((std::istreambuf_iterator<char>(json_file)), {});
  EXPECT_TRUE(text.starts_with("{\n  \"machine\": {\n    \"build_type\"")) << text.substr(0, 80);
  auto back = from_json(json::parse(text));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_TRUE(same(*back, s));

  std::ifstream md(where / "results.md");
  const std::string table((std::istreambuf_iterator<char>(md)), {});
  EXPECT_EQ(table, markdown(s, check_targets(s)));
  EXPECT_TRUE(std::filesystem::exists(where / "plots.gp"));
}

TEST(ReportFiles, AGnuplotFailureIsAnErrorNamingTheScript) {
  ASSERT_TRUE(gnuplot_on_path()) << kInstallGnuplot;
  const TempDir dir("bloccs-report-fail");
  // gnuplot cannot open rtt.png for writing when a directory has that name.
  std::filesystem::create_directories(dir.path / "rtt.png");
  auto st = write_report(realistic_suite(), dir.path.string());
  ASSERT_FALSE(st);
  EXPECT_TRUE(contains(st.error().message, "gnuplot failed on " + (dir.path / "plots.gp").string()))
      << st.error().message;
}

TEST(ReportFiles, AnUnwritableDirectoryIsAnError) {
  auto st = write_report(realistic_suite(), "/proc/bloccs-report-cannot-be-here");
  ASSERT_FALSE(st);
  EXPECT_TRUE(contains(st.error().message, "/proc/bloccs-report-cannot-be-here"))
      << st.error().message;
}

// Draws the realistic suite into /tmp/bloccs-report-preview/ to look at the plots by eye:
// bench_report_test --gtest_also_run_disabled_tests --gtest_filter='*Preview*'
TEST(ReportFiles, DISABLED_Preview) {
  ASSERT_TRUE(gnuplot_on_path()) << kInstallGnuplot;
  auto st = write_report(realistic_suite(), "/tmp/bloccs-report-preview");
  ASSERT_TRUE(st) << st.error().message;
}

}  // namespace

// The histogram's cost (issue 16): bloccs-spsc minus bloccs-spsc-nohist, per message.
TEST(BenchReport, TheHistogramsCostPerMessageComesFromTheTwoSpscPortsOfTheSameRun) {
  Suite s = realistic_suite();
  EXPECT_EQ(format_histogram_cost(s), "") << "nothing without bloccs-spsc-nohist";
  EXPECT_NE(markdown(s, check_targets(s)).find("## The time-in-queue histogram, its cost\n\n"
                                               "Not measured in this run."),
            std::string::npos);
  // rtt p50 260 ns with it, 244 without: 16 ns per round trip, 8 per message. Streaming
  // 28 M/s with it (35.7 ns per message), 31.25 M/s without (32 ns): 3.7 ns.
  s.results.push_back(rtt("bloccs-spsc-nohist", 64, {244, 300, 690, 3'000, 90'000}));
  s.results.push_back(stream("throughput", "bloccs-spsc-nohist", 64, 1, 31.25e6));
  const std::string line = format_histogram_cost(s);
  EXPECT_EQ(line,
            "  PASS  time-in-queue histogram, 64 B: +8.0 ns per message (rtt), +3.7 ns "
            "(streaming); budget 10 ns\n")
      << line;
  const std::string md = markdown(s, check_targets(s));
  EXPECT_NE(md.find("| 64 | +8.0 ns | +3.7 ns |"), std::string::npos) << md;
  // 30 ns per round trip more: 15 per message, past the budget.
  rtt64(s, "bloccs-spsc").p50 = 274;
  EXPECT_TRUE(format_histogram_cost(s).starts_with("  MISS  ")) << format_histogram_cost(s);
}
