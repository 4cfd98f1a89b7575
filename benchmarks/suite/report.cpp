// SPDX-License-Identifier: Apache-2.0
#include "benchmarks/suite/report.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <tuple>

namespace bloccs::bench {
namespace {

using nlohmann::json;

// ---- the transports -----------------------------------------------------------------------------

// Rows, lines and bars come in this order: the floors, bloccs, then the peers.
constexpr std::array<std::string_view, 11> kOrder = {
    "floor-spin", "floor-futex", "bloccs-spsc", "bloccs-mpsc", "bloccs-spsc-parked",
    "bloccs-spsc-nohist", "boost-mq", "posix-mq", "uds", "pipe", "zmq-ipc"};
constexpr std::array<std::string_view, 5> kPeers = {"boost-mq", "posix-mq", "uds", "pipe",
                                                    "zmq-ipc"};
constexpr std::uint32_t kTargetBytes = 64;  // the targets are on 64-byte messages

// Transports the suite does not know yet go last.
std::size_t rank_of(std::string_view transport) {
  return static_cast<std::size_t>(std::find(kOrder.begin(), kOrder.end(), transport) -
                                  kOrder.begin());
}

bool is_floor(std::string_view transport) {
  return transport.starts_with("floor-");
}
bool is_bloccs(std::string_view transport) {
  return transport.starts_with("bloccs-");
}

// ---- numbers as text ----------------------------------------------------------------------------

std::string fixed(double v, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

// Three significant digits for everyday magnitudes: 1.40, 10.5, 293.
std::string three_digits(double v) {
  const double a = std::fabs(v);
  return fixed(v, a < 10 ? 2 : a < 100 ? 1 : 0);
}

// 1.5, 2, 100: a limit as people write it.
std::string short_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

std::string ns_text(double ns) {
  if (ns < 1e3) return fixed(ns, 0) + " ns";
  if (ns < 1e6) return three_digits(ns / 1e3) + " µs";
  if (ns < 1e9) return three_digits(ns / 1e6) + " ms";
  return three_digits(ns / 1e9) + " s";
}

std::string rate_text(double per_s) {
  if (per_s >= 1e6) return three_digits(per_s / 1e6) + " M/s";
  if (per_s >= 1e3) return three_digits(per_s / 1e3) + " k/s";
  return three_digits(per_s) + " /s";
}

std::string ratio_text(std::optional<double> r) {
  return r ? three_digits(*r) + "x" : std::string("—");
}

std::string percent_text(double fraction) {
  return fixed(fraction * 100, 1) + " %";
}

std::string size_text(const Figure& f) {
  std::string text = std::to_string(f.bytes) + " B";
  if (f.test != "rtt")
    text += ", " + std::to_string(f.pushers) + (f.pushers == 1 ? " pusher" : " pushers");
  return text;
}

// ---- finding figures ----------------------------------------------------------------------------

const Figure* find(const Suite& s, std::string_view transport, std::string_view test,
                   std::uint32_t bytes, std::uint32_t pushers) {
  for (const Figure& f : s.results)
    if (f.transport == transport && f.test == test && f.bytes == bytes && f.pushers == pushers)
      return &f;
  return nullptr;
}

const Figure* find(const std::vector<const Figure*>& rows, std::string_view transport,
                   std::uint32_t bytes, std::uint32_t pushers) {
  for (const Figure* f : rows)
    if (f->transport == transport && f->bytes == bytes && f->pushers == pushers) return f;
  return nullptr;
}

bool before(std::string_view a, std::string_view b) {
  return std::tuple(rank_of(a), a) < std::tuple(rank_of(b), b);
}

// The figures of one test in report order: grouped by size and pusher count, so that the
// figures compared with each other are next to each other. Back-pressure's pusher count comes
// with the transport (2 where it takes several), so there it does not group.
std::vector<const Figure*> figures_of(const Suite& s, std::string_view test) {
  std::vector<const Figure*> out;
  for (const Figure& f : s.results)
    if (f.test == test) out.push_back(&f);
  const bool group_pushers = test != "backpressure";
  std::stable_sort(out.begin(), out.end(), [&](const Figure* a, const Figure* b) {
    const auto group = [&](const Figure* f) {
      return std::pair(f->bytes, group_pushers ? f->pushers : 0u);
    };
    if (group(a) != group(b)) return group(a) < group(b);
    if (a->transport != b->transport) return before(a->transport, b->transport);
    return a->pushers < b->pushers;
  });
  return out;
}

// The transports with a figure among `rows` at `bytes`, in report order.
std::vector<std::string> transports_in(const std::vector<const Figure*>& rows,
                                       std::uint32_t bytes) {
  std::vector<std::string> names;
  for (const Figure* f : rows)
    if (f->bytes == bytes && std::find(names.begin(), names.end(), f->transport) == names.end())
      names.push_back(f->transport);
  std::sort(names.begin(), names.end(),
            [](const std::string& a, const std::string& b) { return before(a, b); });
  return names;
}

template <class Member>
std::vector<std::uint32_t> distinct(const std::vector<const Figure*>& figures, Member member) {
  std::vector<std::uint32_t> values;
  for (const Figure* f : figures) values.push_back(f->*member);
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

// What a target or a table compares: one number of a figure.
struct Metric {
  const char* label;  // "p50", "msgs/s"
  std::optional<double> (*of)(const Figure&);
  bool lower_is_better;
  std::string (*text)(double);
};

std::optional<double> p50_of(const Figure& f) {
  return f.rtt ? std::optional<double>(double(f.rtt->p50)) : std::nullopt;
}
std::optional<double> p99_of(const Figure& f) {
  return f.rtt ? std::optional<double>(double(f.rtt->p99)) : std::nullopt;
}
std::optional<double> rate_of(const Figure& f) {
  return f.msgs_per_s;
}

constexpr Metric kP50{"p50", p50_of, true, ns_text};
constexpr Metric kP99{"p99", p99_of, true, ns_text};
constexpr Metric kRate{"msgs/s", rate_of, false, rate_text};

bool usable(const std::optional<double>& v) {
  return v && std::isfinite(*v) && *v >= 0;
}

// The peer with the best value of `m` at this size and pusher count; null when none was measured.
const Figure* best_peer(const Suite& s, std::string_view test, std::uint32_t bytes,
                        std::uint32_t pushers, const Metric& m) {
  const Figure* best = nullptr;
  for (std::string_view peer : kPeers) {
    const Figure* f = find(s, peer, test, bytes, pushers);
    if (!f || !usable(m.of(*f))) continue;
    const double v = *m.of(*f), b = best ? *m.of(*best) : 0;
    if (!best || (m.lower_is_better ? v < b : v > b)) best = f;
  }
  return best;
}

// ---- results.json -------------------------------------------------------------------------------

json machine_json(const Machine& m) {
  return {{"date", m.date},           {"host", m.host},
          {"cpu_model", m.cpu_model}, {"cpus", m.cpus},
          {"pinned", m.pinned},       {"kernel", m.kernel},
          {"compiler", m.compiler},   {"build_type", m.build_type},
          {"command", m.command},     {"quick", m.quick}};
}

// JSON has no NaN or infinity: a value that is not finite is left out like one that does not
// apply, rather than written as null and refused when read back.
void put_if_finite(json& j, const char* key, const std::optional<double>& v) {
  if (v && std::isfinite(*v)) j[key] = *v;
}

json figure_json(const Figure& f) {
  json j = {{"transport", f.transport},
            {"test", f.test},
            {"bytes", f.bytes},
            {"pushers", f.pushers},
            {"count", f.count}};
  if (f.rtt) {
    j["p50_ns"] = f.rtt->p50;
    j["p90_ns"] = f.rtt->p90;
    j["p99_ns"] = f.rtt->p99;
    j["p999_ns"] = f.rtt->p999;
    j["max_ns"] = f.rtt->max;
  }
  put_if_finite(j, "msgs_per_s", f.msgs_per_s);
  if (f.msgs_per_s) put_if_finite(j, "bytes_per_s", *f.msgs_per_s * f.bytes);
  put_if_finite(j, "consumer_alone_msgs_per_s", f.consumer_alone_msgs_per_s);
  put_if_finite(j, "pusher_cpu", f.pusher_cpu);
  return j;
}

// What a JSON value must be to be read as T, and how to say so.
template <class T>
bool fits(const json& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v.is_string();
  } else if constexpr (std::is_same_v<T, bool>) {
    return v.is_boolean();
  } else if constexpr (std::is_same_v<T, double>) {
    return v.is_number();
  } else if constexpr (std::is_same_v<T, std::vector<int>>) {
    return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) {
             return e.is_number_integer() && e.get<std::int64_t>() >= 0 &&
                    e.get<std::int64_t>() <= std::numeric_limits<int>::max();
           });
  } else {
    static_assert(std::is_unsigned_v<T>);
    return v.is_number_unsigned() && v.get<std::uint64_t>() <= std::numeric_limits<T>::max();
  }
}

template <class T>
const char* kind_of() {
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, std::vector<int>>) return "an array of CPU numbers";
  return "a non-negative integer";
}

enum class Need { required, optional };

// Reads obj[key] into `out`; an error naming "where.key" when it is missing or of the wrong kind.
template <class T>
Status read_field(const json& obj, const std::string& where, const char* key, T& out, Need need) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (need == Need::optional) return {};
    return Error{Errc::bad_config, "results.json: " + where + "." + key + " is missing"};
  }
  if (!fits<T>(*it)) {
    const std::string found = it->dump();
    return Error{Errc::bad_config, "results.json: " + where + "." + key + " must be " +
                                       kind_of<T>() + ", not " + found.substr(0, 60)};
  }
  out = it->get<T>();
  return {};
}

template <class T>
Status read_field(const json& obj, const std::string& where, const char* key,
                  std::optional<T>& out) {
  if (!obj.contains(key)) return {};
  T value{};
  if (auto st = read_field(obj, where, key, value, Need::required); !st) return st;
  out = value;
  return {};
}

Status read_machine(const json& j, Machine& m) {
  if (!j.is_object()) return Error{Errc::bad_config, "results.json: machine must be an object"};
  // All optional: a results.json stripped of where it ran can still be re-reported.
  const auto o = Need::optional;
  for (const Status& st :
       {read_field(j, "machine", "date", m.date, o), read_field(j, "machine", "host", m.host, o),
        read_field(j, "machine", "cpu_model", m.cpu_model, o),
        read_field(j, "machine", "cpus", m.cpus, o),
        read_field(j, "machine", "pinned", m.pinned, o),
        read_field(j, "machine", "kernel", m.kernel, o),
        read_field(j, "machine", "compiler", m.compiler, o),
        read_field(j, "machine", "build_type", m.build_type, o),
        read_field(j, "machine", "command", m.command, o),
        read_field(j, "machine", "quick", m.quick, o)})
    if (!st) return st;
  return {};
}

// A round trip's percentiles come all together or not at all.
Status read_percentiles(const json& j, const std::string& where, std::optional<Percentiles>& out) {
  constexpr const char* keys[] = {"p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"};
  if (std::none_of(std::begin(keys), std::end(keys), [&](const char* k) { return j.contains(k); }))
    return {};
  Percentiles p;
  std::uint64_t* fields[] = {&p.p50, &p.p90, &p.p99, &p.p999, &p.max};
  for (std::size_t i = 0; i < std::size(keys); ++i)
    if (auto st = read_field(j, where, keys[i], *fields[i], Need::required); !st)
      return Error{st.error().code, st.error().message +
                                        " (a round trip needs p50_ns, p90_ns, p99_ns, p999_ns "
                                        "and max_ns)"};
  out = p;
  return {};
}

Result<Figure> read_figure(const json& j, const std::string& where) {
  if (!j.is_object())
    return Error{Errc::bad_config, "results.json: " + where + " must be an object"};
  Figure f;
  const auto r = Need::required;
  for (const Status& st :
       {read_field(j, where, "transport", f.transport, r), read_field(j, where, "test", f.test, r),
        read_field(j, where, "bytes", f.bytes, r), read_field(j, where, "pushers", f.pushers, r),
        read_field(j, where, "count", f.count, r), read_percentiles(j, where, f.rtt),
        read_field(j, where, "msgs_per_s", f.msgs_per_s),
        read_field(j, where, "consumer_alone_msgs_per_s", f.consumer_alone_msgs_per_s),
        read_field(j, where, "pusher_cpu", f.pusher_cpu)})
    if (!st) return st.error();
  if (f.test != "rtt" && f.test != "throughput" && f.test != "backpressure")
    return Error{Errc::bad_config, "results.json: " + where +
                                       ".test must be \"rtt\", \"throughput\" or \"backpressure\", "
                                       "not \"" +
                                       f.test + "\""};
  return f;
}

// ---- targets ------------------------------------------------------------------------------------

// How a target bounds its ratio.
enum class Bound {
  at_most,         // ratio = subject / reference <= limit
  at_least_better  // ratio = how many times better the subject is >= limit
};

// One target: `subject` (bloccs) against a floor, or against the best peer when floor is empty.
struct Target {
  std::string_view subject;
  std::string_view test;  // "rtt" or "throughput" (64 B, one pusher)
  Metric metric;
  std::string_view floor;
  Bound bound;
  double limit;
};

std::string reference_name(const Target& t) {
  return t.floor.empty() ? std::string("best peer") : std::string(t.floor);
}

std::string rule_text(const Target& t) {
  const std::string what = std::string(t.test) + " " + t.metric.label;
  const std::string ref =
      t.floor.empty() ? "the best peer's " + what : std::string(t.floor) + " " + what;
  if (t.bound == Bound::at_most)
    return t.limit == 1 ? "<= " + ref : "<= " + short_number(t.limit) + " x " + ref;
  return "at least " + short_number(t.limit) + " x " +
         (t.metric.lower_is_better ? "lower than " : "") + ref;
}

std::string not_measured(std::string_view transport, std::string_view test) {
  Figure f;
  f.test = std::string(test);
  f.bytes = kTargetBytes;
  return std::string(transport) + " " + std::string(test) + " " + size_text(f);
}

// The peers with no usable figure for a best-peer target, e.g. "; not measured: uds".
std::string peers_missing(const Suite& s, const Target& t) {
  std::string missing;
  for (std::string_view peer : kPeers) {
    const Figure* f = find(s, peer, t.test, kTargetBytes, 1);
    if (!f || !usable(t.metric.of(*f)))
      missing += (missing.empty() ? "" : ", ") + std::string(peer);
  }
  return missing.empty() ? "" : "; not measured: " + missing;
}

TargetCheck check(const Suite& s, const Target& t) {
  TargetCheck c;
  c.name = std::string(t.subject) + " " + std::string(t.test) + " " + t.metric.label + " vs " +
           reference_name(t);
  c.rule = rule_text(t);
  c.limit = t.limit;
  const Figure* subject = find(s, t.subject, t.test, kTargetBytes, 1);
  const Figure* ref = t.floor.empty() ? best_peer(s, t.test, kTargetBytes, 1, t.metric)
                                      : find(s, t.floor, t.test, kTargetBytes, 1);
  std::vector<std::string> missing;
  if (!subject || !usable(t.metric.of(*subject)))
    missing.push_back(not_measured(t.subject, t.test));
  if (!ref || !usable(t.metric.of(*ref)))
    missing.push_back(not_measured(
        t.floor.empty() ? "any peer (boost-mq, posix-mq, uds, pipe, zmq-ipc)" : t.floor, t.test));
  if (!missing.empty()) {
    c.detail = "not measured: " + missing[0] + (missing.size() > 1 ? ", " + missing[1] : "");
    return c;
  }
  const double mine = *t.metric.of(*subject), theirs = *t.metric.of(*ref);
  // "100 x lower" reads as theirs / mine; every other rule as mine / theirs.
  const bool inverted = t.bound == Bound::at_least_better && t.metric.lower_is_better;
  const double num = inverted ? theirs : mine, den = inverted ? mine : theirs;
  c.detail = std::string(t.subject) + " " + t.metric.text(mine) + " vs " +
             (t.floor.empty() ? "best peer " : "") + ref->transport + " " + t.metric.text(theirs) +
             (t.floor.empty() ? peers_missing(s, t) : "");
  if (den <= 0) {
    c.detail += ": cannot divide by 0";
    return c;
  }
  c.ratio = num / den;
  c.met = t.bound == Bound::at_most ? *c.ratio <= t.limit : *c.ratio >= t.limit;
  return c;
}

// ---- Markdown -----------------------------------------------------------------------------------

std::string pinned_text(const std::vector<int>& cpus) {
  if (cpus.empty()) return "unpinned";
  std::string text = "receiver pinned to CPU " + std::to_string(cpus[0]);
  for (std::size_t i = 1; i < cpus.size(); ++i)
    text += (i == 1 ? ", senders to CPU " : ", ") + std::to_string(cpus[i]);
  return text;
}

std::string machine_lines(const Machine& m) {
  std::ostringstream out;
  out << "Measured " << m.date << " on " << m.host << ": " << m.cpu_model << ", " << m.cpus
      << " CPUs (" << pinned_text(m.pinned) << "), Linux " << m.kernel << ", " << m.compiler << ", "
      << m.build_type << " build.\n\n"
      << "Command: `" << m.command << "`\n";
  if (m.quick)
    out << "\n> **Warning: a quick run** (`--quick`): few samples, so these figures are only "
           "indicative. Do not compare them with a full run's.\n";
  return out.str();
}

constexpr const char* kNotMeasured = "Not measured in this run.\n";

std::string rtt_table(const Suite& s) {
  std::vector<const Figure*> rows;
  for (const Figure* f : figures_of(s, "rtt"))
    if (f->rtt) rows.push_back(f);
  if (rows.empty()) return kNotMeasured;
  std::ostringstream out;
  out << "Ping-pong between two processes: the time from sending a message to receiving the reply. "
         "The ratios are to floor-spin (a bare cache-line ping-pong) at the same size.\n\n"
      << "| transport | bytes | p50 | p90 | p99 | p99.9 | max | p50 / floor-spin p50 | "
         "p99 / floor-spin p99 |\n"
      << "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  for (const Figure* f : rows) {
    const Figure* floor = find(s, "floor-spin", "rtt", f->bytes, f->pushers);
    const auto ratio = [&](const Metric& m) -> std::optional<double> {
      if (!floor || !usable(m.of(*floor)) || *m.of(*floor) <= 0) return std::nullopt;
      return *m.of(*f) / *m.of(*floor);
    };
    const Percentiles& p = *f->rtt;
    out << "| " << f->transport << " | " << f->bytes << " | " << ns_text(double(p.p50)) << " | "
        << ns_text(double(p.p90)) << " | " << ns_text(double(p.p99)) << " | "
        << ns_text(double(p.p999)) << " | " << ns_text(double(p.max)) << " | "
        << ratio_text(ratio(kP50)) << " | " << ratio_text(ratio(kP99)) << " |\n";
  }
  return out.str();
}

std::string best_peers_line(const Suite& s, const std::vector<const Figure*>& rows) {
  std::string line;
  for (std::uint32_t bytes : distinct(rows, &Figure::bytes))
    for (std::uint32_t pushers : distinct(rows, &Figure::pushers))
      if (const Figure* best = best_peer(s, "throughput", bytes, pushers, kRate))
        line += (line.empty() ? "" : "; ") + size_text(*best) + ": " + best->transport + " " +
                rate_text(*best->msgs_per_s);
  return line.empty() ? "" : "\nBest peer: " + line + ".\n";
}

std::string throughput_table(const Suite& s) {
  std::vector<const Figure*> rows;
  for (const Figure* f : figures_of(s, "throughput"))
    if (usable(f->msgs_per_s)) rows.push_back(f);
  if (rows.empty()) return kNotMeasured;
  std::ostringstream out;
  out << "One-way streaming from the pusher processes to one receiver. The ratio is to the best "
         "peer (the highest msgs/s of boost-mq, posix-mq, uds, pipe and zmq-ipc) at the same size "
         "and "
         "pusher count.\n\n"
      << "| transport | bytes | pushers | msgs/s | MB/s | vs best peer |\n"
      << "|---|--:|--:|--:|--:|--:|\n";
  for (const Figure* f : rows) {
    const Figure* best = best_peer(s, "throughput", f->bytes, f->pushers, kRate);
    std::optional<double> ratio;
    if (best && *best->msgs_per_s > 0) ratio = *f->msgs_per_s / *best->msgs_per_s;
    out << "| " << f->transport << " | " << f->bytes << " | " << f->pushers << " | "
        << rate_text(*f->msgs_per_s) << " | " << three_digits(*f->msgs_per_s * f->bytes / 1e6)
        << " | " << ratio_text(ratio) << " |\n";
  }
  out << best_peers_line(s, rows);
  return out.str();
}

std::string backpressure_table(const Suite& s) {
  const auto rows = figures_of(s, "backpressure");
  if (rows.empty()) return kNotMeasured;
  std::ostringstream out;
  out << "A consumer slower than its pushers, which wait for space most of the time. The rate "
         "should match the consumer's own pace; CPU is each pusher's CPU time per wall time "
         "(100 % = a whole core spent waiting).\n\n"
      << "| transport | pushers | msgs/s | consumer alone | of its pace | CPU per pusher |\n"
      << "|---|--:|--:|--:|--:|--:|\n";
  const auto or_dash = [](bool ok, const std::string& text) { return ok ? text : "—"; };
  for (const Figure* f : rows) {
    const auto& rate = f->msgs_per_s;
    const auto& alone = f->consumer_alone_msgs_per_s;
    const bool pace = usable(rate) && usable(alone) && *alone > 0;
    out << "| " << f->transport << " | " << f->pushers << " | "
        << or_dash(usable(rate), rate ? rate_text(*rate) : "") << " | "
        << or_dash(usable(alone), alone ? rate_text(*alone) : "") << " | "
        << or_dash(pace, pace ? percent_text(*rate / *alone) : "") << " | "
        << or_dash(usable(f->pusher_cpu), f->pusher_cpu ? percent_text(*f->pusher_cpu) : "")
        << " |\n";
  }
  return out.str();
}

// The time-in-queue histogram's cost per message: bloccs-spsc (on, the default) beside
// bloccs-spsc-nohist (off), measured in the same rounds. A round trip carries two messages,
// each stamped by its pusher and recorded by its consumer; streaming, one per 1/rate.
struct HistogramCost {
  std::uint32_t bytes;
  std::optional<double> rtt_ns;     // per message, from the rtt p50s
  std::optional<double> stream_ns;  // per message, from the streaming rates
};

std::vector<HistogramCost> histogram_costs(const Suite& s) {
  std::vector<HistogramCost> costs;
  std::vector<std::uint32_t> sizes;
  for (const Figure& f : s.results)
    if (f.transport == "bloccs-spsc-nohist") sizes.push_back(f.bytes);
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  for (std::uint32_t bytes : sizes) {
    HistogramCost c{bytes, {}, {}};
    const Figure* on = find(s, "bloccs-spsc", "rtt", bytes, 1);
    const Figure* off = find(s, "bloccs-spsc-nohist", "rtt", bytes, 1);
    if (on && off && usable(p50_of(*on)) && usable(p50_of(*off)))
      c.rtt_ns = (*p50_of(*on) - *p50_of(*off)) / 2;
    on = find(s, "bloccs-spsc", "throughput", bytes, 1);
    off = find(s, "bloccs-spsc-nohist", "throughput", bytes, 1);
    if (on && off && usable(on->msgs_per_s) && usable(off->msgs_per_s) && *on->msgs_per_s > 0 &&
        *off->msgs_per_s > 0)
      c.stream_ns = 1e9 / *on->msgs_per_s - 1e9 / *off->msgs_per_s;
    if (c.rtt_ns || c.stream_ns) costs.push_back(c);
  }
  return costs;
}

constexpr double kHistogramBudgetNs = 10;  // issue 16: under 10 ns per message

std::string signed_ns(const std::optional<double>& v) {
  if (!v) return "-";
  return (*v >= 0 ? "+" : "") + fixed(*v, 1) + " ns";
}

std::string histogram_cost_table(const Suite& s) {
  const auto costs = histogram_costs(s);
  if (costs.empty()) return kNotMeasured;
  std::ostringstream out;
  out << "What keeping each port's time-in-queue histogram costs per message: bloccs-spsc (on, "
         "the default) minus bloccs-spsc-nohist (latency_histogram off), in the same rounds. "
         "Within a few ns this is noise; the budget is "
      << fixed(kHistogramBudgetNs, 0) << " ns.\n\n"
      << "| bytes | from rtt p50 (per message) | from streaming (per message) |\n"
      << "|--:|--:|--:|\n";
  for (const HistogramCost& c : costs)
    out << "| " << c.bytes << " | " << signed_ns(c.rtt_ns) << " | " << signed_ns(c.stream_ns)
        << " |\n";
  return out.str();
}

std::string targets_table(const std::vector<TargetCheck>& checks) {
  std::ostringstream out;
  out << "The issue's targets, on this run's 64-byte figures.\n\n"
      << "| result | target | rule | measured | figures |\n|---|---|---|--:|---|\n";
  for (const TargetCheck& c : checks)
    out << "| " << (c.met ? "PASS" : "**MISS**") << " | " << c.name << " | " << c.rule << " | "
        << (c.ratio ? fixed(*c.ratio, 2) + "x" : "—") << " | " << c.detail << " |\n";
  return out.str();
}

// ---- gnuplot ------------------------------------------------------------------------------------

// A string as a gnuplot double-quoted literal.
std::string gp_string(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// The same colour and point for a transport in every plot; floors dashed, bloccs bold.
struct Look {
  const char* colour;
  int point;
};

Look look_of(std::string_view transport) {
  // Indexed like kOrder: black and grey floors, blue-green bloccs, warm peers.
  constexpr std::array<Look, 9> looks = {{{"#000000", 6},
                                          {"#7f7f7f", 4},
                                          {"#1f5fbf", 7},
                                          {"#17a2b8", 9},
                                          {"#2ca02c", 5},
                                          {"#d62728", 11},
                                          {"#ff7f0e", 13},
                                          {"#9467bd", 15},
                                          {"#8c564b", 3}}};
  const std::size_t rank = rank_of(transport);
  return rank < looks.size() ? looks[rank] : Look{"#bcbd22", 1};
}

std::string line_style(std::string_view transport) {
  const Look look = look_of(transport);
  const char* dash_width = is_floor(transport)    ? "dt 2 lw 2"
                           : is_bloccs(transport) ? "dt 1 lw 3"
                                                  : "dt 1 lw 1.5";
  return std::string("lc rgb \"") + look.colour + "\" pt " + std::to_string(look.point) +
         " ps 1.3 " + dash_width;
}

std::string colour_number(std::string_view transport) {
  return "0x" + std::string(look_of(transport).colour + 1);
}

// Explicit log-scale tics at each power of ten in [lo, hi], labelled by `text`; with the
// matching y range, so every panel of a plot shares one scale. The range reaches a hair beyond
// the end tics, which gnuplot leaves unlabelled when they sit exactly on the border.
std::string log_axis(double lo, double hi, std::string (*text)(double)) {
  const double first = std::pow(10, std::floor(std::log10(std::max(lo, 1e-9))));
  const double last = std::pow(10, std::ceil(std::log10(std::max(hi, first * 10))));
  std::string tics;
  for (double v = first; v <= last * 1.001; v *= 10)
    tics += (tics.empty() ? "" : ", ") + gp_string(text(v)) + " " + short_number(v);
  return "set logscale y\nset yrange [" + short_number(first * 0.99) + ":" +
         short_number(last * 1.01) + "]\nset ytics (" + tics + ")\nset grid ytics\n";
}

// Tic labels without decimals: "1 µs", not "1.00 µs".
std::string ns_tic(double ns) {
  if (ns < 1e3) return fixed(ns, 0) + " ns";
  if (ns < 1e6) return fixed(ns / 1e3, 0) + " µs";
  if (ns < 1e9) return fixed(ns / 1e6, 0) + " ms";
  return fixed(ns / 1e9, 0) + " s";
}

std::string rate_tic(double per_s) {
  if (per_s >= 1e6) return fixed(per_s / 1e6, 0) + " M/s";
  if (per_s >= 1e3) return fixed(per_s / 1e3, 0) + " k/s";
  return fixed(per_s, 0) + " /s";
}

// The canvas and a row of `panels` panels, leaving the right-hand side for the key.
std::string panels_start(const char* file, int panels, const std::string& title) {
  return "set terminal pngcairo noenhanced size 1000,600 font \"Sans,10\"\nset output " +
         gp_string(file) + "\nset multiplot layout 1," + std::to_string(panels) + " title " +
         gp_string(title) + " font \"Sans,13\" margins 0.1,0.80,0.14,0.86 spacing 0.08,0\n";
}

// The key of a multiplot, drawn once in the space the panels leave on the right.
const char* kKeyOutside =
    "set key at screen 0.815,0.86 left top Left reverse samplen 3 spacing 1.3\n";

// One line with points per transport: column i + 2 of `block` is names[i].
std::string plot_lines(const std::string& block, const std::vector<std::string>& names) {
  std::string out = "plot ";
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i ? ", \\\n     " : "") + block + " using 0:" + std::to_string(i + 2) +
           (i == 0 ? ":xtic(1)" : "") + " with linespoints " + line_style(names[i]) + " title " +
           gp_string(names[i]);
  return out + "\n";
}

// One panel per message size, from the datablocks <block><bytes>, then the end of the
// multiplot. The first panel carries the legend and the y label for all.
std::string size_panels(const std::string& block, const std::vector<std::uint32_t>& sizes,
                        const std::vector<const Figure*>& rows) {
  std::string out;
  for (std::uint32_t bytes : sizes)
    out += "set title \"" + std::to_string(bytes) + "-byte messages\"\n" +
           plot_lines(block + std::to_string(bytes), transports_in(rows, bytes)) +
           "unset key\nunset ylabel\n";
  return out + "unset multiplot\n";
}

// rtt.png: one panel per message size; x = percentile, one line per transport, log y.
std::string rtt_plot(const Suite& s) {
  std::vector<const Figure*> rows;
  double lo = INFINITY, hi = 0;
  for (const Figure* f : figures_of(s, "rtt"))
    if (f->rtt) {
      rows.push_back(f);
      lo = std::min(lo, double(std::max<std::uint64_t>(f->rtt->p50, 1)));
      hi = std::max(hi, double(f->rtt->max));
    }
  if (rows.empty()) return {};
  const auto sizes = distinct(rows, &Figure::bytes);
  std::ostringstream out;
  for (std::uint32_t bytes : sizes) {
    const auto names = transports_in(rows, bytes);
    out << "$rtt" << bytes << " << EOD\n# percentile";
    for (const auto& name : names) out << " " << name;
    out << "\n";
    const char* labels[] = {"p50", "p90", "p99", "p99.9", "max"};
    for (int p = 0; p < 5; ++p) {
      out << labels[p];
      for (const auto& name : names) {
        const Figure* f = find(rows, name, bytes, 1);
        if (!f) {
          out << " -";
          continue;
        }
        const std::uint64_t v[] = {f->rtt->p50, f->rtt->p90, f->rtt->p99, f->rtt->p999,
                                   f->rtt->max};
        out << " " << v[p];
      }
      out << "\n";
    }
    out << "EOD\n";
  }
  const bool floors =
      std::any_of(rows.begin(), rows.end(), [](const Figure* f) { return is_floor(f->transport); });
  out << panels_start("rtt.png", int(sizes.size()),
                      std::string("Round-trip time between two processes (log scale: lower is "
                                  "better") +
                          (floors ? "; dashed: the physical floors)" : ")"))
      << log_axis(lo, hi, ns_tic) << "set xrange [-0.4:4.4]\nset xlabel \"percentile\"\n"
      << "set ylabel \"round-trip time\"\n"
      << kKeyOutside;
  out << size_panels("$rtt", sizes, rows);
  return out.str();
}

// throughput.png: one panel per message size; x = pusher processes, log y.
std::string throughput_plot(const Suite& s) {
  std::vector<const Figure*> rows;
  double lo = INFINITY, hi = 0;
  for (const Figure* f : figures_of(s, "throughput"))
    if (usable(f->msgs_per_s) && *f->msgs_per_s > 0) {
      rows.push_back(f);
      lo = std::min(lo, *f->msgs_per_s);
      hi = std::max(hi, *f->msgs_per_s);
    }
  if (rows.empty()) return {};
  const auto sizes = distinct(rows, &Figure::bytes);
  const auto pusher_counts = distinct(rows, &Figure::pushers);
  std::ostringstream out;
  for (std::uint32_t bytes : sizes) {
    const auto names = transports_in(rows, bytes);
    out << "$tp" << bytes << " << EOD\n# pushers";
    for (const auto& name : names) out << " " << name;
    out << "\n";
    for (std::uint32_t pushers : pusher_counts) {
      out << pushers;
      for (const auto& name : names) {
        const Figure* f = find(rows, name, bytes, pushers);
        out << " " << (f ? fixed(*f->msgs_per_s, 0) : "-");
      }
      out << "\n";
    }
    out << "EOD\n";
  }
  out << panels_start("throughput.png", int(sizes.size()),
                      "One-way streaming throughput (log scale: higher is better)")
      << log_axis(lo, hi, rate_tic) << "set datafile missing \"-\"\n"
      << "set xrange [-0.4:" << fixed(double(pusher_counts.size()) - 0.6, 1) << "]\n"
      << "set xlabel \"pusher processes\"\nset ylabel \"messages per second\"\n"
      << kKeyOutside;
  out << size_panels("$tp", sizes, rows);
  return out.str();
}

// backpressure.png: bars per transport of the rate (beside the consumer's own pace) and of the
// CPU each waiting pusher burns.
std::string backpressure_plot(const Suite& s) {
  std::vector<const Figure*> rows;
  for (const Figure* f : figures_of(s, "backpressure"))
    if (usable(f->msgs_per_s) && usable(f->pusher_cpu)) rows.push_back(f);
  if (rows.empty()) return {};
  std::ostringstream out;
  out << "$bp << EOD\n# transport (pushers), k msgs/s, consumer alone k msgs/s, CPU %, colour\n";
  for (const Figure* f : rows)
    out << gp_string(f->transport + " (" + std::to_string(f->pushers) + ")") << " "
        << fixed(*f->msgs_per_s / 1e3, 1) << " "
        << (usable(f->consumer_alone_msgs_per_s) ? fixed(*f->consumer_alone_msgs_per_s / 1e3, 1)
                                                 : "-")
        << " " << fixed(*f->pusher_cpu * 100, 1) << " " << colour_number(f->transport) << "\n";
  out << "EOD\n"
      << "set terminal pngcairo noenhanced size 1000,600 font \"Sans,10\"\n"
      << "set output \"backpressure.png\"\n"
      << "set multiplot layout 1,2 title \"Back-pressure: a consumer slower than its pushers "
         "(pusher processes in brackets)\" font \"Sans,13\" margins 0.08,0.97,0.25,0.86 spacing "
         "0.1,0\n"
      << "set datafile missing \"-\"\nset style fill solid 0.8 border -1\nset grid ytics\n"
      << "set xrange [-0.6:" << fixed(double(rows.size()) - 0.4, 1) << "]\n"
      << "set xtics rotate by 30 right nomirror\nset yrange [0:*]\n"
      << "set key top right opaque box\nset offsets 0,0,graph 0.12,0\n"
      << "set title \"messages per second (should match the consumer's pace)\"\n"
      << "set ylabel \"thousand messages per second\"\n"
      << "plot $bp using 0:2:(0.7):5:xtic(1) with boxes lc rgb variable notitle, \\\n"
      << "     $bp using ($0-0.35):3:(0.7):(0) with vectors nohead lw 2 dt 2 lc rgb \"black\" "
         "title \"the consumer alone\"\n"
      << "set title \"CPU of each waiting pusher (lower is better)\"\n"
      << "set ylabel \"% of one core\"\nunset key\n"
      << "plot $bp using 0:4:(0.7):5:xtic(1) with boxes lc rgb variable notitle, \\\n"
      << "     $bp using 0:4:(sprintf(\"%.1f %%\", $4)) with labels offset 0,0.7 notitle\n"
      << "unset multiplot\n";
  return out.str();
}

// ---- files and gnuplot --------------------------------------------------------------------------

Status write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out)
    return Error{Errc::system_error,
                 "cannot write " + path.string() + ": is the directory writable, the disk full?"};
  return {};
}

// The path of `program` in PATH, empty when it is not there.
std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate))
      return candidate;
  }
  return {};
}

// Runs `gnuplot plots.gp` in `dir`: its exit status and everything it printed.
Result<std::pair<int, std::string>> run_gnuplot(const std::string& gnuplot,
                                                const std::string& dir) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0)
    return Error{Errc::system_error, std::string("pipe for gnuplot: ") + std::strerror(errno)};
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Error{Errc::system_error, std::string("fork for gnuplot: ") + std::strerror(err)};
  }
  if (pid == 0) {  // only async-signal-safe calls: the parent may have threads
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(pipe_fds[1], STDERR_FILENO);
    if (chdir(dir.c_str()) == 0) execl(gnuplot.c_str(), "gnuplot", "plots.gp", nullptr);
    constexpr char msg[] = "cannot run gnuplot in the report directory\n";
    [[maybe_unused]] auto n = write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
  }
  close(pipe_fds[1]);
  std::string output;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buf, sizeof buf);
    if (n > 0)
      output.append(buf, std::size_t(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  while (!output.empty() && std::isspace(static_cast<unsigned char>(output.back())))
    output.pop_back();
  return std::pair(code, output);
}

Status draw_plots(const std::string& dir) {
  const std::string script = (std::filesystem::path(dir) / "plots.gp").string();
  const std::string gnuplot = find_on_path("gnuplot");
  if (gnuplot.empty()) {
    std::fprintf(stderr,
                 "bloccs-bench: gnuplot is not on PATH, so no PNG plots: install "
                 "gnuplot-nox, then run `gnuplot plots.gp` in %s\n",
                 dir.c_str());
    return {};
  }
  auto run = run_gnuplot(gnuplot, dir);
  if (!run) return run.error();
  const auto& [code, output] = *run;
  if (code != 0)
    return Error{Errc::system_error,
                 "gnuplot failed on " + script + " (exit " + std::to_string(code) + "): " + output};
  // Warnings mean a plot may look wrong; they must be seen.
  if (!output.empty()) std::fprintf(stderr, "gnuplot on %s: %s\n", script.c_str(), output.c_str());
  return {};
}

}  // namespace

json to_json(const Suite& suite) {
  json results = json::array();
  for (const Figure& f : suite.results) results.push_back(figure_json(f));
  return {{"machine", machine_json(suite.machine)}, {"results", results}};
}

Result<Suite> from_json(const json& j) {
  if (!j.is_object() || !j.contains("machine") || !j.contains("results"))
    return Error{Errc::bad_config,
                 "results.json: not a bloccs-bench results file: it needs "
                 "\"machine\" and \"results\""};
  if (!j["results"].is_array())
    return Error{Errc::bad_config, "results.json: results must be an array"};
  Suite s;
  if (auto st = read_machine(j["machine"], s.machine); !st) return st.error();
  for (std::size_t i = 0; i < j["results"].size(); ++i) {
    auto f = read_figure(j["results"][i], "results[" + std::to_string(i) + "]");
    if (!f) return f.error();
    s.results.push_back(std::move(f).value());
  }
  return s;
}

std::vector<TargetCheck> check_targets(const Suite& s) {
  constexpr Target targets[] = {
      // The data path's targets (issue 14): a port at the floor.
      {"bloccs-spsc", "rtt", kP50, "floor-spin", Bound::at_most, 1.4},
      {"bloccs-spsc", "rtt", kP99, "floor-spin", Bound::at_most, 2},
      {"bloccs-spsc-parked", "rtt", kP50, "floor-futex", Bound::at_most, 1.25},
      {"bloccs-mpsc", "rtt", kP50, "floor-spin", Bound::at_most, 1.6},
      {"bloccs-spsc", "rtt", kP50, "", Bound::at_least_better, 100},
      {"bloccs-mpsc", "rtt", kP50, "", Bound::at_least_better, 100},
      {"bloccs-spsc-parked", "rtt", kP50, "", Bound::at_most, 1},
      {"bloccs-spsc-parked", "rtt", kP99, "", Bound::at_most, 1},
      {"bloccs-spsc", "throughput", kRate, "", Bound::at_least_better, 10},
  };
  std::vector<TargetCheck> checks;
  for (const Target& t : targets) checks.push_back(check(s, t));
  return checks;
}

std::string format_targets(const std::vector<TargetCheck>& checks) {
  std::string out = "Targets (64-byte messages, ratios within this run):\n";
  for (const TargetCheck& c : checks) {
    char line[1024];
    std::snprintf(line, sizeof line, "  %s %9s  %s: %s (%s)\n", c.met ? "PASS" : "MISS",
                  c.ratio ? (fixed(*c.ratio, 2) + "x").c_str() : "-", c.name.c_str(),
                  c.rule.c_str(), c.detail.c_str());
    out += line;
  }
  return out;
}

std::string format_histogram_cost(const Suite& s) {
  std::string out;
  for (const HistogramCost& c : histogram_costs(s)) {
    const double worst = std::max(c.rtt_ns.value_or(0), c.stream_ns.value_or(0));
    out += "  " + std::string(worst <= kHistogramBudgetNs ? "PASS" : "MISS") +
           "  time-in-queue histogram, " + std::to_string(c.bytes) + " B: " +
           signed_ns(c.rtt_ns) + " per message (rtt), " + signed_ns(c.stream_ns) +
           " (streaming); budget " + fixed(kHistogramBudgetNs, 0) + " ns\n";
  }
  return out;
}

std::string markdown(const Suite& s, const std::vector<TargetCheck>& checks) {
  return "# bloccs-bench results\n\n" + machine_lines(s.machine) + "\n## Round trip\n\n" +
         rtt_table(s) + "\n## Throughput\n\n" + throughput_table(s) + "\n## Back-pressure\n\n" +
         backpressure_table(s) + "\n## The time-in-queue histogram, its cost\n\n" +
         histogram_cost_table(s) + "\n## Targets\n\n" + targets_table(checks);
}

std::string gnuplot_script(const Suite& s) {
  // `reset` between plots: each starts from gnuplot's defaults, whatever the one before set.
  return "# bloccs-bench's plots, data inline: run `gnuplot plots.gp` in this directory.\n"
         "set encoding utf8\n" +
         rtt_plot(s) + "reset\n" + throughput_plot(s) + "reset\n" + backpressure_plot(s);
}

Status write_report(const Suite& suite, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Error{Errc::system_error,
                 "cannot make the report directory " + dir + ": " + ec.message()};
  const std::filesystem::path d(dir);
  for (const Status& st : {write_file(d / "results.json", to_json(suite).dump(2) + "\n"),
                           write_file(d / "results.md", markdown(suite, check_targets(suite))),
                           write_file(d / "plots.gp", gnuplot_script(suite))})
    if (!st) return st;
  return draw_plots(dir);
}

}  // namespace bloccs::bench
