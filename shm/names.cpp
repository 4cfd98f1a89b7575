// SPDX-License-Identifier: Apache-2.0
#include "shm/names.hpp"

#include <cstdlib>

namespace bloccs::shm {
namespace {

bool is_name_char(char c, bool allow_dot) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (allow_dot && c == '.');
}

Status check(std::string_view what, std::string_view s, std::size_t max_len, bool allow_dot) {
  const std::string allowed =
      allow_dot ? "letters, digits, '_', '-' and '.'" : "letters, digits, '_' and '-'";
  if (s.empty() || s.size() > max_len)
    return Error{Errc::bad_name, std::string(what) + " '" + std::string(s) + "' has " +
                                     std::to_string(s.size()) + " characters; use 1 to " +
                                     std::to_string(max_len) + " " + allowed};
  if (allow_dot && s.front() == '.')
    return Error{Errc::bad_name, std::string(what) + " '" + std::string(s) +
                                     "' starts with '.'; start it with a letter or digit"};
  for (char c : s)
    if (!is_name_char(c, allow_dot))
      return Error{Errc::bad_name, std::string(what) + " '" + std::string(s) +
                                       "' contains a character outside " + allowed + "; rename it"};
  return {};
}

}  // namespace

Result<std::string> resolve_namespace(std::string_view explicit_ns) {
  std::string ns(explicit_ns);
  if (ns.empty()) {
    const char* env = std::getenv("BLOCCS_NAMESPACE");
    ns = (env && *env) ? env : "default";
  }
  if (auto st = check("namespace", ns, kMaxNamespaceLength, false); !st)
    return std::move(st).error();
  return ns;
}

Status validate_part(std::string_view what, std::string_view value, std::size_t max_len) {
  return check(what, value, max_len, true);
}

Status validate_name(std::string_view name) {
  return check("segment name", name, kMaxNameLength, true);
}

std::string namespace_dir_name(std::string_view resolved_ns) {
  return std::string(kPrefix).append(resolved_ns);
}

Result<std::string> segment_name(std::string_view ns, std::string_view name) {
  auto resolved = resolve_namespace(ns);
  if (!resolved) return std::move(resolved).error();
  if (auto st = validate_name(name); !st) return std::move(st).error();
  return namespace_dir_name(*resolved).append("/").append(name);
}

}  // namespace bloccs::shm
