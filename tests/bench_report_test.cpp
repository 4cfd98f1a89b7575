// bloccs-bench's report: results.json's shape, the targets' PASS/MISS, the table, the plots.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "benchmarks/suite/report.hpp"

namespace {

using namespace bloccs::bench;

Figure rtt(const std::string& transport, std::uint32_t bytes, std::uint64_t p50, std::uint64_t p99) {
  Figure f;
  f.transport = transport;
  f.test = "rtt";
  f.bytes = bytes;
  f.count = 100'000;
  f.rtt = Percentiles{p50, p50 + 10, p99, p99 * 2, p99 * 10};
  return f;
}

Figure throughput(const std::string& transport, std::uint32_t bytes, std::uint32_t pushers,
                  double rate) {
  Figure f;
  f.transport = transport;
  f.test = "throughput";
  f.bytes = bytes;
  f.pushers = pushers;
  f.count = 1'000'000;
  f.msgs_per_s = rate;
  return f;
}

// A whole run: every transport, size and pusher count, with round numbers.
Suite full_suite(double spsc_p50_ratio = 1.4) {
  Suite s;
  s.machine = {"2026-11-26T12:00:00Z", "host", "Test CPU", 2, {0, 1}, "6.1", "GCC 12", "Release",
               "bloccs-bench", false};
  for (std::uint32_t bytes : {64u, 512u, 4096u}) {
    s.results.push_back(rtt("floor-spin", bytes, 100, 150));
    s.results.push_back(rtt("floor-futex", bytes, 40'000, 60'000));
    s.results.push_back(rtt("bloccs-spsc", bytes, static_cast<std::uint64_t>(100 * spsc_p50_ratio), 250));
    s.results.push_back(rtt("bloccs-mpsc", bytes, 190, 300));
    s.results.push_back(rtt("bloccs-spsc-parked", bytes, 45'000, 70'000));
    s.results.push_back(rtt("boost-mq", bytes, 50'000, 90'000));
    s.results.push_back(rtt("posix-mq", bytes, 42'000, 80'000));
    s.results.push_back(rtt("uds", bytes, 48'000, 85'000));
    s.results.push_back(rtt("pipe", bytes, 41'000, 75'000));
  }
  for (std::uint32_t bytes : {64u, 4096u})
    for (std::uint32_t pushers : {1u, 2u, 4u}) {
      if (pushers == 1) {
        s.results.push_back(throughput("bloccs-spsc", bytes, 1, 20e6));
        s.results.push_back(throughput("bloccs-spsc-parked", bytes, 1, 18e6));
      }
      s.results.push_back(throughput("bloccs-mpsc", bytes, pushers, 15e6 / pushers));
      s.results.push_back(throughput("boost-mq", bytes, pushers, 1.5e6));
      s.results.push_back(throughput("posix-mq", bytes, pushers, 1e6));
      s.results.push_back(throughput("uds", bytes, pushers, 0.6e6));
      s.results.push_back(throughput("pipe", bytes, pushers, 1.9e6));
    }
  Figure bp = throughput("bloccs-mpsc", 64, 2, 190e3);
  bp.test = "backpressure";
  bp.consumer_alone_msgs_per_s = 195e3;
  bp.pusher_cpu = 0.08;
  s.results.push_back(bp);
  return s;
}

const TargetCheck& target(const std::vector<TargetCheck>& checks, const std::string& name) {
  for (const TargetCheck& c : checks)
    if (c.name == name) return c;
  throw std::runtime_error("no target named " + name);
}

TEST(Report, JsonHasTheIssuesShapeAndLeavesOutWhatDoesNotApply) {
  const nlohmann::json j = to_json(full_suite());
  ASSERT_TRUE(j.contains("machine"));
  EXPECT_EQ(j["machine"]["cpu_model"], "Test CPU");
  const auto& first = j["results"][0];
  EXPECT_EQ(first["transport"], "floor-spin");
  EXPECT_EQ(first["test"], "rtt");
  EXPECT_EQ(first["bytes"], 64);
  EXPECT_EQ(first["pushers"], 1);
  EXPECT_EQ(first["p50_ns"], 100);
  EXPECT_EQ(first["p999_ns"], 300);
  EXPECT_FALSE(first.contains("msgs_per_s"));
  EXPECT_FALSE(first.contains("pusher_cpu"));
  for (const auto& r : j["results"])
    if (r["test"] == "throughput") {
      EXPECT_FALSE(r.contains("p50_ns"));
      EXPECT_DOUBLE_EQ(r["bytes_per_s"].get<double>(),
                       r["msgs_per_s"].get<double>() * r["bytes"].get<double>());
    }
}

TEST(Report, JsonReadsBackToTheSameSuite) {
  const Suite s = full_suite();
  auto back = from_json(to_json(s));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(to_json(*back), to_json(s));
  EXPECT_EQ(back->results.size(), s.results.size());
}

TEST(Report, MalformedJsonNamesTheResultAndField) {
  nlohmann::json j = to_json(full_suite());
  j["results"][3]["p50_ns"] = "fast";
  auto r = from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("results[3]"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("p50_ns"), std::string::npos) << r.error().message;
  j = to_json(full_suite());
  j["results"][0].erase("transport");
  r = from_json(j);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("\"transport\" is missing"), std::string::npos);
  EXPECT_FALSE(from_json(nlohmann::json::array()));
}

TEST(Report, FloorTargetsPassJustUnderTheLimitAndMissJustOver) {
  auto pass = check_targets(full_suite(1.49));
  auto miss = check_targets(full_suite(1.51));
  const std::string name = "bloccs-spsc rtt p50 vs floor-spin";
  EXPECT_TRUE(target(pass, name).met);
  EXPECT_NEAR(*target(pass, name).ratio, 1.49, 0.01);
  EXPECT_FALSE(target(miss, name).met);
  EXPECT_NEAR(*target(miss, name).ratio, 1.51, 0.01);
  // p99 250 vs 150: 1.67 <= 2; the MPSC p50 190 vs 100: 1.9 <= 2.
  EXPECT_TRUE(target(pass, "bloccs-spsc rtt p99 vs floor-spin").met);
  EXPECT_TRUE(target(pass, "bloccs-mpsc rtt p50 vs floor-spin").met);
  // parked 45 us vs floor-futex 40 us: 1.125 <= 1.25.
  EXPECT_TRUE(target(pass, "bloccs-spsc-parked rtt p50 vs floor-futex").met);
}

TEST(Report, PeerTargetsUseTheBestPeer) {
  const auto checks = check_targets(full_suite(1.4));
  // Best p50 peer is the pipe (41 us): 41,000 / 140 = 293 >= 100.
  const TargetCheck& spsc = target(checks, "bloccs-spsc rtt p50 vs the best peer");
  EXPECT_TRUE(spsc.met);
  EXPECT_NEAR(*spsc.ratio, 41'000.0 / 140, 0.01);
  EXPECT_NE(spsc.detail.find("pipe"), std::string::npos) << spsc.detail;
  // Parked 45 us is worse than the pipe's 41 us.
  const TargetCheck& parked = target(checks, "bloccs-spsc-parked rtt p50 vs the best peer");
  EXPECT_FALSE(parked.met);
  EXPECT_NEAR(*parked.ratio, 41.0 / 45, 0.001);
  // Throughput: the best peer is the pipe at 1.9 M/s; 20 / 1.9 = 10.5 >= 10.
  const TargetCheck& tp = target(checks, "bloccs-spsc throughput msgs/s vs the best peer");
  EXPECT_TRUE(tp.met);
  EXPECT_NEAR(*tp.ratio, 20.0 / 1.9, 0.01);
}

TEST(Report, AMissingFigureIsAMissThatSaysWhatIsMissing) {
  Suite s = full_suite();
  std::erase_if(s.results, [](const Figure& f) { return f.transport == "floor-futex"; });
  const auto checks = check_targets(s);
  const TargetCheck& c = target(checks, "bloccs-spsc-parked rtt p50 vs floor-futex");
  EXPECT_FALSE(c.met);
  EXPECT_FALSE(c.ratio);
  EXPECT_NE(c.detail.find("not measured: floor-futex"), std::string::npos) << c.detail;
  EXPECT_NE(format_targets(check_targets(s)).find("MISS"), std::string::npos);
}

TEST(Report, MarkdownShowsEveryFigureWithItsRatio) {
  const Suite s = full_suite(1.4);
  const std::string md = markdown(s, check_targets(s));
  EXPECT_NE(md.find("Test CPU"), std::string::npos);
  EXPECT_NE(md.find("| bloccs-spsc | 64 | 140 ns |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1.40x |"), std::string::npos);        // p50 / floor-spin
  EXPECT_NE(md.find("| pipe | 64 | 1 | 1.90 M/s |"), std::string::npos) << md;
  EXPECT_NE(md.find("| bloccs-spsc | 64 | 1 | 20.00 M/s | 1280.0 | 10.53x |"), std::string::npos) << md;
  EXPECT_NE(md.find("8.0 %"), std::string::npos);            // back-pressure pusher CPU
  EXPECT_NE(md.find("PASS"), std::string::npos);
}

bool is_png(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in && std::string(sig, 8) == "\x89PNG\r\n\x1a\n" && std::filesystem::file_size(p) > 1000;
}

TEST(Report, WritesJsonTableAndPngPlots) {
  ASSERT_EQ(std::system("command -v gnuplot >/dev/null"), 0)
      << "gnuplot is needed for the plots: apt-get install gnuplot-nox";
  const auto dir = std::filesystem::temp_directory_path() /
                   ("bloccs-report-test-" + std::to_string(getpid()));
  const Suite s = full_suite();
  auto st = write_report(s, dir.string());
  ASSERT_TRUE(st) << st.error().message;
  for (const char* png : {"rtt.png", "throughput.png", "backpressure.png"})
    EXPECT_TRUE(is_png(dir / png)) << png;
  std::ifstream json(dir / "results.json");
  auto back = from_json(nlohmann::json::parse(json));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->results.size(), s.results.size());
  EXPECT_GT(std::filesystem::file_size(dir / "results.md"), 1000u);
  std::filesystem::remove_all(dir);
}

}  // namespace
