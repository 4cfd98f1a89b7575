// SPDX-License-Identifier: Apache-2.0
#include "shm/test_hooks.hpp"

#include <signal.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "shm/process.hpp"

namespace bloccs::shm {
namespace {

// BLOCCS_TEST_HOOK as this thread last read it: once per thread and per fork (a test sets it
// in a forked child, after its parent has looked).
struct Hook {
  std::uint32_t fork_generation = ~std::uint32_t{0};
  bool set = false;
  bool stop = false;
  std::string point;
};

const Hook& configured() {
  thread_local Hook hook;
  if (hook.fork_generation != fork_generation()) {
    hook = Hook{fork_generation(), false, false, {}};
    if (const char* env = std::getenv("BLOCCS_TEST_HOOK")) {
      std::string_view want(env);
      hook.stop = want.ends_with(":stop");
      if (hook.stop) want.remove_suffix(5);
      hook.point = want;
      hook.set = true;
    }
  }
  return hook;
}

}  // namespace

void test_hook(const char* point) noexcept {
  const Hook& h = configured();
  if (h.set && h.point == point) raise(h.stop ? SIGSTOP : SIGKILL);
}

bool test_flag(const char* point) noexcept {
  const Hook& h = configured();
  return h.set && !h.stop && h.point == point;
}

}  // namespace bloccs::shm
