// SPDX-License-Identifier: Apache-2.0
#include "shm/robust_mutex.hpp"

#include <cstring>
#include <string>

namespace bloccs::shm {

Status init_robust_mutex(pthread_mutex_t* m, std::string_view what) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  const int rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0)
    return Error{Errc::system_error,
                 "initialising " + std::string(what) + " failed: " + std::strerror(rc)};
  return {};
}

}  // namespace bloccs::shm
