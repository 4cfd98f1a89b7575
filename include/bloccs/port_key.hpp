// SPDX-License-Identifier: Apache-2.0
// The name a port is registered under and pushed to: {network_id, node_id, in_port}.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "bloccs/result.hpp"

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

struct PortKey {
  std::string network_id;
  std::string node_id;
  std::string in_port;
  friend bool operator==(const PortKey&, const PortKey&) = default;
};

inline constexpr std::size_t kKeyPartMax = 31;

// Each part 1..31 characters of [A-Za-z0-9_.-], not starting with '.'; Errc::bad_name otherwise.
Status validate_key(const PortKey& key);
std::string to_string(const PortKey& key);  // "{network, node, port}"

}  // namespace bloccs
#pragma GCC visibility pop

template <>
struct std::hash<bloccs::PortKey> {
  std::size_t operator()(const bloccs::PortKey& k) const noexcept {
    const std::hash<std::string> h;
    return h(k.network_id) ^ (h(k.node_id) * 31) ^ (h(k.in_port) * 961);
  }
};
