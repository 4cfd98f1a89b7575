// SPDX-License-Identifier: Apache-2.0
// bloccs-bench: bloccs beside the physical floor and its peers, every figure measured in one run
// between real processes pinned to different CPUs. Writes results.json, results.md (every
// figure and its ratio) and PNG plots into --out, then prints the targets as PASS or MISS. The
// exit code says whether the run worked, never whether a target was met: this machine is noisy.
//
//   bloccs-bench                      # the full suite, a few minutes
//   bloccs-bench --quick              # seconds: keeps the driver working (CI)
//   bloccs-bench --report results.json --out DIR   # redraw the table and plots of a saved run
#include <sched.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "benchmarks/suite/histogram.hpp"
#include "benchmarks/suite/process.hpp"
#include "benchmarks/suite/report.hpp"
#include "benchmarks/suite/scenarios.hpp"
#include "benchmarks/suite/transport.hpp"

namespace bloccs::bench {
namespace {

struct Options {
  std::string out = "bench-results";
  bool quick = false;
  std::uint64_t round_trips = 100'000;  // per transport and size, over all rounds
  unsigned rounds = 5;
  double seconds = 0.25;                // per streaming measurement
  long work_ns = 5'000;                 // back-pressure: the consumer's work per message
  std::vector<std::string> only;        // transports to run; empty: all
  std::string report;                   // a results.json to redraw instead of measuring
};

struct Run {
  Options options;
  std::string ns;
  int parent_cpu = -1;
  int child_cpu = -1;
  unsigned cpus = 0;  // CPUs the run may use, before it pins itself to one
  std::vector<const Transport*> transports;
  Suite suite;
  unsigned measurement = 0;  // names each measurement's channels uniquely
};

// ---- the machine ------------------------------------------------------------------------------

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

Machine describe_machine(const Run& run, const std::string& command) {
  Machine m;
  m.date = utc_now();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  m.host = host;
  m.cpu_model = cpu_model();
  m.cpus = run.cpus;
  if (run.parent_cpu >= 0) m.pinned = {run.parent_cpu, run.child_cpu};
  utsname u{};
  uname(&u);
  m.kernel = u.release;
#if defined(__clang__)
  m.compiler = "Clang " __clang_version__;
#elif defined(__GNUC__)
  m.compiler = "GCC " __VERSION__;
#endif
  m.build_type = BLOCCS_BUILD_TYPE;
  m.command = command;
  m.quick = run.options.quick;
  return m;
}

// ---- the plan ----------------------------------------------------------------------------------

Figure figure(const Transport& t, const char* test, std::size_t bytes, std::uint32_t pushers,
              std::uint64_t count) {
  Figure f;
  f.transport = std::string(t.name);
  f.test = test;
  f.bytes = static_cast<std::uint32_t>(bytes);
  f.pushers = pushers;
  f.count = count;
  return f;
}

std::string next_name(Run& run, const char* test) {
  return std::string(test) + std::to_string(++run.measurement);
}

// Runs one measurement of about `items` round trips or messages under a watchdog: a transport
// that hangs ends the run (the janitor cleans up) instead of blocking it for ever. The limit
// allows 100 us per item, slower than any transport here, plus two minutes.
// A child that fails (exits non-zero) has printed why; nothing would tell the parent, blocked
// in a receive for messages that will never come, so end the run here. WNOWAIT leaves the child
// for join() to reap; children the parent kills itself (after an error) are not failures.
void on_child_exit(int) {
  siginfo_t si{};
  if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0 &&
      si.si_code == CLD_EXITED && si.si_status != 0) {
    const char m[] = "bloccs-bench: a process of the measurement failed (see above); stopping\n";
    (void)!write(2, m, sizeof m - 1);
    _exit(1);
  }
}

const char* g_measuring = "";  // the transport being measured, for the watchdog's message

void on_watchdog(int) {
  const char head[] = "bloccs-bench: a measurement of ";
  const char tail[] = " took far too long (a hung transport?); stopping\n";
  (void)!write(2, head, sizeof head - 1);
  (void)!write(2, g_measuring, std::strlen(g_measuring));
  (void)!write(2, tail, sizeof tail - 1);
  _exit(1);
}

template <class F>
auto watched(const Transport& t, std::uint64_t items, F&& f) {
  g_measuring = t.name.data();  // a string literal: NUL-terminated
  std::signal(SIGALRM, on_watchdog);
  alarm(static_cast<unsigned>(std::min<std::uint64_t>(120 + items / 10'000, 86'400)));
  auto r = f();
  alarm(0);
  return r;
}

Status run_round_trips(Run& run) {
  const std::vector<std::size_t> sizes = {64, 512, 4096};
  const unsigned rounds = run.options.rounds;
  const std::uint64_t per_round = std::max<std::uint64_t>(run.options.round_trips / rounds, 1);
  const std::uint64_t warmup = run.options.quick ? 200 : 2'000;
  std::map<std::pair<std::string_view, std::size_t>, LatencyHistogram> merged;
  // Transports take turns within each round, so every ratio compares figures taken close
  // together in time: this machine's vCPUs move, and a floor from a minute ago is no floor.
  for (unsigned round = 1; round <= rounds; ++round) {
    for (std::size_t bytes : sizes) {
      std::printf("rtt %4zu B, round %u/%u:", bytes, round, rounds);
      for (const Transport* t : run.transports) {
        if (t->floor && run.child_cpu < 0) continue;  // spinning against a peer on one CPU
        LatencyHistogram h;
        const RoundTripPlan plan{run.ns, next_name(run, "rtt"), bytes, warmup, per_round,
                                 run.child_cpu};
        if (auto st = watched(*t, warmup + per_round, [&] { return measure_round_trips(*t, plan, h); }); !st)
          return Error{st.error().code, std::string(t->name) + " round trips: " + st.error().message};
        std::printf(" %s %llu ns", std::string(t->name).c_str(),
                    static_cast<unsigned long long>(h.percentile(500)));
        std::fflush(stdout);
        merged[{t->name, bytes}].merge(h);
      }
      std::printf("  (p50)\n");
    }
  }
  for (const Transport* t : run.transports)
    for (std::size_t bytes : sizes) {
      auto it = merged.find({t->name, bytes});
      if (it == merged.end()) continue;
      Figure f = figure(*t, "rtt", bytes, 1, it->second.count());
      f.rtt = it->second.summary();
      run.suite.results.push_back(std::move(f));
    }
  return {};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Streams through one transport: a short probe sizes the runs, then `rounds` runs of about
// `seconds` each; the median rate.
struct StreamFigure {
  double msgs_per_s = 0;
  double pusher_cpu = 0;  // fraction of a core, per pusher
  std::uint64_t messages = 0;
};

Result<StreamFigure> stream(Run& run, const Transport& t, std::size_t bytes,
                            std::uint32_t pushers, std::chrono::nanoseconds work) {
  StreamPlan plan{run.ns, "", bytes, pushers, 0, 256, work, run.child_cpu};
  auto once = [&](std::uint64_t total) -> Result<StreamResult> {
    plan.name = next_name(run, "stream");
    plan.per_pusher = std::max<std::uint64_t>(total / pushers, 1);
    return watched(t, total, [&] { return measure_stream(t, plan); });
  };
  const std::uint64_t probe_total = run.options.quick ? 5'000 : 20'000;
  auto probe = once(probe_total);
  if (!probe) return std::move(probe).error();
  if (run.options.quick)
    return StreamFigure{probe->msgs_per_s(), probe->pusher_cpu_seconds / probe->seconds,
                        probe->messages};
  const auto total = static_cast<std::uint64_t>(
      std::clamp(probe->msgs_per_s() * run.options.seconds, 20'000.0, 50'000'000.0));
  std::vector<double> rates, cpu;
  StreamFigure figure;
  for (int r = 0; r < 3; ++r) {
    auto result = once(total);
    if (!result) return std::move(result).error();
    rates.push_back(result->msgs_per_s());
    cpu.push_back(result->pusher_cpu_seconds / result->seconds);
    figure.messages += result->messages;
  }
  figure.msgs_per_s = median(rates);
  figure.pusher_cpu = median(cpu);
  return figure;
}

Status run_streams(Run& run) {
  for (std::size_t bytes : {64u, 4096u}) {
    for (std::uint32_t pushers : {1u, 2u, 4u}) {
      std::printf("throughput %4zu B, %u pusher%s:", bytes, pushers, pushers > 1 ? "s" : "");
      for (const Transport* t : run.transports) {
        if (t->floor || (pushers > 1 && !t->multi_sender)) continue;
        auto f = stream(run, *t, bytes, pushers, std::chrono::nanoseconds(0));
        if (!f) return Error{f.error().code, std::string(t->name) + " streaming: " + f.error().message};
        std::printf(" %s %.2f M/s", std::string(t->name).c_str(), f->msgs_per_s / 1e6);
        std::fflush(stdout);
        Figure fig = figure(*t, "throughput", bytes, pushers, f->messages);
        fig.msgs_per_s = f->msgs_per_s;
        run.suite.results.push_back(std::move(fig));
      }
      std::printf("\n");
    }
  }
  return {};
}

// The consumer's own pace: its work alone, with no transport in the way.
double consumer_alone_rate(std::chrono::nanoseconds work) {
  constexpr int kMessages = 20'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kMessages; ++i) busy_work(work);
  return kMessages / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Status run_back_pressure(Run& run) {
  const std::chrono::nanoseconds work(run.options.work_ns);
  std::printf("back-pressure, 64 B, the consumer works %ld ns per message:", run.options.work_ns);
  for (const Transport* t : run.transports) {
    if (t->floor) continue;
    const std::uint32_t pushers = t->multi_sender ? 2 : 1;
    // Its own pace right before, on the same CPU: a pace from minutes ago is no reference.
    consumer_alone_rate(work);  // warm-up
    const double alone = consumer_alone_rate(work);
    auto f = stream(run, *t, 64, pushers, work);
    if (!f) return Error{f.error().code, std::string(t->name) + " back-pressure: " + f.error().message};
    std::printf(" %s %.0f k/s (alone %.0f k/s) cpu %.0f%%", std::string(t->name).c_str(),
                f->msgs_per_s / 1e3, alone / 1e3, f->pusher_cpu * 100);
    std::fflush(stdout);
    Figure fig = figure(*t, "backpressure", 64, pushers, f->messages);
    fig.msgs_per_s = f->msgs_per_s;
    fig.consumer_alone_msgs_per_s = alone;
    fig.pusher_cpu = f->pusher_cpu;
    run.suite.results.push_back(std::move(fig));
  }
  std::printf("\n");
  return {};
}

// ---- main -------------------------------------------------------------------------------------

int fail(const Error& e);

// Before minutes of measuring: the report must have somewhere to go.
Status check_writable(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || access(dir.c_str(), W_OK) != 0)
    return Error{Errc::permission_denied,
                 "--out " + dir + " cannot be made or written to; give another directory"};
  return {};
}

int fail(const Error& e) {
  std::fprintf(stderr, "bloccs-bench: %s: %s\n", errc_name(e.code), e.message.c_str());
  return 1;
}

int finish(const Suite& suite, const std::string& out) {
  if (auto st = write_report(suite, out); !st) return fail(st.error());
  std::printf("\nwrote %s/results.json, results.md and the plots\n\n", out.c_str());
  std::printf("%s", format_targets(check_targets(suite)).c_str());
  std::printf("%s", format_histogram_cost(suite).c_str());
  return 0;
}

int redraw(const Options& o) {
  std::ifstream in(o.report);
  if (!in) return fail({Errc::not_found, "cannot read " + o.report + "; give a results.json"});
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) return fail({Errc::bad_config, o.report + " is not JSON"});
  auto suite = from_json(j);
  if (!suite) return fail(suite.error());
  return finish(*suite, o.out);
}

}  // namespace
}  // namespace bloccs::bench

int main(int argc, char** argv) {
  using namespace bloccs::bench;
  Options o;
  CLI::App app{"bloccs-bench: bloccs beside the physical floor and its peers, in one run"};
  app.add_option("--out", o.out, "directory for results.json, results.md and the plots")
      ->capture_default_str();
  app.add_flag("--quick", o.quick, "a few seconds, few samples: keeps the driver working (CI)");
  app.add_option("--round-trips", o.round_trips, "timed round trips per transport and size")
      ->capture_default_str()->check(CLI::Range(1, 100'000'000));
  app.add_option("--rounds", o.rounds, "rounds the transports take turns in")
      ->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--seconds", o.seconds, "length of each streaming measurement")
      ->capture_default_str()->check(CLI::Range(0.01, 60.0));
  app.add_option("--work-ns", o.work_ns, "back-pressure: the consumer's work per message")
      ->capture_default_str()->check(CLI::Range(100L, 1'000'000L));
  std::string names;
  for (const Transport& t : all_transports()) names += (names.empty() ? "" : ", ") + std::string(t.name);
  app.add_option("--only", o.only, "run only these transports, comma-separated: " + names)
      ->delimiter(',');
  app.add_option("--report", o.report, "redraw the table and plots of a saved results.json");
  CLI11_PARSE(app, argc, argv);
  if (!o.report.empty()) return redraw(o);
  if (o.quick) {
    o.round_trips = std::min<std::uint64_t>(o.round_trips, 2'000);
    o.rounds = 1;
  }

  for (const std::string& name : o.only)
    if (!find_transport(name))
      return fail({bloccs::Errc::bad_config, "--only: no transport named '" + name +
                                                 "'; see --help for the names"});
  Run run;
  run.options = o;
  for (const Transport& t : all_transports())
    if (o.only.empty() || std::find(o.only.begin(), o.only.end(), t.name) != o.only.end())
      run.transports.push_back(find_transport(t.name));
  if (run.transports.empty()) return fail({bloccs::Errc::bad_config, "--only names no transport"});
  if (auto st = check_writable(o.out); !st) return fail(st.error());
  run.ns = "bench-" + std::to_string(getpid());
  start_janitor(run.ns);  // whatever happens from here, nothing of this run stays in /dev/shm
  struct sigaction child_exit{};
  child_exit.sa_handler = on_child_exit;  // no SA_RESTART: a blocked receive sees EINTR
  sigaction(SIGCHLD, &child_exit, nullptr);

  const std::vector<int> cpus = usable_cpus();
  run.cpus = static_cast<unsigned>(cpus.size());
  if (cpus.size() >= 2 && pin_to_cpu(cpus[0])) {
    run.parent_cpu = cpus[0];
    run.child_cpu = cpus[1];
  } else {
    std::fprintf(stderr, "bloccs-bench: one CPU (or pinning refused): the floors are skipped\n");
  }
  std::string command;
  for (int i = 0; i < argc; ++i) command += (i ? " " : "") + std::string(argv[i]);
  run.suite.machine = describe_machine(run, command);
  std::printf("bloccs-bench: %s, %u CPUs (sides pinned to %d and %d), namespace %s\n",
              run.suite.machine.cpu_model.c_str(), run.suite.machine.cpus, run.parent_cpu,
              run.child_cpu, run.ns.c_str());

  for (auto part : {run_round_trips, run_streams, run_back_pressure})
    if (auto st = part(run); !st) return fail(st.error());
  return finish(run.suite, o.out);
}
