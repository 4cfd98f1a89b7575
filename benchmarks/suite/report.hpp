// SPDX-License-Identifier: Apache-2.0
// What a run leaves behind: results.json (for tools comparing runs), results.md (every figure
// beside the floor or the best peer, and the targets) and PNG plots drawn by gnuplot.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "benchmarks/suite/figure.hpp"
#include "bloccs/result.hpp"

namespace bloccs::bench {

// results.json: {"machine": {date, host, cpu_model, cpus, pinned, kernel, compiler, build_type,
// command, quick}, "results": [{transport, test, bytes, pushers, count, p50_ns, p90_ns, p99_ns,
// p999_ns, max_ns, msgs_per_s, bytes_per_s, consumer_alone_msgs_per_s, pusher_cpu}]}.
// Fields that do not apply (or are not finite) are left out.
nlohmann::json to_json(const Suite& suite);
// Reads what to_json wrote (bytes_per_s is derived, so ignored); Errc::bad_config naming the
// result and the field that is missing or wrong.
Result<Suite> from_json(const nlohmann::json& j);

// One target of the issue, checked on the run's own 64-byte figures.
struct TargetCheck {
  std::string name;             // e.g. "bloccs-spsc rtt p50 vs floor-spin"
  std::string rule;             // e.g. "<= 1.5 x floor-spin rtt p50"
  std::optional<double> ratio;  // as the rule defines it; empty when a figure is missing
  double limit = 0;             // the bound the rule puts on ratio
  bool met = false;
  std::string detail;  // the figures compared and the best peer, or what is missing
};
std::vector<TargetCheck> check_targets(const Suite& suite);
// One line per target: PASS or MISS, the ratio, the rule, the figures.
std::string format_targets(const std::vector<TargetCheck>& checks);
// The time-in-queue histogram's cost per message (bloccs-spsc minus bloccs-spsc-nohist), one
// line per size, against its budget of 10 ns; empty if either was not measured.
std::string format_histogram_cost(const Suite& suite);

// The machine, then tables: round trip, throughput, back-pressure, targets.
std::string markdown(const Suite& suite, const std::vector<TargetCheck>& checks);
// A self-contained gnuplot script (data inline) writing into the current directory rtt.png
// (one panel per message size), throughput.png (one panel per size) and backpressure.png;
// a plot with nothing measured is not drawn.
std::string gnuplot_script(const Suite& suite);

// Writes results.json, results.md and plots.gp into `dir` (made if missing), then runs
// `gnuplot plots.gp` there. Without gnuplot on PATH the PNGs are skipped with a note on stderr;
// a gnuplot failure is an error carrying its output.
Status write_report(const Suite& suite, const std::string& dir);

}  // namespace bloccs::bench
