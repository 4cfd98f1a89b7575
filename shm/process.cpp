#include "shm/process.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bloccs::shm {

std::uint64_t process_start_time(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: parse from the last ')'.
  char* p = std::strrchr(buf, ')');
  if (!p || p[1] != ' ') return 0;
  p += 2;
  const char state = *p;
  if (state == 'Z' || state == 'X') return 0;
  // Fields after the name start at 3 (state); the start time is field 22.
  for (int field = 3; field < 22; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return 0;
    ++p;
  }
  return std::strtoull(p, nullptr, 10);
}

ProcessId self_process() {
  static thread_local ProcessId cached{};
  const auto pid = static_cast<std::uint32_t>(::getpid());
  if (cached.pid != pid) cached = ProcessId{pid, process_start_time(static_cast<pid_t>(pid))};
  return cached;
}

bool is_alive(const ProcessId& id) {
  if (id.pid == 0) return false;
  const std::uint64_t now = process_start_time(static_cast<pid_t>(id.pid));
  return now != 0 && (id.start_time == 0 || now == id.start_time);
}

}  // namespace bloccs::shm
