// SPDX-License-Identifier: Apache-2.0
// What the pipeline computes: per route, per status and per hour, over the requests the filter
// kept. Order-free (counts, sums, and percentiles of the sorted latencies), so the distributed
// run and the single-process reference agree whatever order the records arrive in.
//
// The report, tab-separated, sections in this order, rows sorted by their first column:
//
//   # bloccs-logs report
//   total	<requests>
//   route	requests	4xx	5xx	bytes	p50_ms	p99_ms	max_ms
//   <route>	...                       one row per route
//   status	requests
//   <status>	...                       one row per status
//   hour_utc	requests	5xx
//   <yyyy-mm-ddThh>	...               one row per hour
//
// Percentiles are nearest-rank: the smallest latency with at least p% of the route's
// requests at or below it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bloccs/result.hpp"
#include "log_record.hpp"

namespace bloccs::logs {

class Aggregate {
 public:
  void add(const LogRecord& r);
  std::uint64_t requests() const { return requests_; }
  std::string report() const;
  // Writes the report to `file` (relative to the working directory) through a temporary file
  // and a rename, so a reader never sees half a report.
  Status write(const std::filesystem::path& file) const;

 private:
  struct Route {
    std::uint64_t client_errors = 0, server_errors = 0, bytes = 0;
    std::vector<std::uint32_t> latencies;
  };
  struct Hour {
    std::uint64_t requests = 0, server_errors = 0;
  };
  std::uint64_t requests_ = 0;
  std::map<std::string, Route> routes_;
  std::map<std::uint32_t, std::uint64_t> statuses_;
  std::map<std::string, Hour> hours_;
};

}  // namespace bloccs::logs
