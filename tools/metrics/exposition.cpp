// SPDX-License-Identifier: Apache-2.0
// The Prometheus text exposition of ports and nodes (exposition.hpp).
#include "tools/metrics/exposition.hpp"

#include <cmath>
#include <cstdio>

#include "port/time_in_queue.hpp"

namespace bloccs::metrics {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[40];
  // Integers as integers (counters read better), the rest to 12 digits (ns in 1000 s).
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.12g", v);
  return buf;
}

std::string labels(std::initializer_list<std::pair<const char*, std::string>> kv) {
  std::string out;
  for (const auto& [k, v] : kv) out += (out.empty() ? "" : ",") + std::string(k) + "=\"" + label_value(v) + "\"";
  return out;
}

double seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

}  // namespace

std::string label_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Exposition::Family& Exposition::family(const std::string& name, const char* type,
                                       const char* help) {
  for (Family& f : families_)
    if (f.name == name) return f;
  families_.push_back({name, type, help, {}});
  return families_.back();
}

void Exposition::sample(const std::string& name, const char* type, const char* help,
                        const std::string& l, double value, const std::string& suffix) {
  family(name, type, help).samples.push_back(name + suffix + "{" + l + "} " + number(value));
}

void Exposition::add_ports(const std::vector<shmctl::Looked>& looked) {
  for (const shmctl::Looked& ns : looked)
    for (const shmctl::PortView& v : ns.ports) {
      const PortKey& k = v.entry.key;
      const std::string l = labels(
          {{"namespace", ns.ns}, {"network", k.network_id}, {"node", k.node_id}, {"port", k.in_port}});
      sample("bloccs_port_owner_up", "gauge",
             "1 while the port's owner process holds it, 0 once it died (gc removes it)", l,
             v.owner_alive ? 1 : 0);
      if (v.error) continue;  // its segments could not be read: nothing else to say
      const auto& c = v.counters;
      sample("bloccs_port_pushed_total", "counter", "Messages pushed into the port", l,
             static_cast<double>(c.pushed));
      sample("bloccs_port_received_total", "counter",
             "Messages its owner received (push_after ones included)", l,
             static_cast<double>(c.received));
      sample("bloccs_port_depth", "gauge", "Messages queued, ready to receive", l,
             static_cast<double>(v.depth));
      if (v.buffer)
        sample("bloccs_port_buffer", "gauge", "Bound on queued messages (bounded ports only)", l,
               v.buffer);
      sample("bloccs_port_bytes_used", "gauge", "Bytes of the port's ring in use", l,
             static_cast<double>(v.bytes_used));
      sample("bloccs_port_parked_pushers", "gauge", "Pushers asleep waiting for room", l,
             v.parked_pushers);
      sample("bloccs_port_pending_after", "gauge", "push_after messages not yet due", l,
             static_cast<double>(v.pending_after));
      sample("bloccs_port_after_delivered_total", "counter",
             "push_after messages its timer enqueued when due", l,
             static_cast<double>(c.after_delivered));
      sample("bloccs_port_after_retries_total", "counter",
             "Times its timer found the port full and retried", l, static_cast<double>(c.retried));
      sample("bloccs_port_push_timeouts_total", "counter", "Pushes that gave up at their deadline",
             l, static_cast<double>(c.timed_out));
      sample("bloccs_port_pushes_waited_total", "counter", "Pushes that parked for room", l,
             static_cast<double>(v.pushes_waited));
      sample("bloccs_port_wait_seconds_total", "counter", "Time pushers spent parked for room", l,
             seconds(static_cast<std::uint64_t>(v.waited.count())));
      sample("bloccs_port_longest_wait_seconds", "gauge", "The longest single park for room", l,
             seconds(static_cast<std::uint64_t>(v.longest_wait.count())));
      sample("bloccs_port_no_producer_while_waiting_total", "counter",
             "Parked pushes sent away because the owner died", l,
             static_cast<double>(v.no_producer_while_waiting));
      sample("bloccs_port_refused_total", "counter", "Records dropped: their meta did not parse", l,
             static_cast<double>(c.refused));
      sample("bloccs_port_abandoned_total", "counter", "Claims of killed pushers skipped", l,
             static_cast<double>(c.abandoned));
      if (!v.histogram) continue;
      // Cumulative counts at each power of two: the histogram's octaves end there exactly.
      const char* name = "bloccs_port_time_in_queue_seconds";
      const char* help = "Time from push (or a push_after falling due) to receipt";
      const port::QueueTimeSnapshot& t = v.time_in_queue;
      std::uint64_t below = 0;
      unsigned b = 0;
      for (unsigned e = port::kFirstOctave; e <= port::kFirstOctave + port::kOctaves; ++e) {
        const std::uint64_t le_ns = std::uint64_t{1} << e;
        for (; b < port::kOverflowBucket && port::bucket_high(b) <= le_ns; ++b) below += t.buckets[b];
        char le[32];
        std::snprintf(le, sizeof le, "%.12g", seconds(le_ns));
        sample(name, "histogram", help, l + ",le=\"" + le + "\"", static_cast<double>(below),
               "_bucket");
      }
      sample(name, "histogram", help, l + ",le=\"+Inf\"", static_cast<double>(t.count()),
             "_bucket");
      sample(name, "histogram", help, l, seconds(t.sum_ns), "_sum");
      sample(name, "histogram", help, l, static_cast<double>(t.count()), "_count");
    }
}

void Exposition::add_nodes(const std::vector<NodeSample>& nodes) {
  for (const NodeSample& n : nodes) {
    const std::string l = labels({{"namespace", n.ns}, {"network", n.network}, {"node", n.node}});
    const NodeCounters& c = n.counters;
    sample("bloccs_node_up", "gauge", "1 while the node's process runs", l, n.up ? 1 : 0);
    sample("bloccs_node_restarts_total", "counter", "Times the launcher restarted the node", l,
           n.restarts);
    sample("bloccs_node_received_total", "counter",
           "Messages taken from its input ports (a retry counts again)", l,
           static_cast<double>(c.received));
    sample("bloccs_node_handled_total", "counter", "Messages its handler handled", l,
           static_cast<double>(c.handled));
    sample("bloccs_node_failed_total", "counter", "Handler attempts that failed", l,
           static_cast<double>(c.failed));
    sample("bloccs_node_retried_total", "counter", "Failed messages re-enqueued with push_after",
           l, static_cast<double>(c.retried));
    sample("bloccs_node_dead_lettered_total", "counter",
           "Failed messages sent to the dead-letter port", l,
           static_cast<double>(c.dead_lettered));
    sample("bloccs_node_emitted_total", "counter", "Messages pushed into wired ports", l,
           static_cast<double>(c.emitted));
    sample("bloccs_node_lost_total", "counter",
           "Messages that could be neither retried nor dead-lettered (counted, never silent)", l,
           static_cast<double>(c.lost + c.lost_at_takeover));
  }
}

void Exposition::add_wires(const std::vector<WireSample>& wires) {
  for (const WireSample& w : wires) {
    const std::string l = labels({{"namespace", w.ns},
                                  {"network", w.network},
                                  {"direction", w.direction},
                                  {"node", w.node},
                                  {"port", w.port}});
    sample("bloccs_wire_engine_up", "gauge",
           "1 if the engine answered the launcher's last look at the wire", l, w.engine_up ? 1 : 0);
    if (!w.engine_up) continue;  // no numbers rather than stale ones
    sample("bloccs_wire_stream_messages", "gauge",
           "Messages in the wire's stream: published, not yet acked by the receiving bridge", l,
           static_cast<double>(w.stored));
    sample("bloccs_wire_stream_bound", "gauge", "The most messages the wire's stream holds", l,
           static_cast<double>(w.bound));
    sample("bloccs_wire_in_flight", "gauge",
           "Messages delivered to the receiving bridge and not yet acked", l,
           static_cast<double>(w.in_flight));
    sample("bloccs_wire_redelivered_total", "counter",
           "Deliveries beyond each message's first (a receiving bridge died holding them)", l,
           static_cast<double>(w.redelivered));
  }
}

std::string Exposition::text() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
    for (const std::string& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace bloccs::metrics
