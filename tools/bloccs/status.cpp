// SPDX-License-Identifier: Apache-2.0
#include "tools/bloccs/status.hpp"

#include <algorithm>
#include <cstdio>

namespace bloccs::launcher {
namespace {

// 1234567 -> "1,234,567": counts people read at a glance.
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string rate(std::uint64_t now, std::uint64_t before, double seconds) {
  if (seconds <= 0 || now < before) return "-";
  return grouped(static_cast<std::uint64_t>(static_cast<double>(now - before) / seconds + 0.5));
}

std::string row(const char* format, auto... args) {
  char line[512];
  std::snprintf(line, sizeof line, format, args...);
  return line;
}

// "wire out demo/sink/in: 12/32 in the stream, 3 in flight, 0 redelivered", or what is wrong.
std::string wire_text(const WireView& w) {
  std::string text = "wire " + w.direction + " " + w.port() + ": ";
  if (!w.known) return text + "engine: " + w.error;
  text += grouped(w.stored) + "/" + grouped(static_cast<std::uint64_t>(w.bound)) +
          " in the stream";
  if (!w.pulled) return text + ", not pulled yet";
  return text + ", " + grouped(w.in_flight) + " in flight, " + grouped(w.redelivered) +
         " redelivered";
}

// The node column: as wide as the longest id (a bridge's "<node>-<port>-from-net"), at least 14.
int id_width(const Snapshot& s) {
  std::size_t w = 14;
  for (const NodeView& n : s.nodes) w = std::max(w, n.spec->id.size());
  return static_cast<int>(std::min<std::size_t>(w, 64));
}

}  // namespace

std::vector<PortLoad> read_ports(const std::string& ns, const PipelineSpec& pipeline,
                                 const NodeSpec& node) {
  std::vector<PortLoad> out;
  auto reg = shmctl::open_registry(ns);
  for (const InputSpec& in : node.inputs) {
    PortLoad load{.name = in.name, .buffer = in.buffer.value_or(0)};
    if (reg) {
      if (auto entry = reg->lookup(port_key(pipeline, node.id, in.name))) {
        const shmctl::PortView v = shmctl::inspect(ns, *entry);
        load.registered = v.owner_alive && !v.error;
        load.depth = v.depth - v.due;
        load.due = v.due;
        load.parked = v.parked_pushers;
        load.pending_after = v.pending_after;
      }
    }
    out.push_back(std::move(load));
  }
  return out;
}

std::string render_status(const Snapshot& now, const Snapshot& before, Clock::time_point started) {
  const double dt = std::chrono::duration<double>(now.at - before.at).count();
  const double elapsed = std::chrono::duration<double>(now.at - started).count();
  const Ledger l = ledger(now);
  std::string out = row("  %6.1f s  in %s  delivered %s  retried %s  dead-lettered %s  lost %s\n",
                        elapsed, grouped(l.in).c_str(), grouped(l.delivered).c_str(),
                        grouped(l.retried).c_str(), grouped(l.dead_lettered).c_str(),
                        grouped(l.lost).c_str());
  const int w = id_width(now);
  out += row("  %8s %-*s %-10s %7s %9s %9s %8s %7s %6s  %s\n", "", w, "node",
                        "state", "pid", "in/s", "out/s", "retried", "dead", "lost",
                        "queued (parked pushers)");
  for (std::size_t i = 0; i < now.nodes.size(); ++i) {
    const NodeView& n = now.nodes[i];
    const NodeView& b = i < before.nodes.size() ? before.nodes[i] : n;
    std::string queued;
    for (const PortLoad& p : n.ports) {
      if (!queued.empty()) queued += ", ";
      queued += p.name + " " + grouped(p.depth) + "/" +
                (p.buffer ? grouped(p.buffer) : std::string("unbounded"));
      if (p.due) queued += " +" + grouped(p.due) + " due";
      if (p.parked) queued += " (" + std::to_string(p.parked) + " parked)";
      if (p.pending_after) queued += " +" + grouped(p.pending_after) + " retrying";
    }
    const std::uint64_t dead =
        n.spec ? (now.dead.by_node.contains(n.spec->id) ? now.dead.by_node.at(n.spec->id) : 0) : 0;
    out += row("  %8s %-*s %-10s %7u %9s %9s %8s %7s %6s  %s\n", "", w, n.spec->id.c_str(),
               n.state.c_str(), n.pid,
               n.spec->is_source() ? "-" : rate(n.counters.received, b.counters.received, dt).c_str(),
               n.spec->outputs.empty() ? "-"
                                       : rate(n.counters.emitted, b.counters.emitted, dt).c_str(),
               grouped(n.counters.retried).c_str(), grouped(dead).c_str(),
               grouped(n.counters.lost + n.counters.lost_at_takeover).c_str(),
               queued.empty() ? "-" : queued.c_str());
  }
  for (const WireView& w : now.wires) out += "  " + wire_text(w) + "\n";
  return out;
}

Ledger ledger(const Snapshot& end) {
  Ledger l;
  for (const NodeView& n : end.nodes) {
    if (n.spec->is_source()) l.in += n.counters.emitted;
    if (!n.spec->is_source() && n.spec->outputs.empty()) l.delivered += n.counters.handled;
    l.retried += n.counters.retried;
    l.lost += n.counters.lost + n.counters.lost_at_takeover;
    l.salvaged += n.counters.salvaged;
    l.restarts += n.restarts;
  }
  l.dead_lettered = end.dead.total;
  const std::uint64_t accounted = l.delivered + l.dead_lettered + l.lost;
  // A restart delivers again the batch its node was handling (at-least-once): then a message
  // may be counted twice, never zero times.
  l.adds_up = l.restarts == 0 ? accounted == l.in : accounted >= l.in;
  return l;
}

std::string render_summary(const Snapshot& end, const Ledger& l, bool conserved,
                           double seconds) {
  const int w = id_width(end);
  std::string out = row("summary after %.1f s:\n  %-*s %10s %10s %8s %8s %8s %10s %6s %8s\n",
                        seconds, w, "node", "received", "handled", "failed", "retried", "dead",
                        "emitted", "lost", "restarts");
  for (const NodeView& n : end.nodes) {
    const NodeCounters& c = n.counters;
    out += row("  %-*s %10s %10s %8s %8s %8s %10s %6s %8u\n", w, n.spec->id.c_str(),
               grouped(c.received).c_str(), grouped(c.handled).c_str(), grouped(c.failed).c_str(),
               grouped(c.retried).c_str(), grouped(c.dead_lettered).c_str(),
               grouped(c.emitted).c_str(), grouped(c.lost + c.lost_at_takeover).c_str(),
               n.restarts);
  }
  out += "  dead letters: " + grouped(end.dead.total);
  if (end.dead.total) {
    std::string by;
    for (const auto& [node, count] : end.dead.by_node)
      by += (by.empty() ? "" : ", ") + node + " " + grouped(count);
    out += " (" + by + "); the last: " + end.dead.last_node + ": \"" + end.dead.last_error + "\"";
  }
  out += "\n";
  for (const WireView& w : end.wires) out += "  " + wire_text(w) + "\n";
  if (l.salvaged) out += "  kept across restarts: " + grouped(l.salvaged) + " queued messages\n";
  if (conserved) {
    out += "  messages in " + grouped(l.in) + " = delivered " + grouped(l.delivered) +
           " + dead-lettered " + grouped(l.dead_lettered) + " + lost " + grouped(l.lost);
    if (l.restarts)
      out += l.adds_up ? ": every message accounted for (restarts may deliver a batch twice)\n"
                       : ": DOES NOT ADD UP: messages went missing\n";
    else
      out += l.adds_up ? ": adds up\n" : ": DOES NOT ADD UP: messages went missing\n";
  }
  return out;
}

}  // namespace bloccs::launcher
