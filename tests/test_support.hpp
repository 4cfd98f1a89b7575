// SPDX-License-Identifier: Apache-2.0
// Shared helpers for bloccs tests: a private namespace per test, real child processes, and
// deterministic message contents that a consumer can check byte by byte.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "shm/names.hpp"

namespace bloccs::test {

// Every namespace a test makes starts with "t-<run>-", <run> one per build tree (compiled in
// by tests/CMakeLists.txt): the shm_left_clean check then looks at this suite's namespaces
// only, not at other bloccs users' (or another build's suite) on the same machine.
inline std::string test_namespace_prefix() {
#ifdef BLOCCS_TEST_RUN
  return std::string("t-") + BLOCCS_TEST_RUN + "-";
#else
  return "t-";
#endif
}

// What namespace `ns` holds in /dev/shm: "bloccs.<ns>/<name>" for each entry of its directory
// whose name starts with `name_prefix` (temporary ones too), and "bloccs.<ns>/" for the
// directory itself while it is there and empty.
inline std::vector<std::string> shm_entries(const std::string& ns,
                                            const std::string& name_prefix = "") {
  std::vector<std::string> out;
  const std::string dir = "bloccs." + ns;
  if (DIR* d = opendir(("/dev/shm/" + dir).c_str())) {
    bool empty = true;
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      empty = false;
      if (std::strncmp(e->d_name, name_prefix.c_str(), name_prefix.size()) == 0)
        out.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
    if (empty && name_prefix.empty()) out.push_back(dir + "/");
  }
  return out;
}

// Removes namespace `ns` from /dev/shm: its directory and everything in it.
inline void remove_namespace(const std::string& ns) {
  const std::string dir = "/dev/shm/bloccs." + ns;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        unlink((dir + "/" + e->d_name).c_str());
    closedir(d);
  }
  rmdir(dir.c_str());
}

inline std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += (s.empty() ? "" : ", ") + e;
  return s.empty() ? "(none)" : s;
}

// A namespace of its own for one test; whatever a killed process left in it is removed at the
// end (a clean run leaves nothing: the owners unlink their segments themselves).
class TestNamespace {
 public:
  TestNamespace() {
    static std::atomic<int> counter{0};
    name_ = test_namespace_prefix() + std::to_string(getpid()) + "-" +
            std::to_string(counter.fetch_add(1));
  }
  ~TestNamespace() { remove_namespace(name_); }
  const std::string& name() const { return name_; }
  std::vector<std::string> leftovers() const { return shm_entries(name_); }
  // "/dev/shm/bloccs.<ns>/<name>"
  std::string path(const std::string& name) const {
    return "/dev/shm/bloccs." + name_ + "/" + name;
  }

 private:
  std::string name_;
};

// A one-way signal between processes: notify() writes tokens, wait() takes one (with a limit).
// Made before the fork, so every process holds both ends.
class Signal {
 public:
  Signal() { EXPECT_EQ(pipe(fds_), 0); }
  ~Signal() {
    close(fds_[0]);
    close(fds_[1]);
  }
  Signal(const Signal&) = delete;
  Signal& operator=(const Signal&) = delete;
  void notify(int n = 1) const {
    for (int i = 0; i < n; ++i) (void)!write(fds_[1], "x", 1);
  }
  bool wait(std::chrono::milliseconds limit = std::chrono::seconds(30)) const {
    pollfd p{fds_[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(limit.count())) != 1) return false;
    char c;
    return read(fds_[0], &c, 1) == 1;
  }

 private:
  int fds_[2];
};

// Scales message counts down for sanitizer builds (BLOCCS_TEST_SCALE=0.02, say).
inline std::uint64_t scaled(std::uint64_t n) {
  const char* s = std::getenv("BLOCCS_TEST_SCALE");
  const double f = s ? std::atof(s) : 1.0;
  const auto v = static_cast<std::uint64_t>(static_cast<double>(n) * (f > 0 ? f : 1.0));
  return v ? v : 1;
}

// Another user, for a child process of a test run as root: the kernel needs no passwd entry for
// numeric ids. `gid` is the primary group (a private one, as Debian gives every user),
// `groups` the supplementary ones.
struct User {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

// Makes the calling process `u`, for good (all three ids). For a forked child only; safe after
// fork in a multi-threaded parent (each call is one system call for the one thread there is).
inline bool become(const User& u) {
  if (setgroups(u.groups.size(), u.groups.data()) != 0) return false;
  if (setresgid(u.gid, u.gid, u.gid) != 0 || setresuid(u.uid, u.uid, u.uid) != 0) return false;
  // Changed ids make a process undumpable, so /proc/self turns root's: LeakSanitizer reads it.
  prctl(PR_SET_DUMPABLE, 1);
  return true;
}

// Forks a child that runs `body` and exits with its return value. gtest assertions do not
// cross the fork: a child reports through its exit code.
inline pid_t spawn(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed: " << std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    int rc = 99;
    try {
      rc = body();
    } catch (...) {
      rc = 98;
    }
    _exit(rc);
  }
  return pid;
}

// Starts `program <args...>` with its stderr (and stdout) in `log`.
inline pid_t start_program(const char* program, const std::vector<std::string>& args,
                           const std::filesystem::path& log) {
  return spawn([&]() -> int {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> argv{const_cast<char*>(program)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program, argv.data());
    return 127;
  });
}

// Waits for `pid` up to `limit`; kills it if it is still running then. Returns its exit status
// as waitpid reports it (-1 if it had to be killed).
inline int wait_child(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(120)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

inline bool exited_ok(int status) {
  return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Waits up to `limit` for `cond()`; true if it held.
template <class F>
bool eventually(F&& cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// True while `pid` runs (not yet exited); does not reap it.
inline bool running(pid_t pid) {
  siginfo_t info{};
  info.si_pid = 0;
  return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == 0;
}

// Waits until `pid` has stopped (SIGSTOP, a test hook's "stop") and takes that report, so that
// its next stop reports anew; false after `limit` or if it ended.
inline bool wait_stopped(pid_t pid, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WUNTRACED | WNOHANG);
    if (r == pid && WIFSTOPPED(status)) return true;
    if (r == pid || r < 0) return false;  // it ended
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// Kills (SIGKILL) and reaps the children a test still has when it ends, also after a failed
// ASSERT. Declare it after the TestNamespace: it then runs first, and the namespace's cleanup
// finds nobody still creating segments.
class Reaper {
 public:
  ~Reaper() {
    for (pid_t p : pids_)
      if (p > 0 && running(p)) {
        kill(p, SIGKILL);
        waitpid(p, nullptr, 0);
      }
  }
  pid_t operator()(pid_t p) {
    pids_.push_back(p);
    return p;
  }

 private:
  std::vector<pid_t> pids_;
};

// ---- message contents ---------------------------------------------------------------------------
// Message `seq` of pusher `id` has size message_size(id, seq, max) and bytes
//   [id (1 byte)] [seq (8 bytes, little endian)] [filler(id, seq, i) ...]
// truncated to its size. A consumer attributes a message of 1+ bytes to its pusher, checks its
// size and every byte, and (from 9 bytes up) its exact sequence number.

// Sizes from 0 (pusher 0 only: an empty message names no pusher) or 1 up to `max`.
inline std::size_t message_size(std::uint32_t id, std::uint64_t seq, std::size_t max) {
  std::uint64_t x = (seq + 1) * 0x9E3779B97F4A7C15ull ^ (std::uint64_t{id} << 32);
  x ^= x >> 29;
  const std::size_t min = id == 0 ? 0 : 1;
  return min + static_cast<std::size_t>(x % (max - min + 1));
}

inline std::byte filler(std::uint32_t id, std::uint64_t seq, std::size_t i) {
  return static_cast<std::byte>((id * 131u + seq * 31u + i * 7u) & 0xffu);
}

inline void fill_message(std::vector<std::byte>& buf, std::uint32_t id, std::uint64_t seq,
                         std::size_t size) {
  buf.resize(size);
  std::byte head[9];
  head[0] = static_cast<std::byte>(id);
  std::memcpy(head + 1, &seq, 8);
  for (std::size_t i = 0; i < size; ++i) buf[i] = i < 9 ? head[i] : filler(id, seq, i);
}

// Checks each pusher's stream: order, sizes and every byte (an empty message is pusher 0's).
class StreamChecker {
 public:
  StreamChecker(std::uint32_t pushers, std::size_t max) : next_(pushers, 0), max_(max) {}

  // Returns an empty string if `msg` is the next expected message of its pusher.
  std::string check(std::span<const std::byte> msg) {
    const std::uint32_t id = msg.empty() ? 0 : static_cast<std::uint32_t>(msg[0]);
    if (id >= next_.size()) return "message from unknown pusher " + std::to_string(id);
    const std::uint64_t seq = next_[id];
    if (msg.size() >= 9) {
      std::uint64_t got;
      std::memcpy(&got, msg.data() + 1, 8);
      if (got != seq)
        return "pusher " + std::to_string(id) + ": expected seq " + std::to_string(seq) + ", got " +
               std::to_string(got) + (got < seq ? " (duplicate)" : " (lost messages)");
    }
    const std::size_t want = message_size(id, seq, max_);
    if (msg.size() != want)
      return "pusher " + std::to_string(id) + " seq " + std::to_string(seq) + ": size " +
             std::to_string(msg.size()) + ", expected " + std::to_string(want);
    for (std::size_t i = 9; i < msg.size(); ++i)
      if (msg[i] != filler(id, seq, i))
        return "pusher " + std::to_string(id) + " seq " + std::to_string(seq) + ": byte " +
               std::to_string(i) + " differs";
    ++next_[id];
    ++total_;
    return {};
  }

  std::uint64_t next(std::uint32_t id) const { return next_[id]; }
  std::uint64_t total() const { return total_; }

 private:
  std::vector<std::uint64_t> next_;
  std::size_t max_;
  std::uint64_t total_ = 0;
};

// A fresh directory under /tmp for one test's files, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/bloccs-test-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    EXPECT_NE(made, nullptr) << "mkdtemp: " << std::strerror(errno);
    path_ = made ? made : "/tmp";
  }
  ~TempDir() {
    if (path_ != "/tmp") std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Writes `text` to `name` (directories created) with `mode`; returns its path.
  std::filesystem::path write(const std::string& name, const std::string& text,
                              mode_t mode = 0644) const {
    const std::filesystem::path p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p;
  }

 private:
  std::filesystem::path path_;
};

// A whole file as bytes ("" if it cannot be read).
inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace bloccs::test
