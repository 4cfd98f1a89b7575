// SPDX-License-Identifier: Apache-2.0
// bloccs-bench as a user runs it: a quick run writes the report, bad arguments are refused, and
// a run stopped half-way (SIGTERM, or SIGKILL) leaves nothing of its own in /dev/shm.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

// Starts bloccs-bench with `args`, stdout and stderr into `log`.
pid_t start(const std::vector<std::string>& args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(BLOCCS_BENCH_PATH)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(BLOCCS_BENCH_PATH, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// /dev/shm entries that belong to the run of process `pid` (its namespace is bench-<pid>).
std::vector<std::string> run_leftovers(pid_t pid) {
  const std::string tag = "bench-" + std::to_string(pid);
  std::vector<std::string> found;
  if (DIR* dir = opendir("/dev/shm")) {
    while (const dirent* e = readdir(dir))
      if (std::strstr(e->d_name, tag.c_str())) found.emplace_back(e->d_name);
    closedir(dir);
  }
  return found;
}

class BenchDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bloccs-bench-test-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(BenchDriver, AQuickRunWritesResultsTableAndPlots) {
  const pid_t pid = start({"--quick", "--only", "floor-spin,bloccs-spsc,bloccs-mpsc,pipe", "--out",
                           (dir_ / "out").string()},
                          dir_ / "log");
  ASSERT_EQ(wait_exit(pid), 0) << read_all(dir_ / "log");
  const nlohmann::json j = nlohmann::json::parse(read_all(dir_ / "out" / "results.json"));
  int rtt = 0, throughput = 0, backpressure = 0;
  for (const auto& r : j["results"]) {
    const std::string test = r["test"];
    if (test == "rtt") {
      ++rtt;
      EXPECT_GT(r["p50_ns"].get<double>(), 0) << r.dump();
      EXPECT_LE(r["p50_ns"].get<double>(), r["max_ns"].get<double>()) << r.dump();
    } else if (test == "throughput") {
      ++throughput;
      EXPECT_GT(r["msgs_per_s"].get<double>(), 0) << r.dump();
    } else if (test == "backpressure") {
      ++backpressure;
      EXPECT_GT(r["pusher_cpu"].get<double>(), 0) << r.dump();   // a share of one core
      EXPECT_LE(r["pusher_cpu"].get<double>(), 1.05) << r.dump();
    }
  }
  EXPECT_EQ(rtt, 4 * 3);  // four transports, three sizes (the floors need two CPUs, as CI has)
  // bloccs-spsc: 1 pusher; bloccs-mpsc and pipe: 1, 2 and 4; at 64 and 4096 bytes.
  EXPECT_EQ(throughput, (1 + 3 + 3) * 2);
  EXPECT_EQ(backpressure, 3);
  const std::string log = read_all(dir_ / "log");
  EXPECT_NE(log.find("Targets"), std::string::npos) << log;
  EXPECT_NE(read_all(dir_ / "out" / "results.md").find("| bloccs-spsc |"), std::string::npos);
  for (const char* png : {"rtt.png", "throughput.png", "backpressure.png"})
    EXPECT_GT(fs::file_size(dir_ / "out" / png), 1000u) << png;
  EXPECT_TRUE(run_leftovers(pid).empty());
}

TEST_F(BenchDriver, RefusesArgumentsThatNameNothing) {
  const pid_t pid = start({"--only", "no-such-transport", "--out", dir_.string()}, dir_ / "log");
  EXPECT_EQ(wait_exit(pid), 1);
  EXPECT_NE(read_all(dir_ / "log").find("no transport named 'no-such-transport'"), std::string::npos)
      << read_all(dir_ / "log");
  const pid_t bad = start({"--rounds", "0"}, dir_ / "log2");
  EXPECT_NE(wait_exit(bad), 0);
}

// Stops a long run once its segments exist; whatever is left must vanish within 2 s.
void stop_mid_run(const fs::path& dir, int signal) {
  const pid_t pid = start({"--only", "bloccs-spsc,bloccs-mpsc", "--round-trips", "100000000",
                           "--out", (dir / "out").string()},
                          dir / "log");
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (run_leftovers(pid).empty() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_FALSE(run_leftovers(pid).empty()) << "the run never made its ports: " << read_all(dir / "log");
  kill(pid, signal);
  EXPECT_EQ(wait_exit(pid), 1000 + signal);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!run_leftovers(pid).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(run_leftovers(pid).empty()) << "left behind: " << run_leftovers(pid).front();
}

TEST_F(BenchDriver, StoppedBySigtermItLeavesNothingBehind) { stop_mid_run(dir_, SIGTERM); }

TEST_F(BenchDriver, KilledItLeavesNothingBehind) { stop_mid_run(dir_, SIGKILL); }

}  // namespace
