// SPDX-License-Identifier: Apache-2.0
// The pipeline description's own arithmetic: retry delays, look-ups, start order.
#include <algorithm>
#include <cmath>
#include <map>

#include "bloccs/pipeline.hpp"

namespace bloccs {

std::chrono::milliseconds RetryPolicy::delay(std::uint32_t attempt, double u) const {
  // In double: factor^(attempt-1) overflows any integer long before the cap stops mattering.
  const double grown = static_cast<double>(base.count()) *
                       std::pow(factor, static_cast<double>(attempt > 0 ? attempt - 1 : 0));
  const double capped = std::min(grown, static_cast<double>(cap.count()));
  const double jittered = capped * (1.0 + jitter * std::clamp(u, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(jittered)));
}

const InputSpec* NodeSpec::input(std::string_view name) const noexcept {
  for (const auto& in : inputs)
    if (in.name == name) return &in;
  return nullptr;
}

const OutputSpec* NodeSpec::output(std::string_view name) const noexcept {
  for (const auto& out : outputs)
    if (out.name == name) return &out;
  return nullptr;
}

const NodeSpec* PipelineSpec::node(std::string_view id) const noexcept {
  for (const auto& n : nodes)
    if (n.id == id) return &n;
  return nullptr;
}

const HostSpec* PipelineSpec::host(std::string_view name) const noexcept {
  for (const auto& h : hosts)
    if (h.name == name) return &h;
  return nullptr;
}

std::vector<const NodeSpec*> PipelineSpec::sources_first() const {
  // Kahn's algorithm on node -> node edges; what a cycle leaves over follows in file order.
  std::map<std::string_view, int> fed_by;  // edges into each node not yet placed
  for (const auto& n : nodes) fed_by[n.id];
  for (const auto& n : nodes)
    for (const auto& out : n.outputs)
      for (const auto& t : out.targets) ++fed_by[t.node];
  std::vector<const NodeSpec*> order;
  std::vector<bool> placed(nodes.size(), false);
  for (bool progress = true; progress;) {
    progress = false;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (placed[i] || fed_by[nodes[i].id] != 0) continue;
      placed[i] = progress = true;
      order.push_back(&nodes[i]);
      for (const auto& out : nodes[i].outputs)
        for (const auto& t : out.targets) --fed_by[t.node];
    }
  }
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (!placed[i]) order.push_back(&nodes[i]);
  return order;
}

}  // namespace bloccs
