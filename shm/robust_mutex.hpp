// SPDX-License-Identifier: Apache-2.0
// A pthread mutex that lives in shared memory and survives its holder's death: process-shared,
// and robust (the next locker gets EOWNERDEAD instead of waiting for ever; the kernel also
// clears the holder's thread id from the lock word, which ports use as an "owner alive" flag).
#pragma once

#include <pthread.h>

#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::shm {

// Initialises `m` in place; `what` names it in the error ("the registry mutex").
Status init_robust_mutex(pthread_mutex_t* m, std::string_view what);

}  // namespace bloccs::shm
