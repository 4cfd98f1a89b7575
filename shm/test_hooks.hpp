// SPDX-License-Identifier: Apache-2.0
// Points where a test stops or kills this process in the middle of a multi-step change of
// shared memory, to prove that no instant of it loses anything (a writer killed mid-take-over,
// a timer killed between two stores). Off unless BLOCCS_TEST_HOOK names the point:
//   BLOCCS_TEST_HOOK=<point>        SIGKILL there (the first time the point is reached)
//   BLOCCS_TEST_HOOK=<point>:stop   SIGSTOP there, for the test to look, then SIGCONT or SIGKILL
// Each costs a thread-local flag (the environment is read once per thread and per fork).
#pragma once

namespace bloccs::shm {

void test_hook(const char* point) noexcept;
// True if BLOCCS_TEST_HOOK names `point` (with no ":stop"): a behaviour a test switches on for
// one process, read where it costs nothing (never on a push's or a receive's fast path).
bool test_flag(const char* point) noexcept;

}  // namespace bloccs::shm
