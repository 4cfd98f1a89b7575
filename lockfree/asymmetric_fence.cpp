// SPDX-License-Identifier: Apache-2.0
// membarrier(2) for asymmetric fences (the protocol is in asymmetric_fence.hpp).
#include "lockfree/asymmetric_fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "shm/process.hpp"

namespace bloccs::lockfree {
namespace {

int membarrier(int cmd) noexcept {
  return static_cast<int>(::syscall(__NR_membarrier, cmd, 0u, 0));
}

bool refused_by_environment() noexcept {
  static const bool refused = [] {
    const char* v = std::getenv("BLOCCS_NO_MEMBARRIER");
    return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
  }();
  return refused;
}

// This process's registration: (the fork generation it was made in + 1) << 1 | whether it took.
std::atomic<std::uint64_t> g_registration{0};

}  // namespace

bool register_light_side() noexcept {
  const std::uint64_t generation = std::uint64_t{shm::fork_generation()} + 1;
  // acquire: pairs with the release below (another thread of ours registered first).
  const std::uint64_t seen = g_registration.load(std::memory_order_acquire);
  if ((seen >> 1) == generation) return (seen & 1) != 0;
  // Registering twice (two threads at once) is harmless: the kernel keeps one registration.
  const bool ok =
      !refused_by_environment() && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
  // release: whoever reads it reads a registration that is done.
  g_registration.store(generation << 1 | (ok ? 1 : 0), std::memory_order_release);
  return ok;
}

bool heavy_fence() noexcept {
  if (refused_by_environment()) return false;  // as where the kernel refuses it
  if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0) return true;
  // Without the expedited kind (before Linux 4.16) no process registered either, so every light
  // side uses full fences; the slow global kind (milliseconds) is right all the same.
  return membarrier(MEMBARRIER_CMD_GLOBAL) == 0;
}

}  // namespace bloccs::lockfree
