// SPDX-License-Identifier: Apache-2.0
// stop_on_signals: SIGINT and SIGTERM become a stop request (shm/stop_request.hpp).
#include <signal.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "bloccs/port.hpp"
#include "shm/stop_request.hpp"

namespace bloccs {
namespace {

void on_stop_signal(int) {
  shm::request_stop();
  // The next signal of either kind takes its default action: a second Ctrl-C ends a process
  // that does not stop. sigaction is async-signal-safe.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGINT, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
}

}  // namespace

Status stop_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a system call the signal interrupts returns EINTR
  for (int sig : {SIGINT, SIGTERM})
    if (sigaction(sig, &sa, nullptr) != 0)
      return Error{Errc::system_error, std::string("installing the ") + sigabbrev_np(sig) +
                                           " handler failed: " + std::strerror(errno)};
  return {};
}

bool stop_requested() noexcept {
  return shm::stop_requested();
}

void request_stop() noexcept {
  shm::request_stop();
}

}  // namespace bloccs
