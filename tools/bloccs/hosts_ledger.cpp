// SPDX-License-Identifier: Apache-2.0
#include "tools/bloccs/hosts_ledger.hpp"

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

namespace bloccs::launcher {
namespace {

using nlohmann::json;

Error bad(const std::filesystem::path& file, const std::string& why) {
  return {Errc::bad_config, file.string() + ": " + why +
                                "; give the files that `bloccs run --host H --summary-json F` "
                                "wrote, one per host's run"};
}

std::uint64_t count(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

}  // namespace

std::uint64_t HostsLedger::held() const noexcept {
  std::uint64_t n = 0;
  for (const Wire& w : wires) n += w.held();
  return n;
}

bool HostsLedger::adds_up() const noexcept {
  const std::uint64_t accounted = delivered + dead_lettered + lost + held();
  // A restart may hand a message over twice (at least once): counted twice, never zero times.
  return restarts == 0 ? accounted == in : accounted >= in;
}

Result<HostsLedger> sum_hosts(const std::vector<std::filesystem::path>& summaries) {
  HostsLedger l;
  double latest = -1;
  for (const auto& file : summaries) {
    std::ifstream in(file);
    if (!in) return bad(file, "cannot be read");
    const json j = json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad(file, "is not JSON");
    if (!j.contains("host") || !j["host"].is_string() || !j.contains("nodes"))
      return bad(file, "is not the summary of a host's part of a placed pipeline");
    const std::string network = j.value("network", "");
    if (l.hosts.empty()) l.network = network;
    else if (network != l.network)
      return bad(file, "is of network " + network + ", the files before it of " + l.network);
    l.hosts.push_back(j["host"].get<std::string>());
    l.in += count(j, "in");
    l.delivered += count(j, "delivered");
    l.dead_lettered += count(j, "dead_lettered");
    l.lost += count(j, "lost");
    l.restarts += static_cast<std::uint32_t>(count(j, "restarts"));
    l.conserved = l.conserved && j.value("conserved", false);
    const double ended = j.value("ended_at", 0.0);
    for (const auto& [id, node] : j["nodes"].items()) {
      if (!node.is_object() || !node.contains("bridge")) continue;
      const json& b = node["bridge"];
      const std::string port = b.value("port", "");
      auto w = std::find_if(l.wires.begin(), l.wires.end(),
                            [&](const HostsLedger::Wire& x) { return x.port == port; });
      if (w == l.wires.end()) {
        l.wires.emplace_back();
        w = l.wires.end() - 1;
        w->port = port;
      }
      const std::uint64_t carried = count(b, "carried");
      // Here the bridges cancel out: the egress's "delivered" and the ingress's "in".
      if (b.value("direction", "") == "out") {
        w->out += carried;
        l.delivered -= std::min(l.delivered, carried);
      } else {
        w->in += carried;
        l.in -= std::min(l.in, carried);
      }
      if (b.contains("stream") && ended >= latest) w->stored = count(b["stream"], "stored");
    }
    latest = std::max(latest, ended);
  }
  return l;
}

std::string render(const HostsLedger& l) {
  std::string hosts;
  for (const auto& h : l.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  std::string out = "network " + l.network + ", " + std::to_string(l.hosts.size()) +
                    " runs (" + hosts + ")\n";
  for (const HostsLedger::Wire& w : l.wires) {
    out += "  wire " + w.port + ": carried out " + std::to_string(w.out) + ", in " +
           std::to_string(w.in) + ", so " + std::to_string(w.held()) + " still in the stream";
    if (w.repeated()) out += " (" + std::to_string(w.repeated()) + " handed over twice)";
    if (w.stored) out += "; the engine said " + std::to_string(*w.stored) + " at the last end";
    out += "\n";
  }
  out += "  messages in " + std::to_string(l.in) + " = delivered " + std::to_string(l.delivered) +
         " + dead-lettered " + std::to_string(l.dead_lettered) + " + lost " +
         std::to_string(l.lost) + " + in the wires " + std::to_string(l.held());
  if (!l.conserved) return out + " (not a conserved pipeline: nothing to check)\n";
  if (!l.adds_up()) return out + ": DOES NOT ADD UP: messages went missing\n";
  return out + (l.restarts ? ": every message accounted for (restarts may hand one over twice)\n"
                           : ": adds up\n");
}

std::string render_json(const HostsLedger& l) {
  json j = {{"network", l.network}, {"hosts", l.hosts},       {"in", l.in},
            {"delivered", l.delivered}, {"dead_lettered", l.dead_lettered},
            {"lost", l.lost},         {"in_wires", l.held()}, {"restarts", l.restarts},
            {"adds_up", l.adds_up()}, {"wires", json::array()}};
  for (const HostsLedger::Wire& w : l.wires) {
    json wire = {{"port", w.port}, {"out", w.out}, {"in", w.in}, {"held", w.held()}};
    if (w.stored) wire["stored"] = *w.stored;
    j["wires"].push_back(wire);
  }
  return j.dump(2) + "\n";
}

}  // namespace bloccs::launcher
