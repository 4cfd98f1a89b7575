// SPDX-License-Identifier: Apache-2.0
// Which requests the aggregate looks at: the failed ones and the slow ones. The filter node and
// the reference take the same options, registered here, so they cannot drift apart.
#pragma once

#include <cstdint>
#include <vector>

#include "log_record.hpp"
#include "options.hpp"

namespace bloccs::logs {

struct FilterOptions {
  std::uint32_t min_status = 400;  // keep a request whose status is at least this ...
  std::uint32_t slow_ms = 1000;    // ... or whose latency is at least this
};

inline bool keep(const LogRecord& r, const FilterOptions& o) {
  return r.status >= o.min_status || r.latency_ms >= o.slow_ms;
}

inline std::vector<examples::Option> filter_options(FilterOptions& o) {
  return {{"--min-status", "keep requests with at least this status", &o.min_status, false,
           std::pair{100.0, 600.0}},
          {"--slow-ms", "keep requests that took at least this many ms", &o.slow_ms}};
}

}  // namespace bloccs::logs
