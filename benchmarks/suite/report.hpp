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

// results.json: {"machine": {...}, "results": [{"transport", "test", "bytes", "pushers",
// "count", "p50_ns", ..., "msgs_per_s", "bytes_per_s", ...}]}; fields that do not apply are left
// out.
nlohmann::json to_json(const Suite& suite);
// Reads what to_json wrote; Errc::bad_config naming the result and field that is wrong.
Result<Suite> from_json(const nlohmann::json& j);

// One target of the issue, checked on the run's own figures (64-byte messages).
struct TargetCheck {
  std::string name;              // e.g. "bloccs-spsc rtt p50 vs floor-spin"
  std::string rule;              // e.g. "<= 1.5 x floor-spin p50"
  std::optional<double> ratio;   // measured; empty when a figure it needs is missing
  bool met = false;
  std::string detail;            // the figures compared, the best peer, or what is missing
};
std::vector<TargetCheck> check_targets(const Suite& suite);
std::string format_targets(const std::vector<TargetCheck>& checks);  // one PASS/MISS line each

std::string markdown(const Suite& suite, const std::vector<TargetCheck>& checks);
// A self-contained gnuplot script (data inline) writing rtt.png, throughput.png and
// backpressure.png into the current directory.
std::string gnuplot_script(const Suite& suite);

// Writes results.json, results.md and plots.gp into `dir` (made if missing), then runs gnuplot
// there. Without gnuplot on PATH, the PNGs are skipped with a note on stderr.
Status write_report(const Suite& suite, const std::string& dir);

}  // namespace bloccs::bench
