// SPDX-License-Identifier: Apache-2.0
// shmctl: inspect and repair the ports of a bloccs namespace, live. The output and exit codes
// are specified in tools/shmctl/SPEC.md.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bloccs/version.hpp"
#include "port/port_layout.hpp"
#include "port/port_stats.hpp"
#include "shm/namespace_dir.hpp"
#include "shm/names.hpp"
#include "tools/metrics/exposition.hpp"
#include "tools/metrics/server.hpp"
#include "tools/shmctl/format.hpp"
#include "tools/shmctl/inspect.hpp"
#include "tools/shmctl/top.hpp"

namespace {

using namespace bloccs;
using namespace bloccs::shmctl;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

enum Exit { kOk = 0, kNothing = 1, kUsage = 2, kUnreadable = 3, kRefused = 4 };

struct Options {
  std::string ns;
  bool json = false;
};

// JSON text: invalid UTF-8 (binary meta) becomes U+FFFD instead of an exception.
std::string dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

// An error, as text on stderr, or with --json as {"error", "code"} on stdout (where a script
// reads the answer), and the exit code to return.
int say_error(const Options& o, const Error& e, int code) {
  if (o.json)
    std::puts(dump(json{{"error", e.message}, {"code", errc_name(e.code)}}).c_str());
  else
    std::fprintf(stderr, "shmctl: %s\n", e.message.c_str());
  return code;
}

// The namespaces other than `except` that hold registered ports, with how many: where to look
// when `except` has none (bloccs run puts a pipeline's ports in <network>-<pid>).
std::vector<std::pair<std::string, std::size_t>> namespaces_with_ports(const std::string& except) {
  std::vector<std::pair<std::string, std::size_t>> out;
  for (const std::string& ns : shm::list_namespaces()) {
    if (ns == except) continue;
    auto reg = open_registry(ns);
    if (!reg) continue;  // empty, or not ours to read
    if (const std::size_t n = reg->entries().size(); n > 0) out.emplace_back(ns, n);
  }
  return out;
}

// "no ports in namespace X", and where the ports are.
std::string no_ports_text(const std::string& ns) {
  std::string text = "no ports in namespace " + ns;
  const auto elsewhere = namespaces_with_ports(ns);
  if (elsewhere.empty()) return text + " (nor in any other namespace)";
  text += "; ports are in namespace";
  for (std::size_t i = 0; i < elsewhere.size() && i < 5; ++i)
    text += (i ? ", " : " ") + elsewhere[i].first + " (" + std::to_string(elsewhere[i].second) +
            (elsewhere[i].second == 1 ? " port)" : " ports)");
  if (elsewhere.size() > 5) text += ", and " + std::to_string(elsewhere.size() - 5) + " more";
  return text + ": shmctl -N " + elsewhere[0].first + " ls, or shmctl ls --all-namespaces";
}

json no_ports_json(const std::string& ns) {
  json elsewhere = json::array();
  for (const auto& [name, n] : namespaces_with_ports(ns))
    elsewhere.push_back({{"namespace", name}, {"ports", n}});
  return {{"namespace", ns}, {"error", "no ports in namespace " + ns},
          {"code", "not_found"}, {"namespaces_with_ports", elsewhere}};
}

// Meta keys and values are bytes: printable ASCII as is, the rest as \xNN (never raw control
// bytes on a terminal, never a NUL that cuts the line short).
std::string escaped(std::string_view s) {
  std::string out;
  char buf[5];
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 32 && c < 127 && c != '\\') {
      out += ch;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}


// The registry, or an exit code: 1 if the namespace has no port, 3 if it cannot be read.
std::optional<registry::Registry> registry_or(const Options& o, int& code) {
  auto r = open_registry(o.ns);
  if (r) return std::move(r).value();
  if (r.code() == Errc::not_found) {
    if (o.json)
      std::puts(dump(no_ports_json(o.ns)).c_str());
    else
      std::printf("%s\n", no_ports_text(o.ns).c_str());
    code = kNothing;
  } else {
    code = say_error(o, r.error(), kUnreadable);
  }
  return std::nullopt;
}

// The registered entry for `key_arg`, or an exit code.
std::optional<registry::PortEntry> entry_or(const Options& o, registry::Registry& reg,
                                            const PortKey& key, int& code) {
  auto e = reg.lookup(key);
  if (e) return std::move(e).value();
  if (e.code() == Errc::not_found) {
    if (o.json)
      std::puts(dump(json{{"key", key_text(key)}, {"error", "no such port"}, {"code", "not_found"}})
                    .c_str());
    else
      std::printf("no port %s in namespace %s\n", key_text(key).c_str(), o.ns.c_str());
    code = kNothing;
  } else {
    code = say_error(o, e.error(), kUnreadable);
  }
  return std::nullopt;
}

json port_json(const PortView& v) {
  json j = {{"key", key_text(v.entry.key)},
            {"network_id", v.entry.key.network_id},
            {"node_id", v.entry.key.node_id},
            {"in_port", v.entry.key.in_port},
            {"owner_pid", v.entry.owner.pid},
            {"owner_alive", v.owner_alive}};
  if (v.error) {
    j["error"] = *v.error;
    return j;
  }
  j["kind"] = v.spsc ? "spsc" : "mpsc";
  j["buffer"] = v.buffer ? json(v.buffer) : json(nullptr);
  j["max_payload"] = v.max_payload;
  j["depth"] = v.depth;
  j["due"] = v.due;
  j["bytes_used"] = v.bytes_used;
  j["capacity"] = v.capacity;
  j["parked_pushers"] = v.parked_pushers;
  j["pending_after"] = v.pending_after;
  j["links"] = v.links;
  return j;
}

std::string owner_text(const PortView& v) {
  return std::to_string(v.entry.owner.pid) + (v.owner_alive ? " alive" : " dead");
}

struct Rates {
  double pushed = 0, received = 0;
};

void print_ls_header(bool with_rates) {
  std::printf("%-32s %-12s %-5s %-10s %-8s %-20s %-7s %-6s%s\n", "KEY", "OWNER", "KIND",
              "BUFFER", "DEPTH", "BYTES", "PARKED", "AFTER", with_rates ? " PUSH/s     RECV/s" : "");
}

void print_ls_line(const PortView& v, const Rates* rates) {
  if (v.error) {
    std::printf("%-32s %-12s %-5s %-10s %-8s %-20s %-7s %-6s error: %s\n",
                key_text(v.entry.key).c_str(), owner_text(v).c_str(), "?", "-", "-", "-", "-",
                "-", v.error->c_str());
    return;
  }
  const std::string bytes = std::to_string(v.bytes_used) + "/" + std::to_string(v.capacity);
  std::printf("%-32s %-12s %-5s %-10s %-8llu %-20s %-7u %-6llu", key_text(v.entry.key).c_str(),
              owner_text(v).c_str(), v.spsc ? "spsc" : "mpsc",
              v.buffer ? std::to_string(v.buffer).c_str() : "unbounded",
              static_cast<unsigned long long>(v.depth), bytes.c_str(), v.parked_pushers,
              static_cast<unsigned long long>(v.pending_after));
  if (rates) std::printf(" %-10.0f %-10.0f", rates->pushed, rates->received);
  std::printf("\n");
}

std::vector<PortView> snapshot(registry::Registry& reg, const std::string& ns) {
  std::vector<PortView> out;
  for (const auto& e : reg.entries()) out.push_back(inspect(ns, e));
  return out;
}

int cmd_ls(const Options& o) {
  int code = kOk;
  auto reg = registry_or(o, code);
  if (!reg) return code;  // registry_or said so, with the namespaces that do hold ports
  const auto views = snapshot(*reg, o.ns);
  bool unreadable = false;
  for (const auto& v : views) unreadable |= v.error.has_value();
  if (o.json) {
    json ports = json::array();
    for (const auto& v : views) ports.push_back(port_json(v));
    json j{{"namespace", o.ns}, {"ports", ports}};
    if (views.empty()) j.update(no_ports_json(o.ns));
    std::puts(dump(j).c_str());
  } else if (!views.empty()) {
    print_ls_header(false);
    for (const auto& v : views) print_ls_line(v, nullptr);
  } else {
    std::printf("%s\n", no_ports_text(o.ns).c_str());  // a registry left with no port in it
  }
  if (views.empty()) return kNothing;
  return unreadable ? kUnreadable : kOk;
}

// ls --all-namespaces: every namespace this user can read, one table with a NAMESPACE column.
int cmd_ls_all(const Options& o) {
  json all = json::array();
  bool any = false, unreadable = false, header = false;
  for (const std::string& ns : shm::list_namespaces()) {
    auto reg = open_registry(ns);
    if (!reg) continue;  // no registry (nothing registered), or not ours to read
    const auto views = snapshot(*reg, ns);
    if (views.empty()) continue;
    any = true;
    json ports = json::array();
    for (const auto& v : views) {
      unreadable |= v.error.has_value();
      if (o.json) {
        ports.push_back(port_json(v));
        continue;
      }
      if (!header) {
        std::printf("%-24s ", "NAMESPACE");
        print_ls_header(false);
        header = true;
      }
      std::printf("%-24s ", ns.c_str());
      print_ls_line(v, nullptr);
    }
    if (o.json) all.push_back({{"namespace", ns}, {"ports", ports}});
  }
  if (o.json)
    std::puts(dump(json{{"namespaces", all}}).c_str());
  else if (!any)
    std::printf("no ports in any namespace\n");
  if (!any) return kNothing;
  return unreadable ? kUnreadable : kOk;
}

Rates rates_between(const PortView& a, const PortView& b, double seconds) {
  if (seconds <= 0) return {};
  // Counters only grow, but two looks at moving queues can disagree by a few: never negative.
  auto per_s = [&](std::uint64_t before, std::uint64_t after) {
    return after > before ? static_cast<double>(after - before) / seconds : 0.0;
  };
  return {per_s(a.counters.pushed, b.counters.pushed),
          per_s(a.counters.received, b.counters.received)};
}

void print_show(const PortView& v, const Rates& r) {
  const auto& k = v.counters;
  std::printf("port        %s\n", key_text(v.entry.key).c_str());
  std::printf("owner       %u (%s)\n", v.entry.owner.pid, v.owner_alive ? "alive" : "dead");
  if (v.error) {
    std::printf("error       %s\n", v.error->c_str());
    return;
  }
  std::printf("kind        %s, buffer %s, max_payload %u\n", v.spsc ? "spsc" : "mpsc",
              v.buffer ? std::to_string(v.buffer).c_str() : "unbounded", v.max_payload);
  const std::string due = v.due ? " (" + std::to_string(v.due) + " of them due push_after)" : "";
  std::printf("depth       %llu messages%s, %llu of %llu bytes, %u link%s\n",
              static_cast<unsigned long long>(v.depth), due.c_str(),
              static_cast<unsigned long long>(v.bytes_used),
              static_cast<unsigned long long>(v.capacity), v.links, v.links == 1 ? "" : "s");
  std::printf("parked      %u pushers\n", v.parked_pushers);
  std::printf("push_after  %llu pending, %llu delivered\n",
              static_cast<unsigned long long>(v.pending_after),
              static_cast<unsigned long long>(k.after_delivered));
  std::printf("pushed      %llu   (%.1f/s)\n", static_cast<unsigned long long>(k.pushed), r.pushed);
  std::printf("received    %llu   (%.1f/s)\n", static_cast<unsigned long long>(k.received),
              r.received);
  std::printf("timed_out   %llu\n", static_cast<unsigned long long>(k.timed_out));
  std::printf("retried     %llu\n", static_cast<unsigned long long>(k.retried));
  std::printf("abandoned   %llu\n", static_cast<unsigned long long>(k.abandoned));
  std::printf("refused     %llu\n", static_cast<unsigned long long>(k.refused));
  std::printf("waited      %llu pushes parked for room, %s in all, longest %s; %llu sent away "
              "by a stop\n",
              static_cast<unsigned long long>(v.pushes_waited),
              duration_text(static_cast<std::uint64_t>(v.waited.count())).c_str(),
              duration_text(static_cast<std::uint64_t>(v.longest_wait.count())).c_str(),
              static_cast<unsigned long long>(v.no_producer_while_waiting));
  if (!v.histogram) {
    std::printf("in_queue    not kept (the port started with latency_histogram off)\n");
    return;
  }
  const port::QueueTimeSnapshot& t = v.time_in_queue;
  std::printf("in_queue    p50 %s, p90 %s, p99 %s, p99.9 %s, max %s (%llu messages)\n",
              duration_text(t.percentile(0.5)).c_str(), duration_text(t.percentile(0.9)).c_str(),
              duration_text(t.percentile(0.99)).c_str(),
              duration_text(t.percentile(0.999)).c_str(),
              duration_text(t.count() ? t.max_ns : 0).c_str(),
              static_cast<unsigned long long>(t.count()));
}

json queue_times_json(const port::QueueTimeSnapshot& t) {
  const QueueTimes q = port::queue_times(t);
  return {{"count", q.count},         {"total_ns", q.total.count()}, {"p50_ns", q.p50.count()},
          {"p90_ns", q.p90.count()},  {"p99_ns", q.p99.count()},     {"p999_ns", q.p999.count()},
          {"max_ns", q.max.count()}};
}

json show_json(const PortView& v, const Rates& r) {
  json j = port_json(v);
  if (v.error) return j;
  const auto& k = v.counters;
  j["counters"] = {{"pushed", k.pushed},       {"received", k.received},
                   {"timed_out", k.timed_out}, {"retried", k.retried},
                   {"abandoned", k.abandoned}, {"refused", k.refused},
                   {"after_delivered", k.after_delivered}};
  j["rates"] = {{"pushed_per_s", r.pushed}, {"received_per_s", r.received}};
  j["waits"] = {{"pushes_waited", v.pushes_waited},
                {"waited_ns", v.waited.count()},
                {"longest_wait_ns", v.longest_wait.count()},
                {"no_producer_while_waiting", v.no_producer_while_waiting}};
  j["time_in_queue"] = v.histogram ? queue_times_json(v.time_in_queue) : json(nullptr);
  return j;
}

int cmd_show(const Options& o, const PortKey& key, int interval_ms) {
  int code = kOk;
  auto reg = registry_or(o, code);
  if (!reg) return code;
  auto entry = entry_or(o, *reg, key, code);
  if (!entry) return code;
  const auto t0 = Clock::now();
  const PortView first = inspect(o.ns, *entry);
  std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  const PortView v = inspect(o.ns, *entry);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const Rates r = first.error ? Rates{} : rates_between(first, v, secs);
  if (o.json)
    std::puts(dump(show_json(v, r)).c_str());
  else
    print_show(v, r);
  return v.error ? kUnreadable : kOk;
}

std::string printable(std::span<const std::byte> b) {
  std::string s;
  for (std::byte x : b) {
    const auto c = static_cast<unsigned char>(x);
    s += (c >= 32 && c < 127) ? static_cast<char>(c) : '.';
  }
  return s;
}

std::string hex(std::span<const std::byte> b, const char* sep) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(b[i]));
    if (i) s += sep;
    s += buf;
  }
  return s;
}

int cmd_peek(const Options& o, const PortKey& key, std::size_t n) {
  int code = kOk;
  auto reg = registry_or(o, code);
  if (!reg) return code;
  auto entry = entry_or(o, *reg, key, code);
  if (!entry) return code;
  auto messages = peek(o.ns, *entry, n);
  if (!messages) return say_error(o, messages.error(), kUnreadable);
  constexpr std::size_t kShown = 32;
  json list = json::array();
  for (std::size_t i = 0; i < messages->size(); ++i) {
    const auto& m = (*messages)[i];
    const auto head = std::span<const std::byte>(m.payload).first(std::min(kShown, m.payload.size()));
    if (o.json) {
      json meta = json::object();
      for (const auto& [k, v] : m.meta.values) meta[k] = v;
      list.push_back({{"size", m.payload.size()},
                      {"attempt", m.meta.attempt},
                      {"meta", meta},
                      {"hex", hex(head, "")},
                      {"text", printable(head)}});
      continue;
    }
    std::string meta = "{";
    for (const auto& [k, v] : m.meta.values)
      meta += (meta.size() > 1 ? " " : "") + escaped(k) + "=" + escaped(v);
    meta += "}";
    std::printf("#%-3zu %6zu bytes  attempt %u  meta %s  %s%s  |%s|\n", i, m.payload.size(),
                m.meta.attempt, meta.c_str(), hex(head, " ").c_str(),
                m.payload.size() > kShown ? " ..." : "", printable(head).c_str());
  }
  if (o.json) std::puts(dump(json{{"key", key_text(key)}, {"messages", list}}).c_str());
  else if (messages->empty()) std::printf("port %s has no queued messages\n", key_text(key).c_str());
  return kOk;
}

int cmd_gc(const Options& o, bool dry_run) {
  auto reg = open_registry(o.ns);
  if (!reg && reg.code() != Errc::not_found) return say_error(o, reg.error(), kUnreadable);
  registry::Registry* r = reg ? &*reg : nullptr;
  const auto garbage = find_garbage(o.ns, r);
  json removed = json::array();
  for (const auto& g : garbage) {
    const bool node_block = g.kind == shm::SegmentKind::node;
    const std::string what = node_block ? "node block " + g.control
                             : g.entry  ? key_text(g.entry->key)
                                        : "unregistered family " + g.control;
    if (!o.json)
      std::printf("%s %s of dead pid %u: %zu segments\n", dry_run ? "would remove" : "removed",
                  what.c_str(), g.owner_pid, g.segments.size());
    removed.push_back({{"kind", node_block ? "node" : "port"},
                       {"key", g.entry ? json(key_text(g.entry->key)) : json(nullptr)},
                       {"control", g.control},
                       {"owner_pid", g.owner_pid},
                       {"segments", g.segments}});
    if (!dry_run && !remove(o.ns, r, g) && !o.json)
      std::printf("  (skipped: a new owner took %s over meanwhile)\n", what.c_str());
  }
  // The namespace directory's temporary names that killed processes left (no segment in them).
  const auto unfinished = shm::unfinished_namespace_dirs(o.ns, std::chrono::seconds(10));
  for (const std::string& name : unfinished) {
    if (!o.json)
      std::printf("%s unfinished namespace directory /dev/shm/%s\n",
                  dry_run ? "would remove" : "removed", name.c_str());
    removed.push_back({{"kind", "unfinished_namespace"}, {"segments", {name}}});
    if (dry_run) continue;
    if (auto st = shm::remove_unfinished_namespace_dir(name); !st)
      return say_error(o, st.error(), kUnreadable);
  }
  if (o.json) std::puts(dump(json{{"dry_run", dry_run}, {"removed", removed}}).c_str());
  else if (garbage.empty() && unfinished.empty())
    std::printf("nothing to collect in namespace %s\n", o.ns.c_str());
  return kOk;  // nothing to collect is not a failure
}

int cmd_rm(const Options& o, const PortKey& key, bool force) {
  int code = kOk;
  auto reg = registry_or(o, code);
  if (!reg) return code;
  auto entry = entry_or(o, *reg, key, code);
  if (!entry) return code;
  if (entry->alive && !force) {
    std::fprintf(stderr,
                 "shmctl: port %s belongs to pid %u, which is alive; stop it there, or pass "
                 "--force to remove it anyway (its owner and pushers will then fail)\n",
                 key_text(key).c_str(), entry->owner.pid);
    return kRefused;
  }
  Garbage g{entry->segment, *entry, entry->owner.pid, family_segments(o.ns, entry->segment)};
  if (!port::is_control_name(entry->segment, entry->key, entry->owner.pid)) {
    g.control.clear();  // the slot names a segment that is not its own: free the slot only
    g.segments.clear();
  }
  if (!remove(o.ns, &*reg, g, force)) {
    std::fprintf(stderr, "shmctl: port %s changed owner while it was being removed; look again\n",
                 key_text(key).c_str());
    return kNothing;
  }
  if (o.json)
    std::puts(dump(json{{"removed", key_text(key)}, {"segments", g.segments}}).c_str());
  else
    std::printf("removed %s: %zu segments\n", key_text(key).c_str(), g.segments.size());
  return kOk;
}

std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) { g_interrupted.store(true); }

std::string iso_now() {
  const std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", std::localtime(&t));
  return b;
}

int cmd_watch(const Options& o, const std::optional<PortKey>& key, int interval_ms) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const bool tty = isatty(STDOUT_FILENO) != 0;
  if (tty) std::printf("\x1b[?1049h");  // the terminal's alternate screen, like top
  std::map<std::string, std::pair<Clock::time_point, PortCounters>> last;
  while (!g_interrupted.load()) {
    if (tty) std::printf("\x1b[H\x1b[2J");
    std::printf("--- %s  namespace %s  (every %d ms; Ctrl-C to stop)\n", iso_now().c_str(),
                o.ns.c_str(), interval_ms);
    std::vector<PortView> views;
    if (auto reg = open_registry(o.ns)) {
      for (const auto& e : reg->entries())
        if (!key || e.key == *key) views.push_back(inspect(o.ns, e));
    }
    if (views.empty()) std::printf("no ports\n");
    else if (!key) print_ls_header(true);
    const auto now = Clock::now();
    for (const auto& v : views) {
      Rates r;
      auto& prev = last[key_text(v.entry.key)];
      if (prev.first != Clock::time_point{} && !v.error) {
        PortView before = v;
        before.counters = prev.second;
        r = rates_between(before, v, std::chrono::duration<double>(now - prev.first).count());
      }
      prev = {now, v.counters};
      if (key)
        print_show(v, r);  // one port: everything about it, rates since the last refresh
      else
        print_ls_line(v, &r);
    }
    std::fflush(stdout);
    const auto until = Clock::now() + std::chrono::milliseconds(interval_ms);
    while (!g_interrupted.load() && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (tty) std::printf("\x1b[?1049l");  // back to the screen as it was
  return kOk;
}

// shmctl metrics: the Prometheus exposition of every port, served until SIGINT or SIGTERM.
int cmd_metrics(const Options& o, const std::string& listen, bool all, bool once) {
  auto render = [ns = o.ns, all] {
    metrics::Exposition e;
    e.add_ports(look_at(all ? shm::list_namespaces() : std::vector<std::string>{ns}));
    return e.text();
  };
  if (once) {
    std::fputs(render().c_str(), stdout);
    return kOk;
  }
  auto where = metrics::parse_listen(listen);
  if (!where) return say_error(o, where.error(), kUsage);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto server = metrics::MetricsServer::start(*where, render);
  if (!server)
    return say_error(o, server.error(),
                     server.error().code == Errc::bad_config ? kUsage : kRefused);
  const std::string what = all ? "every namespace" : "namespace " + o.ns;
  if (o.json)
    std::puts(dump(json{{"url", (*server)->url()}, {"namespaces", all ? json("all") : json(o.ns)}})
                  .c_str());
  else
    std::printf("serving the metrics of %s at %s (Ctrl-C to stop)\n", what.c_str(),
                (*server)->url().c_str());
  std::fflush(stdout);
  while (!g_interrupted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "shmctl: inspect and repair the ports of a bloccs namespace, live, without slowing them.\n"
      "Exit codes: 0 ok (gc with nothing to collect too), 1 nothing found, 2 usage, 3 a segment "
      "invalid or not yours, 4 refused (rm of a live owner's port without --force). With --json "
      "an error is a JSON object with \"error\" and \"code\" on stdout."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("shmctl ") + bloccs::version(),
                       "print the version (the library's) and exit");
  app.footer(R"(Samples (see tools/shmctl/SPEC.md for every field):
  $ shmctl ls
  KEY                  OWNER        KIND  BUFFER  DEPTH  BYTES        PARKED  AFTER
  demo/sink/in         6325 alive   mpsc  64      64     7168/65536   1       0
  $ shmctl show demo/sink/in
  port        demo/sink/in
  owner       6325 (alive)
  depth       40 messages, 4480 of 65536 bytes, 1 link
  pushed      1769204   (1740982.6/s)
  received    1769164   (1740968.6/s)
  ...
  $ shmctl peek demo/sink/in -n 1
  #0       96 bytes  attempt 0  meta {}  00 00 ... 68 65 6c 6c 6f ...  |........hello...|
  $ shmctl watch --interval 500      (a snapshot per interval: "--- <time>", then ls)
  $ shmctl gc --dry-run
  would remove net/node/in of dead pid 4242: 4 segments
  $ shmctl rm net/node/in
  removed net/node/in: 4 segments)");
  Options o;
  app.add_option("--namespace,-N", o.ns, "namespace (default: $BLOCCS_NAMESPACE, else default)");
  app.add_flag("--json", o.json, "machine-readable output");

  std::string key_arg;
  int interval_ms = 500;
  std::size_t count = 10;
  bool dry_run = false, force = false;
  auto* ls = app.add_subcommand("ls", "one line per port: owner, kind, bound, depth, bytes, "
                                      "parked pushers, pending push_after");
  bool all_namespaces = false;
  ls->add_flag("--all-namespaces,-A", all_namespaces, "every namespace, not only -N's");
  auto* show = app.add_subcommand("show", "everything about one port, with its counters and "
                                          "their rates over --interval");
  show->add_option("key", key_arg, "network/node/in_port")->required();
  show->add_option("--interval", interval_ms, "ms between the two looks (rates)")
      ->check(CLI::Range(1, 60'000));
  auto* peek_cmd = app.add_subcommand("peek", "the next queued messages, without consuming them");
  peek_cmd->add_option("key", key_arg, "network/node/in_port")->required();
  peek_cmd->add_option("-n", count, "how many (default 10)")->check(CLI::Range(1, 100'000));
  auto* gc = app.add_subcommand("gc", "remove the slots and segments of dead owners");
  gc->add_flag("--dry-run", dry_run, "only list what would be removed");
  auto* rm = app.add_subcommand("rm", "remove one port whose owner is dead");
  rm->add_option("key", key_arg, "network/node/in_port")->required();
  rm->add_flag("--force", force, "remove it even if its owner is alive");
  auto* watch = app.add_subcommand("watch", "a live view with rates; one snapshot per interval "
                                            "when not on a terminal");
  watch->add_option("key", key_arg, "only this port: network/node/in_port");
  watch->add_option("--interval", interval_ms, "ms between refreshes (default 1000)")
      ->check(CLI::Range(10, 3'600'000));
  auto* top = app.add_subcommand("top", "a live, sorted view of every port: rates, depth, parked "
                                        "pushers, time in queue; keys to sort and drill in");
  bool top_once = false, top_all = false, top_ascending = false;
  std::string top_sort = "in";
  top->add_flag("--once", top_once, "print one view (two looks --interval apart) and exit");
  top->add_flag("--all-namespaces,-A", top_all, "every namespace, not only -N's");
  top->add_option("--interval", interval_ms, "ms between looks (default 1000)")
      ->check(CLI::Range(10, 3'600'000));
  top->add_option("--sort", top_sort,
                  "column to sort by: key, owner, in, out, depth, parked, p50, p99, max")
      ->check(CLI::IsMember({"key", "owner", "in", "out", "depth", "parked", "p50", "p99", "max"}));
  top->add_flag("--ascending", top_ascending, "smallest first (default: largest first)");
  auto* metrics_cmd = app.add_subcommand(
      "metrics", "serve every port's counters, depth, parked pushers and time-in-queue "
                 "histogram to Prometheus (its text exposition format) over HTTP");
  std::string listen = "127.0.0.1:9464";
  bool metrics_once = false, metrics_all = false;
  metrics_cmd->add_option("--listen", listen,
                          "HOST:PORT to serve GET /metrics on (default 127.0.0.1:9464, loopback "
                          "only; port 0 picks a free one)");
  metrics_cmd->add_flag("--once", metrics_once, "print the exposition once and exit (no server)");
  metrics_cmd->add_flag("--all-namespaces,-A", metrics_all, "every namespace, not only -N's");
  for (auto* sub : {ls, show, peek_cmd, gc, rm, watch, top, metrics_cmd}) sub->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  auto resolved = shm::resolve_namespace(o.ns);
  if (!resolved) return say_error(o, resolved.error(), kUsage);
  o.ns = *resolved;
  std::optional<PortKey> key;
  if (!key_arg.empty()) {
    auto parsed = parse_key(key_arg);
    if (!parsed) return say_error(o, parsed.error(), kUsage);
    key = *parsed;
  }
  if (*ls) return all_namespaces ? cmd_ls_all(o) : cmd_ls(o);
  if (*show) return cmd_show(o, *key, interval_ms);
  if (*peek_cmd) return cmd_peek(o, *key, count);
  if (*gc) return cmd_gc(o, dry_run);
  if (*rm) return cmd_rm(o, *key, force);
  if (*watch) return cmd_watch(o, key, watch->count("--interval") ? interval_ms : 1000);
  if (*metrics_cmd) return cmd_metrics(o, listen, metrics_all, metrics_once);
  if (*top) {
    TopOptions t;
    t.namespaces = {o.ns};
    t.all_namespaces = top_all;
    t.where = top_all ? "all namespaces" : "namespace " + o.ns;
    t.interval = std::chrono::milliseconds(top->count("--interval") ? interval_ms : 1000);
    t.once = top_once;
    t.json = o.json;
    t.sort = *column_named(top_sort);
    t.descending = !top_ascending;
    return run_top(t);
  }
  return kUsage;
}
