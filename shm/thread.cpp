// SPDX-License-Identifier: Apache-2.0
#include "shm/thread.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

namespace bloccs::shm {
namespace {
constexpr std::size_t kMinStack = 2u << 20;
}  // namespace

struct Thread::State {
  std::function<void()> body;
  std::mutex m;
  std::condition_variable cv;
  bool started = false;
  void* map = nullptr;  // the stack, with a guard page below it
  std::size_t map_size = 0;
  pthread_t id{};
  bool detached = false;
};

void* Thread::run(void* arg) {
  auto* s = static_cast<State*>(arg);
  {
    std::lock_guard lk(s->m);
    s->started = true;
  }
  s->cv.notify_all();
  s->body();
  return nullptr;
}

Result<Thread> Thread::start(std::function<void()> body, std::size_t stack_bytes, bool detached) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  // glibc puts the thread's static TLS at the top of the stack it is given (large under the
  // sanitizers): below 2 MiB some builds cannot start the thread. Untouched pages cost nothing.
  const std::size_t stack = (std::max(stack_bytes, kMinStack) + page - 1) / page * page;
  auto state = std::make_unique<State>();
  state->body = std::move(body);
  state->detached = detached;
  state->map_size = stack + page;
  state->map = mmap(nullptr, state->map_size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (state->map == MAP_FAILED)
    return Error{Errc::system_error,
                 std::string("mapping a thread's stack failed: ") + std::strerror(errno)};
  mprotect(state->map, page, PROT_NONE);  // the guard page: an overflow faults
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, static_cast<char*>(state->map) + page, stack);
  if (detached) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);  // the new thread starts with every signal blocked
  const int rc = pthread_create(&state->id, &attr, run, state.get());
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    munmap(state->map, state->map_size);
    return Error{Errc::system_error, std::string("starting a thread failed: ") + std::strerror(rc)};
  }
  // Back only once the thread runs: the C library's (and a sanitizer's) books on thread starts
  // are closed by then, so a fork right after this call copies none of them half written into
  // a child, where the child's own first thread would wait for ever on their lock.
  {
    std::unique_lock lk(state->m);
    state->cv.wait(lk, [&] { return state->started; });
  }
  Thread t;
  t.state_ = state.release();
  if (detached) t.state_ = nullptr;  // it owns its state now, for the rest of the process
  return t;
}

Thread::Thread(Thread&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}

Thread& Thread::operator=(Thread&& other) noexcept {
  if (this != &other) {
    join();
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

Thread::~Thread() {
  join();
}

void Thread::join() noexcept {
  if (!state_) return;
  pthread_join(state_->id, nullptr);
  munmap(state_->map, state_->map_size);
  delete state_;
  state_ = nullptr;
}

void Thread::forget() noexcept {
  state_ = nullptr;
}

}  // namespace bloccs::shm
