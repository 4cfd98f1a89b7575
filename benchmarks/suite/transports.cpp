// SPDX-License-Identifier: Apache-2.0
#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {

std::vector<Transport> all_transports() {
  std::vector<Transport> all;
  for (auto family : {floor_transports(), bloccs_transports(), peer_transports(), zeromq_transports()})
    all.insert(all.end(), family.begin(), family.end());
  return all;
}

const Transport* find_transport(std::string_view name) {
  for (auto family : {floor_transports(), bloccs_transports(), peer_transports(), zeromq_transports()})
    for (const Transport& t : family)
      if (t.name == name) return &t;
  return nullptr;
}

}  // namespace bloccs::bench
