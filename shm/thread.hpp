// SPDX-License-Identifier: Apache-2.0
// A thread of bloccs's own (a port's timer, a keeper), on a stack mapped for it alone.
//
// glibc hands a thread's stack to the next thread once it ends, and a forked child gets every
// stack of its parent's other threads to reuse: a child's new thread then has the pthread_t of
// a parent thread that still runs, which ThreadSanitizer (whose books the child inherits) calls
// a duplicate thread and dies of. A stack of our own is never in that cache, so a thread
// started here never shares an identity with another, in this process or a forked child.
// Every signal is blocked in it: a handler meant for the program never runs on it. start()
// returns once the thread runs, so that a fork right after it never copies the books of a
// thread start half written into the child.
#pragma once

#include <pthread.h>

#include <functional>
#include <memory>

#include "bloccs/result.hpp"

namespace bloccs::shm {

class Thread {
 public:
  // Starts `body` on a new thread with a stack of `stack_bytes`. Joinable unless `detached`
  // (a detached thread's stack is never unmapped: it runs until the process ends).
  static Result<Thread> start(std::function<void()> body, std::size_t stack_bytes,
                              bool detached = false);

  Thread() = default;
  Thread(Thread&& other) noexcept;
  Thread& operator=(Thread&& other) noexcept;
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;
  ~Thread();  // joins a thread still running: call join() where it should end

  void join() noexcept;
  bool joinable() const noexcept { return state_ != nullptr; }
  // For a copy inherited by a forked child, where the thread does not exist: forgets it.
  void forget() noexcept;

 private:
  struct State;
  static void* run(void* state);
  State* state_ = nullptr;
};

}  // namespace bloccs::shm
