// SPDX-License-Identifier: Apache-2.0
// `bloccs ledger SUMMARY...`: the ledger of a pipeline placed on several hosts, summed from
// each host's run summary (`bloccs run --host H --summary-json F`). What the sources emitted on
// every host = what the nodes at the ends took + dead-lettered + lost + what the wires between
// hosts still hold. Each host's own ledger counts its egress as a node that delivered and its
// ingress as a source; here they cancel out, wire by wire: what the egresses carried out minus
// what the ingresses carried in is what is still in the stream.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bloccs/result.hpp"

namespace bloccs::launcher {

struct HostsLedger {
  struct Wire {
    std::string port;  // network/node/port
    std::uint64_t out = 0, in = 0;  // carried by its egresses, and by its ingresses
    std::optional<std::uint64_t> stored;  // what the engine said at the latest summary's end
    std::uint64_t held() const noexcept { return out > in ? out - in : 0; }
    std::uint64_t repeated() const noexcept { return in > out ? in - out : 0; }
  };
  std::string network;
  std::vector<std::string> hosts;  // one per summary, in the order given
  std::vector<Wire> wires;
  std::uint64_t in = 0, delivered = 0, dead_lettered = 0, lost = 0;
  std::uint32_t restarts = 0;
  bool conserved = true;  // every summary's pipeline is (else the counts are shown unchecked)
  std::uint64_t held() const noexcept;  // in the wires, over all of them
  bool adds_up() const noexcept;  // for a conserved pipeline
};

// Errc::bad_config naming the file if one is not a host's run summary, or they are of
// different networks.
Result<HostsLedger> sum_hosts(const std::vector<std::filesystem::path>& summaries);
std::string render(const HostsLedger& l);
std::string render_json(const HostsLedger& l);

}  // namespace bloccs::launcher
