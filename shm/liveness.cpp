// SPDX-License-Identifier: Apache-2.0
// Liveness locks and the keeper threads that hold them (the protocol is in liveness.hpp).
#include "shm/liveness.hpp"

#include <linux/futex.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <vector>

#include "shm/process.hpp"
#include "shm/thread.hpp"

namespace bloccs::shm {
namespace {

// Under the kernel's ROBUST_LIST_LIMIT (2048): beyond it, a dying thread's locks stay held.
constexpr std::size_t kHeldPerKeeper = 1000;

// The __kind glibc gives a robust process-shared normal mutex: anything else in a shared lock
// was written by a peer, and is never handed to pthread functions.
int expected_kind() {
  static const int kind = [] {
    pthread_mutex_t m;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &attr);
    pthread_mutexattr_destroy(&attr);
    const int k = m.__data.__kind;
    pthread_mutex_destroy(&m);
    return k;
  }();
  return kind;
}

int kind_of(const LivenessLock& lock) {
  // relaxed: a peer may write it at any time; we only compare it.
  return std::atomic_ref<int>(const_cast<int&>(lock.mutex.__data.__kind))
      .load(std::memory_order_relaxed);
}

// One thread that holds locks for the process. Callers take turns (call_); each request is one
// trylock or unlock, answered before the next.
class Keeper {
 public:
  Keeper() {
    // A thread of our own (shm/thread.hpp): every signal blocked, its own stack, for ever.
    auto t = Thread::start([this] { run(); }, kKeeperStack, true);
    if (!t) {  // no thread, no lock: callers get the error
      failed_ = true;
      return;
    }
  }
  bool failed() const noexcept { return failed_; }

  // Returns trylock's result (0, EOWNERDEAD after making it consistent, EBUSY, ...).
  int lock(pthread_mutex_t* m) { return ask(Op::lock, m); }
  int unlock(pthread_mutex_t* m) { return ask(Op::unlock, m); }
  std::size_t held = 0;  // guarded by the pool's mutex

 private:
  enum class Op { none, lock, unlock };

  int ask(Op op, pthread_mutex_t* m) {
    std::lock_guard turn(call_);
    std::unique_lock lk(m_);
    op_ = op;
    target_ = m;
    done_ = false;
    cv_.notify_all();
    cv_.wait(lk, [this] { return done_; });
    return result_;
  }

  void run() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [this] { return op_ != Op::none; });
      int rc;
      if (op_ == Op::lock) {
        rc = pthread_mutex_trylock(target_);
        // Its holder died holding it: ours now, and consistent again (or, if even that fails,
        // let go so that the next taker sees the same state).
        if (rc == EOWNERDEAD && pthread_mutex_consistent(target_) != 0) {
          pthread_mutex_unlock(target_);
          rc = ENOTRECOVERABLE;
        }
      } else {
        rc = pthread_mutex_unlock(target_);
      }
      result_ = rc;
      op_ = Op::none;
      done_ = true;
      cv_.notify_all();
    }
  }

  static constexpr std::size_t kKeeperStack = 64 * 1024;  // it only locks and unlocks
  bool failed_ = false;
  std::mutex call_;
  std::mutex m_;
  std::condition_variable cv_;
  Op op_ = Op::none;
  pthread_mutex_t* target_ = nullptr;
  int result_ = 0;
  bool done_ = false;
};

// The keepers of this process. A forked child starts a pool of its own (its parent's threads
// do not exist in it, and their mutexes may have been locked at the fork): the old one leaks.
struct Pool {
  unsigned generation;
  std::mutex m;
  std::vector<Keeper*> keepers;  // never freed: the threads run until the process ends

  Keeper* pick() {
    std::lock_guard lk(m);
    for (Keeper* k : keepers)
      if (!k->failed() && k->held < kHeldPerKeeper) {
        ++k->held;
        return k;
      }
    keepers.push_back(new Keeper);
    ++keepers.back()->held;
    return keepers.back();
  }
  void done(Keeper* k) {
    std::lock_guard lk(m);
    --k->held;
  }
};

std::atomic<Pool*> g_pool{nullptr};

Pool& pool() {
  // acquire: pairs with the release CAS below; the pool is fully built.
  Pool* p = g_pool.load(std::memory_order_acquire);
  const unsigned gen = fork_generation();
  while (!p || p->generation != gen) {
    auto* fresh = new Pool{gen, {}, {}};
    // acq_rel: publishes our pool, or learns the one another thread published.
    if (g_pool.compare_exchange_strong(p, fresh, std::memory_order_acq_rel)) return *fresh;
    delete fresh;
  }
  return *p;
}

}  // namespace

Status init_liveness_lock(LivenessLock& lock, std::string_view what) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(&lock.mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0)
    return Error{Errc::system_error,
                 "initialising " + std::string(what) + " failed: " + std::strerror(rc)};
  return {};
}

Result<HeldLock> HeldLock::take(LivenessLock& lock, std::string_view what) {
  if (kind_of(lock) != expected_kind())
    return Error{Errc::corrupt, std::string(what) +
                                    " is not a lock bloccs made (its kind word was overwritten); "
                                    "the segment is damaged: remove it and restart its owner"};
  Pool& p = pool();
  Keeper* k = p.pick();
  if (k->failed()) {
    p.done(k);
    return Error{Errc::system_error, "no thread could be started to hold " + std::string(what) +
                                         " (out of memory or of threads?)"};
  }
  const int rc = k->lock(&lock.mutex);
  if (rc != 0 && rc != EOWNERDEAD) {
    p.done(k);
    if (rc == EBUSY || rc == EDEADLK)
      return Error{Errc::already_exists, std::string(what) + " is held by a running process"};
    return Error{Errc::corrupt, "taking " + std::string(what) + " failed (" + std::strerror(rc) +
                                    "); the segment is damaged: remove it and restart its owner"};
  }
  HeldLock h;
  h.lock_ = &lock;
  h.keeper_ = k;
  h.fork_generation_ = fork_generation();
  h.took_over_ = rc == EOWNERDEAD;
  return h;
}

HeldLock::HeldLock(HeldLock&& other) noexcept
    : lock_(std::exchange(other.lock_, nullptr)),
      keeper_(std::exchange(other.keeper_, nullptr)),
      fork_generation_(other.fork_generation_),
      took_over_(other.took_over_) {}

HeldLock& HeldLock::operator=(HeldLock&& other) noexcept {
  if (this != &other) {
    release();
    lock_ = std::exchange(other.lock_, nullptr);
    keeper_ = std::exchange(other.keeper_, nullptr);
    fork_generation_ = other.fork_generation_;
    took_over_ = other.took_over_;
  }
  return *this;
}

bool HeldLock::holds() const noexcept {
  return lock_ != nullptr && fork_generation_ == fork_generation();
}

void HeldLock::release() noexcept {
  if (!lock_) return;
  if (fork_generation_ == fork_generation()) {  // a forked child's copy is its parent's lock
    auto* k = static_cast<Keeper*>(keeper_);
    k->unlock(&lock_->mutex);
    pool().done(k);
  }
  lock_ = nullptr;
  keeper_ = nullptr;
}

}  // namespace bloccs::shm
