// SPDX-License-Identifier: Apache-2.0
// The process-wide push_timeout: set by the program, else by BLOCCS_PUSH_TIMEOUT_MS, else none.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <mutex>
#include <string>

#include "bloccs/port.hpp"
#include "port/push_timeout.hpp"

namespace bloccs {
namespace {

constexpr std::int64_t kInfinite = -1;
constexpr std::int64_t kUnset = -2;  // not set by the program: the environment decides
// 100 years, as push_after clamps its delay: longer would overflow the clock (and means "never").
constexpr std::int64_t kLongestMs = std::int64_t{1000} * 60 * 60 * 24 * 365 * 100;
std::atomic<std::int64_t> g_timeout_ms{kUnset};

Result<std::int64_t> from_environment() {
  const char* env = std::getenv("BLOCCS_PUSH_TIMEOUT_MS");
  if (!env || !*env) return kInfinite;
  const std::string_view text(env);
  if (text == "infinite") return kInfinite;
  std::uint64_t ms = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size())
    return Error{Errc::bad_config, "BLOCCS_PUSH_TIMEOUT_MS='" + std::string(text) +
                                       "' is not a whole number of milliseconds; set it to one "
                                       "(0 or more), to 'infinite', or unset it"};
  // Longer than the clock runs is as long as it runs (converted to nanoseconds it would overflow).
  return ms > static_cast<std::uint64_t>(kLongestMs) ? kLongestMs : static_cast<std::int64_t>(ms);
}

}  // namespace

bool port::push_timeout_is_infinite() noexcept {
  // relaxed: as in set_push_timeout.
  return g_timeout_ms.load(std::memory_order_relaxed) == kInfinite;
}

void set_push_timeout(std::optional<std::chrono::milliseconds> timeout) {
  // relaxed: a setting read on its own; no other data hangs on it.
  g_timeout_ms.store(
      timeout ? std::clamp<std::int64_t>(timeout->count(), 0, kLongestMs) : kInfinite,
      std::memory_order_relaxed);
}

Result<std::optional<std::chrono::milliseconds>> push_timeout() {
  // relaxed: as above.
  std::int64_t ms = g_timeout_ms.load(std::memory_order_relaxed);
  if (ms == kUnset) {
    auto env = from_environment();
    if (!env) return std::move(env).error();  // not cached: the caller may fix and set it
    std::int64_t expected = kUnset;
    g_timeout_ms.compare_exchange_strong(expected, *env, std::memory_order_relaxed);
    ms = g_timeout_ms.load(std::memory_order_relaxed);
  }
  if (ms == kInfinite) return std::optional<std::chrono::milliseconds>{};
  return std::optional<std::chrono::milliseconds>{std::chrono::milliseconds(ms)};
}

}  // namespace bloccs
