// SPDX-License-Identifier: Apache-2.0
#include "bloccs/port_key.hpp"

#include "shm/names.hpp"

namespace bloccs {

Status validate_key(const PortKey& key) {
  if (auto st = shm::validate_part("network_id", key.network_id, kKeyPartMax); !st) return st;
  if (auto st = shm::validate_part("node_id", key.node_id, kKeyPartMax); !st) return st;
  return shm::validate_part("in_port", key.in_port, kKeyPartMax);
}

std::string to_string(const PortKey& key) {
  return "{" + key.network_id + ", " + key.node_id + ", " + key.in_port + "}";
}

}  // namespace bloccs
