// SPDX-License-Identifier: Apache-2.0
// One host's part of a placed pipeline (placement.hpp).
#include "tools/bloccs/placement.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace bloccs::launcher {

Result<HostPart> host_part(const PipelineSpec& full, const std::string& host,
                           const std::filesystem::path& bloccs) {
  HostPart part;
  part.host = full.host(host);
  if (!part.host) {
    std::string names;
    for (const HostSpec& h : full.hosts) names += (names.empty() ? "" : ", ") + h.name;
    return Error{Errc::not_found, "--host " + host + " is not a host of " + full.file.string() +
                                      "; its hosts: " + names};
  }
  part.spec = full;
  part.spec.nodes.clear();
  for (const NodeSpec& n : full.nodes)
    if (n.host == host) part.spec.nodes.push_back(n);

  // Egress: ports of nodes elsewhere that nodes here feed, one pseudo-node per such node.
  std::map<std::string, NodeSpec> egress;  // remote node id -> pseudo-node
  // Ingress: ports of nodes here that nodes elsewhere feed, and from which hosts.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> ingress;
  for (const NodeSpec& from : full.nodes)
    for (const OutputSpec& o : from.outputs)
      for (const Target& t : o.targets) {
        const NodeSpec& to = *full.node(t.node);
        if (from.host == to.host) continue;
        if (from.host == host) {
          NodeSpec& e = egress[to.id];
          if (e.id.empty()) {
            e.id = to.id;
            e.host = host;
            e.program = bloccs;
            e.args = {"bridge", "out", "--host", host};
            e.line = to.line;
          }
          if (!e.input(t.port)) e.inputs.push_back(*to.input(t.port));
        }
        if (to.host == host) ingress[{to.id, t.port}].insert(from.host);
      }
  std::size_t urls = 1;
  for (const HostSpec& h : full.hosts) urls = std::max(urls, h.nats.size());
  const int replicas = static_cast<int>(std::min<std::size_t>(urls, 3));
  for (auto& [id, e] : egress) {
    std::sort(e.inputs.begin(), e.inputs.end(),
              [](const InputSpec& a, const InputSpec& b) { return a.name < b.name; });
    for (const InputSpec& in : e.inputs)
      part.bridges.push_back({Bridge::egress, e.id, {full.network, e.id, in.name},
                              in.buffer ? std::int64_t{*in.buffer} : kUnboundedStream,
                              replicas, {}});
    part.spec.nodes.push_back(std::move(e));
  }
  for (const auto& [port, from_hosts] : ingress) {
    const auto& [node, in_port] = port;
    std::string id = node + "-" + in_port + "-from-net";
    while (full.node(id) || part.spec.node(id)) id += "_";
    NodeSpec n;
    n.id = id;
    n.host = host;
    n.program = bloccs;
    n.args = {"bridge", "in", "--host", host};
    n.outputs.push_back({.name = "out", .targets = {{node, in_port}}, .line = 0});
    const InputSpec& in = *full.node(node)->input(in_port);
    part.bridges.push_back({Bridge::ingress, id, {full.network, node, in_port},
                            in.buffer ? std::int64_t{*in.buffer} : kUnboundedStream, replicas,
                            {from_hosts.begin(), from_hosts.end()}});
    part.spec.nodes.push_back(std::move(n));
  }
  return part;
}

}  // namespace bloccs::launcher
