// SPDX-License-Identifier: Apache-2.0
// Names: every bloccs object of a namespace lives in the directory /dev/shm/bloccs.<namespace>/.
//
// The namespace isolates one registry and its segments from another, so tests and benchmarks
// can run side by side. It comes from an explicit option, else BLOCCS_NAMESPACE, else "default".
// A directory per namespace (shm/namespace_dir.hpp) decides who may create and remove segments
// in it: its owner alone, or every member of the group it is shared with.
#pragma once

#include <string>
#include <string_view>

#include "shm/pipeline_export.hpp"
#include "bloccs/result.hpp"

namespace bloccs::shm {

inline constexpr std::string_view kShmRoot = "/dev/shm";
inline constexpr std::string_view kPrefix = "bloccs.";
inline constexpr std::size_t kMaxNamespaceLength = 48;
inline constexpr std::size_t kMaxNameLength = 160;

// The namespace to use: `explicit_ns` if not empty, else $BLOCCS_NAMESPACE, else "default".
// Validated: 1..48 characters of [A-Za-z0-9_-].
BLOCCS_FOR_PIPELINE Result<std::string> resolve_namespace(std::string_view explicit_ns = {});

// Checks one object name: 1..160 characters of [A-Za-z0-9_.-], not starting with '.'.
Status validate_name(std::string_view name);

// Checks a short name of some other kind (`what` names it in the error): 1..max_len
// characters of [A-Za-z0-9_.-], not starting with '.'.
BLOCCS_FOR_PIPELINE Status validate_part(std::string_view what, std::string_view value, std::size_t max_len);

// "bloccs.<ns>": the namespace's directory in /dev/shm (ns already resolved).
std::string namespace_dir_name(std::string_view resolved_ns);

// "bloccs.<ns>/<name>", both parts validated: how messages name a segment ("/dev/shm/" + it).
// An empty `ns` resolves as in resolve_namespace(): $BLOCCS_NAMESPACE, else "default".
Result<std::string> segment_name(std::string_view ns, std::string_view name);

}  // namespace bloccs::shm
