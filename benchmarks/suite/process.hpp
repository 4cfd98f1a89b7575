// SPDX-License-Identifier: Apache-2.0
// The processes of one measurement. Every side of a transport runs in a process of its own
// (threads never stand in for processes); the receiving side and the others are pinned to
// different CPUs (on 2 CPUs, several pushers share the second).
//
// A child is forked before the parent opens anything (the parent's bloccs Port starts a thread,
// and a process should not fork while it runs threads it did not make for the child), and
// follows a fixed script on a socket pair with the parent:
//   parent                          child
//   spawn ---------------------->   pin to its CPU, die with the parent (PR_SET_PDEATHSIG)
//   open its own ends
//   release() ------ 'g' ------->   open its ends
//   wait_ready() <-- 'r' --------   ready()
//   start() -------- 's' ------->   wait_start(); the timed part
//   join() <-------- exit code --   _exit(body's result): never unwinds into the parent's frames
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "bloccs/result.hpp"

namespace bloccs::bench {

// The child's end of the script.
class ParentLink {
 public:
  explicit ParentLink(int fd) : fd_(fd) {}
  Status wait_release() { return expect('g'); }
  Status ready() { return say('r'); }
  Status wait_start() { return expect('s'); }
  // Hands the parent a figure the child measured itself (join() returns it).
  Status report(double value);

 private:
  Status expect(char what);
  Status say(char what);
  int fd_;
};

struct ChildExit {
  int code = -1;           // exit code, or 128 + the signal that killed it
  double cpu_seconds = 0;  // user + system time of the child, its whole life
  std::optional<double> reported;  // what the child sent with ParentLink::report, if anything
};

class Child {
 public:
  // Forks a child that runs body(ParentLink&) -> int on `cpu` (-1: anywhere) and exits with
  // what it returns; an exception is exit code 1. `what` names it in error messages.
  template <class Body>
  static Result<Child> spawn(std::string what, int cpu, Body&& body);

  Child(Child&& other) noexcept;
  Child& operator=(Child&&) = delete;
  ~Child();  // kills and reaps a child still running (after an error)

  Status release() { return say('g'); }
  Status wait_ready();
  Status start() { return say('s'); }
  // Waits for the child to exit; an error unless it exited with 0.
  Result<ChildExit> join();

 private:
  Child(std::string what, pid_t pid, int fd) : what_(std::move(what)), pid_(pid), fd_(fd) {}
  static Result<Child> fork_child(std::string what, int cpu, int (*run)(void*, ParentLink&),
                                  void* body);
  Status say(char what);
  std::string what_;
  pid_t pid_ = -1;
  int fd_ = -1;
};

template <class Body>
Result<Child> Child::spawn(std::string what, int cpu, Body&& body) {
  return fork_child(
      std::move(what), cpu,
      [](void* b, ParentLink& link) { return (*static_cast<std::remove_reference_t<Body>*>(b))(link); },
      &body);
}

// Pins the calling process to `cpu`; false if the kernel refused.
bool pin_to_cpu(int cpu);

// Once the calling process has exited (however it exited) and every child it forked with it:
// unlinks the bloccs segments of namespace `tag` and the peers' queues named after it, in
// /dev/shm (and /dev/mqueue where mounted). A janitor process forked at start, so that a run
// stopped by Ctrl-C or a crash leaves nothing behind. Call it before anything is created.
void start_janitor(const std::string& tag);

}  // namespace bloccs::bench
