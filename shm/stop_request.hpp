// SPDX-License-Identifier: Apache-2.0
// The process's stop request (bloccs::stop_on_signals): once made, every wait of the library
// (a receive, a parked push, wait_any) returns Errc::stopping at its next look, within its
// 100 ms recheck, or at once in the thread a signal interrupted. Nothing that does not wait is
// changed: a push that fits still succeeds, a try_receive still receives.
#pragma once

#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::shm {

// Async-signal-safe: for signal handlers.
void request_stop() noexcept;
bool stop_requested() noexcept;
// The error a wait returns once the stop was requested; `outcome` says what did not happen
// ("nothing was enqueued").
Error stopping_error(std::string_view outcome);

}  // namespace bloccs::shm
