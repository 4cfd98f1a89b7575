// SPDX-License-Identifier: Apache-2.0
// The SIGBUS fence (fence.hpp): a table of this process's bloccs mappings, and the handler.
#include "shm/fence.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace bloccs::shm {
namespace {

constexpr int kSlots = 4096;  // mappings fenced at once; past it a mapping is not fenced

// One mapping. The handler reads these without a lock: `size` is set last (release) when a slot
// is filled and first (0) when it is emptied, so a slot it sees with a size is complete.
struct Fenced {
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> size{0};
  std::atomic<bool> writable{false};
  std::atomic<bool> damaged{false};
  std::atomic<bool> used{false};  // taken by a register, for registers (the handler reads size)
};

Fenced g_table[kSlots];
struct sigaction g_previous {};
std::once_flag g_installed;

bool inside(const Fenced& f, std::uintptr_t addr, std::size_t& size) {
  // acquire: pairs with register's release of size; base and writable were written before.
  size = f.size.load(std::memory_order_acquire);
  const std::uintptr_t base = f.base.load(std::memory_order_relaxed);
  return size != 0 && addr >= base && addr - base < size;
}

// Passes a SIGBUS that is not ours to whoever handled it before us (or to the default action:
// the faulting instruction runs again on return, and this time the signal is fatal).
void pass_on(int sig, siginfo_t* info, void* ctx) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, info, ctx);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGBUS, &dfl, nullptr);  // async-signal-safe; the re-run fault then ends us
}

// Only async-signal-safe calls here: atomics, mmap.
void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  for (Fenced& f : g_table) {
    std::size_t size = 0;
    if (!inside(f, addr, size)) continue;
    const std::uintptr_t base = f.base.load(std::memory_order_relaxed);
    const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    const std::uintptr_t from = addr & ~(page - 1);
    const int prot =
        f.writable.load(std::memory_order_relaxed) ? PROT_READ | PROT_WRITE : PROT_READ;
    // Zero pages from the faulting one to the mapping's end: what was truncated away reads as
    // zeros from now on, in this process only.
    mmap(reinterpret_cast<void*>(from), base + size - from, prot,
         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    f.damaged.store(true, std::memory_order_relaxed);  // relaxed: read by the same thread next
    return;
  }
  pass_on(sig, info, ctx);
}

void install() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags =
      SA_SIGINFO | SA_NODEFER;  // NODEFER: a second fault in another mapping is caught too
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

int fence_register(void* base, std::size_t size, bool writable) noexcept {
  std::call_once(g_installed, install);
  for (int i = 0; i < kSlots; ++i) {
    Fenced& f = g_table[i];
    bool expected = false;
    // acq_rel: one register per slot; a slot emptied by unregister is seen empty.
    if (!f.used.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) continue;
    f.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
    f.writable.store(writable, std::memory_order_relaxed);
    f.damaged.store(false, std::memory_order_relaxed);
    // release: the handler that sees the size sees the words above.
    f.size.store(size, std::memory_order_release);
    return i;
  }
  return -1;
}

void fence_unregister(int slot) noexcept {
  if (slot < 0 || slot >= kSlots) return;
  Fenced& f = g_table[slot];
  f.size.store(0, std::memory_order_release);      // release: the handler stops looking here first
  f.used.store(false, std::memory_order_release);  // release: then the slot may be taken again
}

bool fence_damaged(int slot) noexcept {
  // relaxed: set by this process's handler; a call that reads it late sees it on the next one.
  return slot >= 0 && slot < kSlots && g_table[slot].damaged.load(std::memory_order_relaxed);
}

const std::atomic<bool>& fence_flag(int slot) noexcept {
  static const std::atomic<bool> never{false};  // an unfenced mapping is never marked
  return slot >= 0 && slot < kSlots ? g_table[slot].damaged : never;
}

bool fence_mark(const void* addr) noexcept {
  for (Fenced& f : g_table) {
    std::size_t size = 0;
    if (!inside(f, reinterpret_cast<std::uintptr_t>(addr), size)) continue;
    f.damaged.store(true, std::memory_order_relaxed);  // relaxed: as in the handler
    return true;
  }
  return false;
}

}  // namespace bloccs::shm
