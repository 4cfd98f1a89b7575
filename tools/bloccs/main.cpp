// SPDX-License-Identifier: Apache-2.0
// bloccs: runs pipelines. `bloccs run pipeline.toml` starts every node of the pipeline as a
// process, supervises them, shows them live, and stops them from the sources down on SIGINT
// or SIGTERM (or when every source has finished). `bloccs check pipeline.toml` only reads it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include <CLI/CLI.hpp>

#include "bloccs/version.hpp"
#include "bloccs/pipeline.hpp"
#include "shm/names.hpp"
#include "tools/bloccs/bridges.hpp"
#include "tools/bloccs/hosts_ledger.hpp"
#include "tools/bloccs/placement.hpp"
#include "tools/bloccs/wire_watch.hpp"
#include "tools/bloccs/supervisor.hpp"
#include "tools/metrics/exposition.hpp"
#include "tools/metrics/server.hpp"

namespace {

using namespace bloccs;

// One convention with shmctl: 0 ok, 1 failed, 2 usage (a bad command line or pipeline file).
enum Exit { kOk = 0, kFailed = 1, kBadPipeline = 2, kUsage = 2 };

// Where bare program names are looked for: --program-dir, $BLOCCS_PROGRAM_PATH (':'-separated),
// then the directory of this executable (an installed bloccs finds installed nodes), then $PATH.
std::vector<std::filesystem::path> program_dirs(const std::vector<std::string>& given) {
  std::vector<std::filesystem::path> dirs(given.begin(), given.end());
  if (const char* env = std::getenv("BLOCCS_PROGRAM_PATH")) {
    std::string_view rest(env);
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      if (colon != 0) dirs.emplace_back(rest.substr(0, colon));
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(self.parent_path());
  return dirs;
}

// The nodes' counters as the supervisor last saw them, for the metrics endpoint's thread.
class NodeBoard {
 public:
  void set(std::vector<metrics::NodeSample> nodes, std::vector<metrics::WireSample> wires) {
    std::lock_guard lock(mutex_);
    nodes_ = std::move(nodes);
    wires_ = std::move(wires);
  }
  void add_to(metrics::Exposition& e) const {
    std::lock_guard lock(mutex_);
    e.add_nodes(nodes_);
    e.add_wires(wires_);
  }

 private:
  mutable std::mutex mutex_;
  std::vector<metrics::NodeSample> nodes_;
  std::vector<metrics::WireSample> wires_;
};

std::vector<metrics::WireSample> wire_samples(const launcher::Snapshot& s, const std::string& ns,
                                              const std::string& network) {
  std::vector<metrics::WireSample> out;
  for (const launcher::WireView& w : s.wires) {
    out.push_back({.ns = ns,
                   .network = network,
                   .direction = w.direction,
                   .node = w.target.node_id,
                   .port = w.target.in_port,
                   .engine_up = w.known,
                   .stored = w.stored,
                   .bound = static_cast<std::uint64_t>(w.bound),
                   .in_flight = w.in_flight,
                   .redelivered = w.redelivered});
  }
  return out;
}

std::vector<metrics::NodeSample> node_samples(const launcher::Snapshot& s, const std::string& ns,
                                              const std::string& network) {
  std::vector<metrics::NodeSample> out;
  for (const launcher::NodeView& v : s.nodes) {
    const std::string_view state = v.state;
    out.push_back({ns, network, v.spec->id,
                   state == "starting" || state == "running" || state == "draining" ||
                       state == "stopping",
                   v.restarts, v.counters});
  }
  return out;
}

// " on 2 hosts (a: gen, transform; b: sink), 1 wire between hosts", or "" without hosts.
std::string placement_text(const PipelineSpec& p) {
  if (p.hosts.empty()) return "";
  std::string text = " on " + std::to_string(p.hosts.size()) +
                     (p.hosts.size() == 1 ? " host (" : " hosts (");
  for (std::size_t h = 0; h < p.hosts.size(); ++h) {
    text += (h ? "; " : "") + p.hosts[h].name + ":";
    bool any = false;
    for (const NodeSpec& n : p.nodes)
      if (n.host == p.hosts[h].name) {
        text += (any ? ", " : " ") + n.id;
        any = true;
      }
    if (!any) text += " no nodes";
  }
  std::size_t crossing = 0;
  for (const NodeSpec& n : p.nodes)
    for (const OutputSpec& o : n.outputs)
      for (const Target& t : o.targets)
        if (p.node(t.node)->host != n.host) ++crossing;
  return text + "), " + std::to_string(crossing) + (crossing == 1 ? " wire" : " wires") +
         " between hosts";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bloccs: run pipelines of processes connected by shared-memory ports"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("bloccs ") + bloccs::version(),
                       "print the version (the library's) and exit");
  std::string file;
  std::vector<std::string> dirs;
  launcher::RunOptions o;
  int status_ms = 1000, drain_ms = 30'000;

  auto* run = app.add_subcommand("run", "start the pipeline, supervise it, stop it cleanly");
  run->add_option("pipeline", file, "the pipeline file (TOML)")->required();
  run->add_option("--namespace", o.ns,
                  "namespace of the run's ports (default: $BLOCCS_NAMESPACE, else <network>-<pid>)");
  run->add_option("--program-dir", dirs, "where to look for node programs first (repeatable)");
  // The last one given counts: scripts/demo.sh passes one, and its caller may pass another.
  run->add_option("--status-interval", status_ms, "ms between live status lines; 0: none")
      ->check(CLI::NonNegativeNumber)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  run->add_option("--drain-limit", drain_ms,
                  "ms the whole stop may take (the nodes drain one after another within it); what "
                  "is still running 2 s later is killed")
      ->check(CLI::PositiveNumber);
  run->add_option("--dead-letters", o.dead_letter_file, "append every dead letter to this file (JSON lines)");
  run->add_option("--summary-json", o.summary_json, "write the final counts to this file");
  run->add_flag("--quiet", o.quiet, "print errors only");
  std::string host;
  run->add_option("--host", host,
                  "run the nodes the file places on this host (a file with [hosts]), with the "
                  "bridges of their wires to and from other hosts");
  std::string metrics_listen;
  run->add_option("--metrics", metrics_listen,
                  "serve the ports' and nodes' metrics to Prometheus at HOST:PORT/metrics while "
                  "the run lasts (e.g. 127.0.0.1:9464; port 0 picks a free one)");

  // The bridges of a placed pipeline's wires between hosts, run by the launcher as nodes
  // (tools/bloccs/bridges.hpp); not for people: no help group.
  auto* bridge = app.add_subcommand("bridge", "run a bridge (the launcher does)")->group("");
  std::string bridge_direction, bridge_host;
  bridge->add_option("direction", bridge_direction, "out or in")
      ->required()
      ->check(CLI::IsMember({"out", "in"}));
  bridge->add_option("--host", bridge_host, "the host whose part it belongs to")->required();
  auto* sum = app.add_subcommand(
      "ledger", "sum the ledgers of a placed pipeline's hosts from their runs' --summary-json files");
  std::vector<std::string> summaries;
  bool sum_json = false;
  sum->add_option("summaries", summaries, "one file per host's run (a host run twice: both)")
      ->required();
  sum->add_flag("--json", sum_json, "print the sums as JSON");
  auto* check = app.add_subcommand("check", "read the pipeline file and report what is wrong");
  check->add_option("pipeline", file, "the pipeline file (TOML)")->required();
  check->add_option("--program-dir", dirs, "where to look for node programs first (repeatable)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {  // --help and --version are "errors" that exit 0
    const int rc = app.exit(e);
    return rc == 0 ? kOk : kUsage;
  }

  if (*bridge) return launcher::run_bridge(bridge_direction == "out", bridge_host);
  if (*sum) {
    auto l = launcher::sum_hosts({summaries.begin(), summaries.end()});
    if (!l) {
      std::fprintf(stderr, "bloccs: %s\n", l.error().message.c_str());
      return kUsage;
    }
    std::fputs((sum_json ? launcher::render_json(*l) : launcher::render(*l)).c_str(), stdout);
    return !l->conserved || l->adds_up() ? kOk : kFailed;
  }
  auto pipeline = load_pipeline(file, {.program_dirs = program_dirs(dirs), .check_programs = true});
  if (!pipeline) {
    std::fprintf(stderr, "bloccs: %s\n", pipeline.error().message.c_str());
    return kBadPipeline;
  }
  if (*check) {
    std::printf("%s: network %s, %zu nodes%s: ok\n", file.c_str(), pipeline->network.c_str(),
                pipeline->nodes.size(), placement_text(*pipeline).c_str());
    return kOk;
  }
  // Before the first thread starts (the wire watch, the metrics server): see the function.
  launcher::block_launcher_signals();
  std::unique_ptr<launcher::WireWatch> wires;
  if (!pipeline->hosts.empty()) {  // placed: this host's part, with its bridges
    if (host.empty()) {
      std::fprintf(stderr, "bloccs: %s places its nodes%s; say which host this is: --host NAME\n",
                   file.c_str(), placement_text(*pipeline).c_str());
      return kUsage;
    }
    auto part = launcher::host_part(*pipeline, host, "/proc/self/exe");
    if (!part) {
      std::fprintf(stderr, "bloccs: %s\n", part.error().message.c_str());
      return kUsage;
    }
    // What the engine knows of this host's wires, for the live status and the summary.
    if (!part->bridges.empty()) {
      wires = std::make_unique<launcher::WireWatch>(*part->host, part->bridges);
      o.wires = [&wires](bool fresh) { return fresh ? wires->look_now() : wires->views(); };
    }
    pipeline.value() = std::move(part->spec);
  } else if (!host.empty()) {
    std::fprintf(stderr, "bloccs: --host %s, but %s places no nodes on hosts; leave --host out\n",
                 host.c_str(), file.c_str());
    return kUsage;
  }
  if (o.ns.empty()) {
    const char* env = std::getenv("BLOCCS_NAMESPACE");
    o.ns = env && *env ? env : pipeline->network + "-" + std::to_string(getpid());
  }
  if (auto ns = shm::resolve_namespace(o.ns); !ns) {
    std::fprintf(stderr, "bloccs: %s\n", ns.error().message.c_str());
    return kBadPipeline;
  }
  o.status_interval = std::chrono::milliseconds(status_ms);
  o.drain_limit = std::chrono::milliseconds(drain_ms);
  // The metrics endpoint serves from before the first node starts until the run's end.
  NodeBoard board;
  std::unique_ptr<metrics::MetricsServer> server;
  if (!metrics_listen.empty()) {
    auto where = metrics::parse_listen(metrics_listen);
    if (!where) {
      std::fprintf(stderr, "bloccs: %s\n", where.error().message.c_str());
      return kUsage;
    }
    auto started = metrics::MetricsServer::start(*where, [&board, ns = o.ns] {
      metrics::Exposition e;
      e.add_ports(shmctl::look_at({ns}));
      board.add_to(e);
      return e.text();
    });
    if (!started) {
      std::fprintf(stderr, "bloccs: %s\n", started.error().message.c_str());
      return started.error().code == Errc::bad_config ? kUsage : kFailed;
    }
    server = std::move(started).value();
    if (!o.quiet) std::fprintf(stderr, "bloccs: metrics at %s\n", server->url().c_str());
    o.observer = [&board, ns = o.ns, network = pipeline->network](const launcher::Snapshot& s) {
      board.set(node_samples(s, ns, network), wire_samples(s, ns, network));
    };
  }
  return launcher::Supervisor(std::move(pipeline).value(), o).run() == 0 ? kOk : kFailed;
}
