#include "shm/test_hooks.hpp"

#include <signal.h>

#include <cstdlib>
#include <string_view>

namespace bloccs::shm {

void test_hook(const char* point) noexcept {
  // Read each time, not cached: a test sets it in a forked child, after its parent has looked.
  const char* env = std::getenv("BLOCCS_TEST_HOOK");
  if (!env) return;
  std::string_view want(env);
  const bool stop = want.ends_with(":stop");
  if (stop) want.remove_suffix(5);
  if (want == point) raise(stop ? SIGSTOP : SIGKILL);
}

}  // namespace bloccs::shm
