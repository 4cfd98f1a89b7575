// Which requests the aggregate looks at: the failed ones and the slow ones. The filter node and
// the reference take the same options, registered here, so they cannot drift apart.
#pragma once

#include <cstdint>

#include <CLI/CLI.hpp>

#include "log_record.hpp"

namespace bloccs::logs {

struct FilterOptions {
  std::uint32_t min_status = 400;  // keep a request whose status is at least this ...
  std::uint32_t slow_ms = 1000;    // ... or whose latency is at least this
};

inline bool keep(const LogRecord& r, const FilterOptions& o) {
  return r.status >= o.min_status || r.latency_ms >= o.slow_ms;
}

inline void add_filter_options(CLI::App& app, FilterOptions& o) {
  app.add_option("--min-status", o.min_status, "keep requests with at least this status")
      ->check(CLI::Range(100, 600))
      ->capture_default_str();
  app.add_option("--slow-ms", o.slow_ms, "keep requests that took at least this many ms")
      ->capture_default_str();
}

}  // namespace bloccs::logs
