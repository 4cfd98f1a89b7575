#include "benchmarks/suite/report.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string_view>

namespace bloccs::bench {
namespace {

using nlohmann::json;

// Rows and lines appear in this order: the floors, bloccs, then the peers.
constexpr std::array<std::string_view, 9> kOrder = {
    "floor-spin", "floor-futex", "bloccs-spsc", "bloccs-mpsc", "bloccs-spsc-parked",
    "boost-mq",   "posix-mq",    "uds",         "pipe"};
constexpr std::array<std::string_view, 4> kPeers = {"boost-mq", "posix-mq", "uds", "pipe"};
constexpr std::uint32_t kTargetBytes = 64;

std::size_t rank_of(std::string_view transport) {
  return static_cast<std::size_t>(std::find(kOrder.begin(), kOrder.end(), transport) -
                                  kOrder.begin());
}

// The suite's figures of one test, in report order.
std::vector<const Figure*> figures(const Suite& s, std::string_view test) {
  std::vector<const Figure*> out;
  for (const Figure& f : s.results)
    if (f.test == test) out.push_back(&f);
  std::stable_sort(out.begin(), out.end(), [](const Figure* a, const Figure* b) {
    return std::tuple(rank_of(a->transport), a->bytes, a->pushers) <
           std::tuple(rank_of(b->transport), b->bytes, b->pushers);
  });
  return out;
}

const Figure* find(const Suite& s, std::string_view transport, std::string_view test,
                   std::uint32_t bytes, std::uint32_t pushers = 1) {
  for (const Figure& f : s.results)
    if (f.transport == transport && f.test == test && f.bytes == bytes && f.pushers == pushers)
      return &f;
  return nullptr;
}

// The peer with the best (by `better`) value of `value` among the measured ones.
const Figure* best_peer(const Suite& s, std::string_view test, std::uint32_t bytes,
                        std::uint32_t pushers, const std::function<double(const Figure&)>& value,
                        bool lower_is_better) {
  const Figure* best = nullptr;
  for (std::string_view peer : kPeers) {
    const Figure* f = find(s, peer, test, bytes, pushers);
    if (!f || std::isnan(value(*f))) continue;
    if (!best || (lower_is_better ? value(*f) < value(*best) : value(*f) > value(*best))) best = f;
  }
  return best;
}

double p50(const Figure& f) { return f.rtt ? double(f.rtt->p50) : NAN; }
double p99(const Figure& f) { return f.rtt ? double(f.rtt->p99) : NAN; }
double rate(const Figure& f) { return f.msgs_per_s ? *f.msgs_per_s : NAN; }

std::string fixed(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

std::string ns_text(std::uint64_t ns) {
  if (ns < 10'000) return std::to_string(ns) + " ns";
  if (ns < 10'000'000) return fixed(double(ns) / 1e3, 1) + " µs";
  return fixed(double(ns) / 1e6, 1) + " ms";
}

std::string rate_text(double per_s) {
  if (per_s >= 1e6) return fixed(per_s / 1e6, 2) + " M/s";
  return fixed(per_s / 1e3, 1) + " k/s";
}

std::string ratio_text(double r) { return std::isnan(r) ? "—" : fixed(r, 2) + "x"; }

// ---- JSON -------------------------------------------------------------------------------------

json machine_json(const Machine& m) {
  return {{"date", m.date},         {"host", m.host},       {"cpu_model", m.cpu_model},
          {"cpus", m.cpus},         {"pinned", m.pinned},   {"kernel", m.kernel},
          {"compiler", m.compiler}, {"build_type", m.build_type}, {"command", m.command},
          {"quick", m.quick}};
}

json figure_json(const Figure& f) {
  json j = {{"transport", f.transport}, {"test", f.test},   {"bytes", f.bytes},
            {"pushers", f.pushers},     {"count", f.count}};
  if (f.rtt) {
    j["p50_ns"] = f.rtt->p50;
    j["p90_ns"] = f.rtt->p90;
    j["p99_ns"] = f.rtt->p99;
    j["p999_ns"] = f.rtt->p999;
    j["max_ns"] = f.rtt->max;
  }
  if (f.msgs_per_s) {
    j["msgs_per_s"] = *f.msgs_per_s;
    j["bytes_per_s"] = *f.msgs_per_s * f.bytes;
  }
  if (f.consumer_alone_msgs_per_s) j["consumer_alone_msgs_per_s"] = *f.consumer_alone_msgs_per_s;
  if (f.pusher_cpu) j["pusher_cpu"] = *f.pusher_cpu;
  return j;
}

// Reads field `key` of `j` into `out`; an error naming `where` and the key otherwise.
template <class T>
Status read(const json& j, const char* key, T& out, const std::string& where, bool required = true) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return {};
    return Error{Errc::bad_config, where + ": field \"" + key + "\" is missing"};
  }
  try {
    out = it->get<T>();
  } catch (const json::exception&) {
    return Error{Errc::bad_config, where + ": field \"" + key + "\" has the wrong type (" +
                                       std::string(it->type_name()) + ")"};
  }
  return {};
}

template <class T>
Status read_optional(const json& j, const char* key, std::optional<T>& out, const std::string& where) {
  if (!j.contains(key)) return {};
  T value{};
  if (auto st = read(j, key, value, where); !st) return st;
  out = value;
  return {};
}

Result<Figure> figure_from(const json& j, const std::string& where) {
  if (!j.is_object()) return Error{Errc::bad_config, where + " is not an object"};
  Figure f;
  for (auto st : {read(j, "transport", f.transport, where), read(j, "test", f.test, where),
                  read(j, "bytes", f.bytes, where), read(j, "pushers", f.pushers, where),
                  read(j, "count", f.count, where, false),
                  read_optional(j, "msgs_per_s", f.msgs_per_s, where),
                  read_optional(j, "consumer_alone_msgs_per_s", f.consumer_alone_msgs_per_s, where),
                  read_optional(j, "pusher_cpu", f.pusher_cpu, where)})
    if (!st) return std::move(st).error();
  if (j.contains("p50_ns")) {
    Percentiles p;
    for (auto st : {read(j, "p50_ns", p.p50, where), read(j, "p90_ns", p.p90, where),
                    read(j, "p99_ns", p.p99, where), read(j, "p999_ns", p.p999, where),
                    read(j, "max_ns", p.max, where)})
      if (!st) return std::move(st).error();
    f.rtt = p;
  }
  return f;
}

// ---- targets ----------------------------------------------------------------------------------

// bloccs `transport` against `reference` (a floor): measured / reference <= limit.
TargetCheck against_floor(const Suite& s, std::string_view transport, std::string_view floor,
                          const char* pct, double (*value)(const Figure&), double limit) {
  TargetCheck c;
  c.name = std::string(transport) + " rtt " + pct + " vs " + std::string(floor);
  c.rule = "<= " + fixed(limit, 2) + " x " + std::string(floor) + " " + pct;
  const Figure* b = find(s, transport, "rtt", kTargetBytes);
  const Figure* f = find(s, floor, "rtt", kTargetBytes);
  if (!b || !f) {
    c.detail = "not measured: " + std::string(!b ? transport : floor) + " rtt 64 B";
    return c;
  }
  c.ratio = value(*b) / value(*f);
  c.met = *c.ratio <= limit;
  c.detail = ns_text(static_cast<std::uint64_t>(value(*b))) + " vs " +
             ns_text(static_cast<std::uint64_t>(value(*f)));
  return c;
}

// bloccs `transport` against the best peer; `ratio` is bloccs' advantage (higher is better):
// met when ratio >= limit.
TargetCheck against_best_peer(const Suite& s, std::string_view transport, std::string_view test,
                              const char* what, double (*value)(const Figure&), bool lower_is_better,
                              double limit) {
  TargetCheck c;
  c.name = std::string(transport) + " " + std::string(test) + " " + what + " vs the best peer";
  c.rule = limit == 1 ? std::string("no worse than the best peer")
                      : "at least " + fixed(limit, 0) + " x better than the best peer";
  const Figure* b = find(s, transport, test, kTargetBytes);
  const Figure* p = best_peer(s, test, kTargetBytes, 1, value, lower_is_better);
  if (!b || !p) {
    c.detail = "not measured: " + (b ? std::string("any peer") : std::string(transport)) + " " +
               std::string(test) + " 64 B";
    return c;
  }
  c.ratio = lower_is_better ? value(*p) / value(*b) : value(*b) / value(*p);
  c.met = *c.ratio >= limit;
  auto shown = [&](const Figure& f) {
    return test == "rtt" ? ns_text(static_cast<std::uint64_t>(value(f))) : rate_text(value(f));
  };
  c.detail = shown(*b) + " vs " + p->transport + " " + shown(*p);
  return c;
}

// ---- Markdown ---------------------------------------------------------------------------------

std::string machine_lines(const Machine& m) {
  std::ostringstream out;
  out << "Measured " << m.date << " on " << m.cpu_model << ", " << m.cpus << " CPUs";
  if (m.pinned.size() == 2)
    out << " (receiver on CPU " << m.pinned[0] << ", the other side on CPU " << m.pinned[1] << ")";
  out << ", Linux " << m.kernel << ", " << m.compiler << ", " << m.build_type << " build.\n"
      << "Command: `" << m.command << "`\n";
  if (m.quick) out << "\n**A quick run: few samples, the figures are only indicative.**\n";
  return out.str();
}

std::string rtt_table(const Suite& s) {
  std::ostringstream out;
  out << "| transport | bytes | p50 | p90 | p99 | p99.9 | max | p50 / floor-spin | p99 / floor-spin "
         "|\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const Figure* f : figures(s, "rtt")) {
    if (!f->rtt) continue;
    const Figure* floor = find(s, "floor-spin", "rtt", f->bytes);
    const double r50 = floor && floor->rtt ? p50(*f) / p50(*floor) : NAN;
    const double r99 = floor && floor->rtt ? p99(*f) / p99(*floor) : NAN;
    out << "| " << f->transport << " | " << f->bytes << " | " << ns_text(f->rtt->p50) << " | "
        << ns_text(f->rtt->p90) << " | " << ns_text(f->rtt->p99) << " | " << ns_text(f->rtt->p999)
        << " | " << ns_text(f->rtt->max) << " | " << ratio_text(r50) << " | " << ratio_text(r99)
        << " |\n";
  }
  return out.str();
}

std::string throughput_table(const Suite& s) {
  std::ostringstream out;
  out << "| transport | bytes | pushers | msgs/s | MB/s | vs the best peer |\n"
         "|---|--:|--:|--:|--:|--:|\n";
  for (const Figure* f : figures(s, "throughput")) {
    if (!f->msgs_per_s) continue;
    const Figure* best = best_peer(s, "throughput", f->bytes, f->pushers, rate, false);
    const double r = best ? *f->msgs_per_s / rate(*best) : NAN;
    out << "| " << f->transport << " | " << f->bytes << " | " << f->pushers << " | "
        << rate_text(*f->msgs_per_s) << " | " << fixed(*f->msgs_per_s * f->bytes / 1e6, 1)
        << " | " << ratio_text(r) << " |\n";
  }
  return out.str();
}

std::string backpressure_table(const Suite& s) {
  std::ostringstream out;
  out << "| transport | pushers | msgs/s | consumer alone | each pusher's CPU |\n"
         "|---|--:|--:|--:|--:|\n";
  for (const Figure* f : figures(s, "backpressure")) {
    if (!f->msgs_per_s) continue;
    out << "| " << f->transport << " | " << f->pushers << " | " << rate_text(*f->msgs_per_s)
        << " | " << (f->consumer_alone_msgs_per_s ? rate_text(*f->consumer_alone_msgs_per_s) : "—")
        << " | " << (f->pusher_cpu ? fixed(*f->pusher_cpu * 100, 1) + " %" : "—") << " |\n";
  }
  return out.str();
}

std::string targets_table(const std::vector<TargetCheck>& checks) {
  std::ostringstream out;
  out << "| target | rule | measured | result | figures |\n|---|---|--:|---|---|\n";
  for (const TargetCheck& c : checks)
    out << "| " << c.name << " | " << c.rule << " | "
        << (c.ratio ? fixed(*c.ratio, 2) + "x" : std::string("—")) << " | "
        << (c.met ? "PASS" : "**MISS**") << " | " << c.detail << " |\n";
  return out.str();
}

// ---- gnuplot ----------------------------------------------------------------------------------

// The transports measured in `test`, in report order.
std::vector<std::string> transports_in(const Suite& s, std::string_view test) {
  std::vector<std::string> names;
  for (const Figure* f : figures(s, test))
    if (std::find(names.begin(), names.end(), f->transport) == names.end())
      names.push_back(f->transport);
  return names;
}

std::string style_of(std::string_view transport) {
  if (transport.rfind("floor", 0) == 0) return "dt 2 lw 2";
  if (transport.rfind("bloccs", 0) == 0) return "dt 1 lw 3";
  return "dt 1 lw 1.5";
}

// One line per transport over `xs`, from a datablock whose first column is the x label.
std::string plot_lines(const std::string& block, const std::vector<std::string>& names,
                       const char* x_using) {
  std::ostringstream out;
  out << "plot ";
  for (std::size_t i = 0; i < names.size(); ++i)
    out << (i ? ", \\\n     " : "") << block << " using " << x_using << ":" << i + 2
        << (i == 0 ? ":xtic(1)" : "") << " with linespoints " << style_of(names[i]) << " title \""
        << names[i] << "\"";
  return out.str() + "\n";
}

std::string rtt_plot(const Suite& s) {
  const auto names = transports_in(s, "rtt");
  if (names.empty()) return {};
  std::ostringstream out;
  std::vector<std::uint32_t> sizes;
  for (const Figure* f : figures(s, "rtt"))
    if (std::find(sizes.begin(), sizes.end(), f->bytes) == sizes.end()) sizes.push_back(f->bytes);
  std::sort(sizes.begin(), sizes.end());
  for (std::uint32_t bytes : sizes) {
    out << "$rtt" << bytes << " << EOD\n";
    const char* labels[] = {"p50", "p90", "p99", "p99.9", "max"};
    for (int p = 0; p < 5; ++p) {
      out << labels[p];
      for (const std::string& t : names) {
        const Figure* f = find(s, t, "rtt", bytes);
        if (!f || !f->rtt) {
          out << " -";
          continue;
        }
        const std::uint64_t v[] = {f->rtt->p50, f->rtt->p90, f->rtt->p99, f->rtt->p999, f->rtt->max};
        out << " " << v[p];
      }
      out << "\n";
    }
    out << "EOD\n";
  }
  out << "set terminal pngcairo size 1500,560 font \",10\"\nset output \"rtt.png\"\n"
      << "set multiplot layout 1," << sizes.size()
      << " title \"Round-trip time between two processes (log scale; lower is better)\"\n"
      << "set logscale y\nset format y \"%.0s%cs\"\nset ylabel \"round trip\"\n"
      << "set grid ytics mytics\nset key top left font \",9\"\nset xrange [-0.3:4.3]\n";
  for (std::uint32_t bytes : sizes) {
    out << "set title \"" << bytes << "-byte messages\"\n"
        << "set yrange [*:*]\n"
        // ns -> seconds for the "%.0s%c" format, which prints engineering prefixes.
        << plot_lines("$rtt" + std::to_string(bytes), names, "0");
    // using 0:(column*1e-9) is needed for the prefix format; rewrite the columns.
  }
  out << "unset multiplot\n";
  std::string text = out.str();
  // Scale every plotted column to seconds: "using 0:N" -> "using 0:($N*1e-9)".
  std::string scaled;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t at = text.find("using 0:", i);
    if (at == std::string::npos) {
      scaled += text.substr(i);
      break;
    }
    scaled += text.substr(i, at - i) + "using 0:";
    std::size_t j = at + 8;
    std::string column;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) column += text[j++];
    scaled += "($" + column + "*1e-9)";
    i = j;
  }
  return scaled;
}

std::string throughput_plot(const Suite& s) {
  const auto names = transports_in(s, "throughput");
  if (names.empty()) return {};
  std::ostringstream out;
  const std::uint32_t sizes[] = {64, 4096};
  for (std::uint32_t bytes : sizes) {
    out << "$tp" << bytes << " << EOD\n";
    for (std::uint32_t pushers : {1u, 2u, 4u}) {
      out << pushers;
      for (const std::string& t : names) {
        const Figure* f = find(s, t, "throughput", bytes, pushers);
        out << " " << (f && f->msgs_per_s ? fixed(*f->msgs_per_s, 0) : "-");
      }
      out << "\n";
    }
    out << "EOD\n";
  }
  out << "set terminal pngcairo size 1300,560 font \",10\"\nset output \"throughput.png\"\n"
      << "set multiplot layout 1,2 title \"One-way streaming throughput (log scale; higher is "
         "better)\"\n"
      << "set logscale y\nset format y \"%.0s%c\"\nset ylabel \"messages per second\"\n"
      << "set xlabel \"pusher processes\"\nset grid ytics mytics\nset key bottom left font \",9\"\n"
      << "set xrange [-0.3:2.3]\n";
  for (std::uint32_t bytes : sizes)
    out << "set title \"" << bytes << "-byte messages\"\n"
        << plot_lines("$tp" + std::to_string(bytes), names, "0");
  out << "unset multiplot\n";
  return out.str();
}

std::string backpressure_plot(const Suite& s) {
  const auto rows = figures(s, "backpressure");
  if (rows.empty()) return {};
  std::ostringstream out;
  out << "$bp << EOD\n";
  for (const Figure* f : rows)
    out << "\"" << f->transport << " (" << f->pushers << ")\" "
        << fixed(f->msgs_per_s.value_or(NAN) / 1e3, 1) << " "
        << fixed(f->pusher_cpu.value_or(NAN) * 100, 1) << "\n";
  out << "EOD\n"
      << "set terminal pngcairo size 1300,500 font \",10\"\nset output \"backpressure.png\"\n"
      << "set multiplot layout 1,2 title \"Back-pressure: a consumer slower than its pushers "
         "(pusher processes in brackets)\"\n"
      << "set style data histograms\nset style fill solid 0.7 border -1\nset boxwidth 0.8\n"
      << "set xtics rotate by -30 font \",9\"\nset grid ytics\nunset key\nset yrange [0:*]\n"
      << "set title \"throughput (all should match the consumer's pace)\"\n"
      << "set ylabel \"thousand messages per second\"\nplot $bp using 2:xtic(1) lc rgb \"#4477aa\"\n"
      << "set title \"CPU each waiting pusher burns (lower is better)\"\n"
      << "set ylabel \"% of a core\"\nplot $bp using 3:xtic(1) lc rgb \"#cc6677\"\n"
      << "unset multiplot\n";
  return out.str();
}

Status write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return Error{Errc::system_error, "cannot write " + path.string()};
  return {};
}

// Runs `gnuplot plots.gp` in `dir`.
Status run_gnuplot(const std::string& dir) {
  const pid_t pid = fork();
  if (pid < 0) return Error{Errc::system_error, std::string("fork for gnuplot: ") + std::strerror(errno)};
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(126);
    execlp("gnuplot", "gnuplot", "plots.gp", static_cast<char*>(nullptr));
    _exit(errno == ENOENT ? 127 : 126);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    std::fprintf(stderr, "bloccs-bench: gnuplot not found, no plots drawn: install gnuplot-nox, "
                         "then: bloccs-bench --report %s/results.json --out %s\n",
                 dir.c_str(), dir.c_str());
    return {};
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return Error{Errc::system_error, "gnuplot failed on " + dir + "/plots.gp (see its message above)"};
  return {};
}

}  // namespace

json to_json(const Suite& suite) {
  json results = json::array();
  for (const Figure& f : suite.results) results.push_back(figure_json(f));
  return {{"machine", machine_json(suite.machine)}, {"results", results}};
}

Result<Suite> from_json(const json& j) {
  if (!j.is_object() || !j.contains("machine") || !j.contains("results") ||
      !j["results"].is_array())
    return Error{Errc::bad_config, "not a bloccs-bench results.json: it needs \"machine\" and a "
                                   "\"results\" array"};
  Suite s;
  const json& m = j["machine"];
  const std::string where = "machine";
  for (auto st : {read(m, "date", s.machine.date, where, false),
                  read(m, "host", s.machine.host, where, false),
                  read(m, "cpu_model", s.machine.cpu_model, where, false),
                  read(m, "cpus", s.machine.cpus, where, false),
                  read(m, "pinned", s.machine.pinned, where, false),
                  read(m, "kernel", s.machine.kernel, where, false),
                  read(m, "compiler", s.machine.compiler, where, false),
                  read(m, "build_type", s.machine.build_type, where, false),
                  read(m, "command", s.machine.command, where, false),
                  read(m, "quick", s.machine.quick, where, false)})
    if (!st) return std::move(st).error();
  for (std::size_t i = 0; i < j["results"].size(); ++i) {
    auto f = figure_from(j["results"][i], "results[" + std::to_string(i) + "]");
    if (!f) return std::move(f).error();
    s.results.push_back(std::move(f).value());
  }
  return s;
}

std::vector<TargetCheck> check_targets(const Suite& s) {
  return {
      against_floor(s, "bloccs-spsc", "floor-spin", "p50", p50, 1.5),
      against_floor(s, "bloccs-spsc", "floor-spin", "p99", p99, 2.0),
      against_floor(s, "bloccs-spsc-parked", "floor-futex", "p50", p50, 1.25),
      against_floor(s, "bloccs-mpsc", "floor-spin", "p50", p50, 2.0),
      against_best_peer(s, "bloccs-spsc", "rtt", "p50", p50, true, 100),
      against_best_peer(s, "bloccs-mpsc", "rtt", "p50", p50, true, 100),
      against_best_peer(s, "bloccs-spsc-parked", "rtt", "p50", p50, true, 1),
      against_best_peer(s, "bloccs-spsc-parked", "rtt", "p99", p99, true, 1),
      against_best_peer(s, "bloccs-spsc", "throughput", "msgs/s", rate, false, 10),
  };
}

std::string format_targets(const std::vector<TargetCheck>& checks) {
  std::string out = "Targets (64-byte messages, ratios within this run):\n";
  for (const TargetCheck& c : checks) {
    char line[512];
    std::snprintf(line, sizeof line, "  %s  %-7s %-46s %s (%s)\n", c.met ? "PASS" : "MISS",
                  c.ratio ? (fixed(*c.ratio, 2) + "x").c_str() : "-", c.name.c_str(),
                  c.rule.c_str(), c.detail.c_str());
    out += line;
  }
  return out;
}

std::string markdown(const Suite& s, const std::vector<TargetCheck>& checks) {
  std::ostringstream out;
  out << "# bloccs-bench results\n\n" << machine_lines(s.machine) << "\n"
      << "## Targets\n\n" << targets_table(checks) << "\n"
      << "## Round trip (ping-pong between two processes)\n\n" << rtt_table(s) << "\n"
      << "## One-way streaming throughput\n\n" << throughput_table(s) << "\n"
      << "## Back-pressure (the consumer slower than its pushers)\n\n" << backpressure_table(s);
  return out.str();
}

std::string gnuplot_script(const Suite& s) {
  return "# Drawn by bloccs-bench from results.json: gnuplot plots.gp\n" +
         std::string("set datafile missing \"-\"\n") + rtt_plot(s) + "reset\n" +
         "set datafile missing \"-\"\n" + throughput_plot(s) + "reset\n" + backpressure_plot(s);
}

Status write_report(const Suite& suite, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{Errc::system_error, "cannot make " + dir + ": " + ec.message()};
  const std::filesystem::path d(dir);
  const auto checks = check_targets(suite);
  for (auto st : {write_file(d / "results.json", to_json(suite).dump(2) + "\n"),
                  write_file(d / "results.md", markdown(suite, checks)),
                  write_file(d / "plots.gp", gnuplot_script(suite))})
    if (!st) return st;
  return run_gnuplot(dir);
}

}  // namespace bloccs::bench
