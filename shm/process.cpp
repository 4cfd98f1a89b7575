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
namespace {

std::atomic<std::uint32_t> g_fork_generation{0};
void on_fork_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
}

enum class Probe { running, gone, unknown };

struct ProbeResult {
  Probe state;
  std::uint64_t start_time;
};

Probe pid_exists(pid_t pid) {
  if (::kill(pid, 0) == 0 || errno == EPERM) return Probe::unknown;  // exists; start time unread
  return errno == ESRCH ? Probe::gone : Probe::unknown;
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
  if (*p == 'Z' || *p == 'X') return {Probe::gone, 0};
  // Fields after the name start at 3 (state); the start time is field 22.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return {Probe::unknown, 0};
    ++p;
  }
  return {Probe::running, std::strtoull(p, nullptr, 10)};
}

}  // namespace

std::uint32_t fork_generation() noexcept {
  [[maybe_unused]] static const bool registered =
      pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
  // relaxed: only this process's own threads (and its fork handler) ever touch it.
  return g_fork_generation.load(std::memory_order_relaxed);
}

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
