// SPDX-License-Identifier: Apache-2.0
#include "shm/process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bloccs::shm {

std::atomic<std::uint32_t> detail::fork_generation_counter{0};

namespace {

void on_fork_child() {
  // relaxed: the child has one thread right now; nothing else is ordered by this.
  detail::fork_generation_counter.fetch_add(1, std::memory_order_relaxed);
}

// Registered while the library loads, before any thread of the program could fork.
[[maybe_unused]] const bool g_atfork_registered =
    pthread_atfork(nullptr, nullptr, on_fork_child) == 0;

enum class Probe { running, gone, unknown };

struct ProbeResult {
  Probe state;
  std::uint64_t start_time;
};

Probe pid_exists(pid_t pid) {
  if (::kill(pid, 0) == 0 || errno == EPERM) return Probe::unknown;  // exists; start time unread
  return errno == ESRCH ? Probe::gone : Probe::unknown;
}

// The "Threads:" count of /proc/<pid>/status; -1 if it cannot be read.
long threads(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* line = std::strstr(buf, "\nThreads:");
  return line ? std::strtol(line + 9, nullptr, 10) : -1;
}

ProbeResult probe(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {errno == ENOENT ? pid_exists(pid) : Probe::unknown, 0};
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  const int read_errno = errno;
  ::close(fd);
  if (n <= 0) return {n < 0 && read_errno == ESRCH ? Probe::gone : Probe::unknown, 0};
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: parse from the last ')'.
  char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ') return {Probe::unknown, 0};
  p += 2;
  const bool zombie = *p == 'Z' || *p == 'X';
  // Fields after the name start at 3 (state); the start time is field 22.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return {Probe::unknown, 0};
    ++p;
  }
  const std::uint64_t start = std::strtoull(p, nullptr, 10);
  // A zombie leader is dead only if no other thread of it still runs (main() may have called
  // pthread_exit while a thread keeps pushing; a killed process's threads exit one by one).
  if (zombie) {
    const long alive_threads = threads(pid);
    if (alive_threads < 0) return {Probe::unknown, 0};
    if (alive_threads <= 1) return {Probe::gone, 0};
  }
  return {Probe::running, start};
}

}  // namespace

ProcessId self_process() {
  static thread_local ProcessId cached{};
  const auto pid = static_cast<std::uint32_t>(::getpid());
  if (cached.pid != pid || cached.start_time == 0) {
    const ProbeResult r = probe(static_cast<pid_t>(pid));
    cached = ProcessId{pid, r.state == Probe::running ? r.start_time : 0};
  }
  return cached;
}

bool is_alive(const ProcessId& id, std::uint64_t start_mask) {
  if (id.pid == 0) return false;
  const ProbeResult r = probe(static_cast<pid_t>(id.pid));
  switch (r.state) {
    case Probe::gone:
      return false;
    case Probe::unknown:
      return true;
    case Probe::running:
      return id.start_time == 0 || (r.start_time & start_mask) == (id.start_time & start_mask);
  }
  return true;
}

}  // namespace bloccs::shm
