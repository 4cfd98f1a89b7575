// Segment names: every bloccs object lives under "/bloccs.<namespace>.<name>" in /dev/shm.
//
// The namespace isolates one registry and its segments from another, so tests and benchmarks
// can run side by side. It comes from an explicit option, else BLOCCS_NAMESPACE, else "default".
#pragma once

#include <string>
#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::shm {

inline constexpr std::string_view kPrefix = "bloccs.";
inline constexpr std::size_t kMaxNamespaceLength = 48;
inline constexpr std::size_t kMaxNameLength = 160;

// The namespace to use: `explicit_ns` if not empty, else $BLOCCS_NAMESPACE, else "default".
// Validated: 1..48 characters of [A-Za-z0-9_-].
Result<std::string> resolve_namespace(std::string_view explicit_ns = {});

// Checks one object name: 1..160 characters of [A-Za-z0-9_.-], not starting with '.'.
Status validate_name(std::string_view name);

// Checks a short name of some other kind (`what` names it in the error): 1..max_len
// characters of [A-Za-z0-9_.-], not starting with '.'.
Status validate_part(std::string_view what, std::string_view value, std::size_t max_len);

// "bloccs.<ns>.<name>" (no leading slash: Boost.Interprocess adds it), both parts validated.
// An empty `ns` resolves as in resolve_namespace(): $BLOCCS_NAMESPACE, else "default".
Result<std::string> segment_name(std::string_view ns, std::string_view name);

}  // namespace bloccs::shm
