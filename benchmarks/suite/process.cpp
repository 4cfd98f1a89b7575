// SPDX-License-Identifier: Apache-2.0
#include "benchmarks/suite/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace bloccs::bench {
namespace {

Error system_error(const std::string& what) {
  return {Errc::system_error, what + ": " + std::strerror(errno)};
}

Status write_byte(int fd, char byte) {
  ssize_t n;
  do n = write(fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  if (n == 1) return {};
  return Error{Errc::system_error, "the other process of the measurement is gone"};
}

Status read_byte(int fd, char expected) {
  char byte = 0;
  ssize_t n;
  do n = read(fd, &byte, 1);
  while (n < 0 && errno == EINTR);
  if (n == 1 && byte == expected) return {};
  return Error{Errc::system_error, "the other process of the measurement is gone"};
}

}  // namespace

Status ParentLink::expect(char what) { return read_byte(fd_, what); }
Status ParentLink::say(char what) { return write_byte(fd_, what); }

Status ParentLink::report(double value) {
  if (write(fd_, &value, sizeof value) == sizeof value) return {};
  return Error{Errc::system_error, "the parent of the measurement is gone"};
}

bool pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

Result<Child> Child::fork_child(std::string what, int cpu, int (*run)(void*, ParentLink&),
                                void* body) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return system_error("socketpair for " + what);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return system_error("fork for " + what);
  }
  if (pid == 0) {
    close(fds[0]);
    // Dies with the parent, so a parent stopped by Ctrl-C or a crash takes its children along.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);  // the parent died before prctl took effect
    std::signal(SIGINT, SIG_IGN);       // Ctrl-C reaches the group; the parent decides
    if (cpu >= 0 && !pin_to_cpu(cpu)) _exit(3);
    int code = 1;
    try {
      ParentLink link(fds[1]);
      code = run(body, link);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bloccs-bench: %s: %s\n", what.c_str(), e.what());
    } catch (...) {
      std::fprintf(stderr, "bloccs-bench: %s: an exception\n", what.c_str());
    }
    _exit(code);
  }
  close(fds[1]);
  return Child(std::move(what), pid, fds[0]);
}

Child::Child(Child&& other) noexcept
    : what_(std::move(other.what_)),
      pid_(std::exchange(other.pid_, -1)),
      fd_(std::exchange(other.fd_, -1)) {}

Child::~Child() {
  if (fd_ >= 0) close(fd_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

Status Child::say(char what) {
  if (auto st = write_byte(fd_, what); !st)
    return Error{Errc::system_error, what_ + " exited early; see its message above, if any"};
  return {};
}

Status Child::wait_ready() {
  if (auto st = read_byte(fd_, 'r'); !st) {
    auto exit = join();
    if (!exit) return std::move(exit).error();
    return Error{Errc::system_error, what_ + " exited before it was ready"};
  }
  return {};
}

Result<ChildExit> Child::join() {
  if (pid_ <= 0) return Error{Errc::system_error, what_ + " was already joined"};
  // A child's report, if it made one, is the last thing it wrote before exiting.
  double reported = 0;
  std::size_t got = 0;
  for (ssize_t n; got < sizeof reported; got += static_cast<std::size_t>(n)) {
    n = read(fd_, reinterpret_cast<char*>(&reported) + got, sizeof reported - got);
    if (n < 0 && errno == EINTR) n = 0;
    else if (n <= 0) break;
  }
  close(std::exchange(fd_, -1));
  int status = 0;
  rusage usage{};
  pid_t r;
  do r = wait4(pid_, &status, 0, &usage);
  while (r < 0 && errno == EINTR);
  pid_ = -1;
  if (r < 0) return system_error("waiting for " + what_);
  ChildExit exit;
  exit.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  exit.cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  if (got == sizeof reported) exit.reported = reported;
  if (exit.code == 3) return Error{Errc::system_error, what_ + " could not be pinned to its CPU"};
  if (exit.code != 0)
    return Error{Errc::system_error, what_ + " failed (exit code " + std::to_string(exit.code) +
                                         "); see its message above, if any"};
  return exit;
}

void start_janitor(const std::string& tag) {
  int fds[2];
  if (pipe(fds) != 0) return;  // no janitor: a clean run still removes everything itself
  const pid_t pid = fork();
  if (pid != 0) {
    close(fds[0]);  // the write end stays open in this process and every child it forks
    return;
  }
  close(fds[1]);
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  // EOF once the parent and every child holding the write end have exited.
  char byte;
  ssize_t n;
  do n = read(fds[0], &byte, 1);
  while (n < 0 && errno == EINTR);
  // The run's namespace is the directory bloccs.<tag>/; the peers' named queues are
  // bloccs-bench-<tag>-* (whole name components: bench-123 is also a prefix of bench-1234).
  // A process killed while it made the namespace leaves the directory's temporary name,
  // .bloccs.<tag>.new.<pid>.<n> (shm/namespace_dir.cpp): empty, removed with the queues below.
  const std::string ns_dir = "/dev/shm/bloccs." + tag, queues = "bloccs-bench-" + tag + "-",
                    made = ".bloccs." + tag + ".new.";
  if (DIR* dir = opendir(ns_dir.c_str())) {
    while (const dirent* e = readdir(dir))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        unlinkat(dirfd(dir), e->d_name, 0);
    closedir(dir);
  }
  rmdir(ns_dir.c_str());
  for (const char* where : {"/dev/shm", "/dev/mqueue"}) {  // /dev/mqueue where it is mounted
    if (DIR* dir = opendir(where)) {
      while (const dirent* e = readdir(dir))
        if (std::string_view(e->d_name).starts_with(queues))
          unlinkat(dirfd(dir), e->d_name, 0);
        else if (std::string_view(e->d_name).starts_with(made))
          unlinkat(dirfd(dir), e->d_name, AT_REMOVEDIR);
      closedir(dir);
    }
  }
  _exit(0);
}

}  // namespace bloccs::bench
