// SPDX-License-Identifier: Apache-2.0
#include "shm/stop_request.hpp"

#include <atomic>
#include <string>

namespace bloccs::shm {
namespace {

// Lock-free, so a signal handler may store it.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

}  // namespace

void request_stop() noexcept {
  // relaxed: a flag each wait polls; it orders nothing else.
  g_stop.store(true, std::memory_order_relaxed);
}

bool stop_requested() noexcept {
  return g_stop.load(std::memory_order_relaxed);  // relaxed: see request_stop
}

Error stopping_error(std::string_view outcome) {
  return Error{Errc::stopping,
               "this process was asked to stop (SIGINT or SIGTERM, see "
               "bloccs::stop_on_signals): " +
                   std::string(outcome) +
                   "; return from main, so that its ports are stopped and their "
                   "segments removed"};
}

}  // namespace bloccs::shm
