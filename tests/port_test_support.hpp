// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the port tests (port_test, port_after_test, port_owner_death_test): keys,
// pipes that line processes up, shared memory children write their numbers into, and readable
// child exit statuses.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "bloccs/meta.hpp"
#include "bloccs/port.hpp"
#include "test_support.hpp"

namespace bloccs::test {

using namespace std::chrono_literals;
using bloccs::Clock;
using bloccs::Deadline;

inline PortKey key(std::string port = "in") {
  return {"net", "node", std::move(port)};
}

inline Deadline in(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

// Nanoseconds on CLOCK_MONOTONIC (steady_clock), comparable across the processes of the host.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline double ms(std::int64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

inline std::string str(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline std::string str(const std::vector<std::byte>& b) {
  return str(std::span<const std::byte>(b));
}

// A T in anonymous shared memory: written by children, read by the parent (T holds atomics or
// plain numbers read after the writer has exited).
template <class T>
class Shared {
 public:
  Shared() {
    void* p = mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    ptr_ = new (p) T{};
  }
  ~Shared() {
    ptr_->~T();
    munmap(ptr_, sizeof(T));
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T* operator->() const { return ptr_; }
  T& operator*() const { return *ptr_; }

 private:
  T* ptr_;
};

// A child's exit status as one number: the exit code, 1000 + signal if killed, -1 if it had to be
// killed by wait_child. 0 is success; children use a distinct code per failure reason.
inline int exit_code(int status) {
  if (status < 0) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 1000 + WTERMSIG(status);
  return -2;
}

// For children: prints what went wrong (the parent's test log shows stderr) and returns `code`.
template <class R>
int fail(int code, const char* what, const R& r) {
  if (r.ok())
    std::fprintf(stderr, "[child %d] code %d: %s: unexpectedly ok\n", getpid(), code, what);
  else
    std::fprintf(stderr, "[child %d] code %d: %s: %s (%s)\n", getpid(), code, what,
                 errc_name(r.code()), r.error().message.c_str());
  return code;
}
inline int fail(int code, const char* what) {
  std::fprintf(stderr, "[child %d] code %d: %s\n", getpid(), code, what);
  return code;
}

// True if `r` failed with `code`.
template <class R>
bool is(const R& r, Errc code) {
  return !r.ok() && r.code() == code;
}

template <class R>
std::string describe(const R& r) {
  return r.ok() ? std::string("ok") : std::string(errc_name(r.code())) + ": " + r.error().message;
}

// The segments in /dev/shm of a namespace with their inode numbers: a name re-created later has
// another inode, so a set taken before a take-over tells which of them the take-over removed.
inline std::map<std::string, ino_t> segments_with_inodes(const TestNamespace& ns,
                                                          bool include_registry = false) {
  std::map<std::string, ino_t> out;
  for (const auto& e : ns.leftovers()) {
    if (!include_registry && e.ends_with("/registry")) continue;
    struct stat st {};
    if (stat(("/dev/shm/" + e).c_str(), &st) == 0) out[e] = st.st_ino;
  }
  return out;
}

// Every test ends with this: all processes are done, and nothing of the namespace is left in
// /dev/shm (no ring, no chained segment, no registry).
#define EXPECT_SHM_CLEAN(ns) \
  EXPECT_TRUE((ns).leftovers().empty()) << "left in /dev/shm: " << join((ns).leftovers())

// The name (in ns.leftovers() form, "bloccs.<ns>/<name>") of the first segment containing `part`.
inline std::string segment_with(const TestNamespace& ns, const std::string& part) {
  for (const auto& e : ns.leftovers())
    if (e.find(part) != std::string::npos) return e;
  return {};
}

// Maps /dev/shm/<name> read-write, as a peer with write access would: for tests that damage a
// segment. base() is null if it could not be mapped.
class Scribble {
 public:
  explicit Scribble(const std::string& name) {
    fd_ = open(("/dev/shm/" + name).c_str(), O_RDWR);
    if (fd_ < 0) return;
    size_ = static_cast<std::size_t>(lseek(fd_, 0, SEEK_END));
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    if (p != MAP_FAILED) base_ = static_cast<std::byte*>(p);
  }
  ~Scribble() {
    if (base_) munmap(base_, size_);
    if (fd_ >= 0) close(fd_);
  }
  Scribble(const Scribble&) = delete;
  Scribble& operator=(const Scribble&) = delete;
  std::byte* base() const { return base_; }

 private:
  int fd_ = -1;
  std::size_t size_ = 0;
  std::byte* base_ = nullptr;
};

// A payload holding one number.
inline std::vector<std::byte> num(std::uint64_t v) {
  std::vector<std::byte> b(8);
  std::memcpy(b.data(), &v, 8);
  return b;
}
inline std::uint64_t num(std::span<const std::byte> b) {
  std::uint64_t v = ~0ull;
  if (b.size() == 8) std::memcpy(&v, b.data(), 8);
  return v;
}

// An owner process that starts the port `key()` of buffer 8, signals `ready`, and waits until it
// is killed. The caller waits on `ready` before using it.
inline pid_t spawn_owner_until_killed(const TestNamespace& ns, const Signal& ready) {
  return spawn([&ns, &ready] {
    auto p = Port::start(key(), {.buffer = 8, .ns = ns.name()});
    if (!p) return fail(2, "start", p);
    ready.notify();
    pause();
    return 0;
  });
}

// ---- push_timeout ----

// Fills the port (buffer 2) and checks that the third push times out after `timeout`, having
// enqueued nothing. Runs in a child whose push_timeout is already configured.
inline int fill_then_time_out(const std::string& ns, std::chrono::milliseconds timeout) {
  auto p = bloccs::Pusher::open(ns);
  if (!p) return fail(20, "open", p);
  for (std::uint64_t i = 0; i < 2; ++i)
    if (auto st = p->push(key(), num(i)); !st) return fail(21, "filling push", st);
  const auto t0 = Clock::now();
  auto st = p->push(key(), num(99));
  const auto waited = Clock::now() - t0;
  if (!is(st, Errc::timeout)) return fail(22, "push on a full port", st);
  if (waited < timeout) return fail(23, "timed out before push_timeout");
  if (waited > timeout + 5s) return fail(24, "timed out far too late");
  // The explicit-deadline overload times out too.
  auto st2 = p->push(key(), num(98), {}, in(50ms));
  if (!is(st2, Errc::timeout)) return fail(25, "push with a deadline on a full port", st2);
  return 0;
}

inline void expect_only_the_two_filling_messages(bloccs::Port& port) {
  EXPECT_EQ(port.stats().depth, 2u) << "a timed-out message was enqueued";
  EXPECT_EQ(port.stats().parked_pushers, 0u);
  for (std::uint64_t i = 0; i < 2; ++i) {
    auto m = port.receive(in(5s));
    ASSERT_TRUE(m) << describe(m);
    EXPECT_EQ(num(m->payload), i);
  }
  auto rest = port.try_receive();
  ASSERT_TRUE(rest) << describe(rest);
  EXPECT_FALSE(rest->has_value()) << "a timed-out message arrived: " << num((*rest)->payload);
}


}  // namespace bloccs::test
