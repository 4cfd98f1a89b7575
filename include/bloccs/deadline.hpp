// SPDX-License-Identifier: Apache-2.0
// Absolute deadlines for every call that may wait (push, receive, loan, wait_any): a point on
// CLOCK_MONOTONIC (steady_clock on Linux), so a change of the wall clock moves none of them.
#pragma once

#include <chrono>

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
inline constexpr Deadline kNoDeadline = Deadline::max();  // wait as long as it takes

}  // namespace bloccs
#pragma GCC visibility pop
