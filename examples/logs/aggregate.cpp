// SPDX-License-Identifier: Apache-2.0
#include "aggregate.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "log_time.hpp"

namespace bloccs::logs {
namespace {

// Nearest rank over sorted values: the ceil(p/100 * n)-th smallest (1-based).
std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, std::uint32_t p) {
  const std::size_t n = sorted.size();
  const std::size_t rank = (static_cast<std::size_t>(p) * n + 99) / 100;
  return sorted[rank == 0 ? 0 : rank - 1];
}

}  // namespace

void Aggregate::add(const LogRecord& r) {
  ++requests_;
  Route& route = routes_[r.route];
  route.client_errors += r.status >= 400 && r.status < 500;
  route.server_errors += r.status >= 500;
  route.bytes += r.bytes;
  route.latencies.push_back(r.latency_ms);
  ++statuses_[r.status];
  Hour& hour = hours_[format_utc_hour(r.time)];
  ++hour.requests;
  hour.server_errors += r.status >= 500;
}

std::string Aggregate::report() const {
  std::string out = "# bloccs-logs report\ntotal\t" + std::to_string(requests_) + "\n";
  const auto row = [&out](std::initializer_list<std::string> fields) {
    for (const std::string& f : fields) out.append(f).push_back('\t');
    out.back() = '\n';
  };
  using std::to_string;
  row({"route", "requests", "4xx", "5xx", "bytes", "p50_ms", "p99_ms", "max_ms"});
  for (const auto& [name, r] : routes_) {
    std::vector<std::uint32_t> sorted = r.latencies;
    std::sort(sorted.begin(), sorted.end());
    row({name, to_string(sorted.size()), to_string(r.client_errors), to_string(r.server_errors),
         to_string(r.bytes), to_string(percentile(sorted, 50)), to_string(percentile(sorted, 99)),
         to_string(sorted.back())});
  }
  row({"status", "requests"});
  for (const auto& [status, n] : statuses_) row({to_string(status), to_string(n)});
  row({"hour_utc", "requests", "5xx"});
  for (const auto& [hour, h] : hours_)
    row({hour, to_string(h.requests), to_string(h.server_errors)});
  return out;
}

Status Aggregate::write(const std::filesystem::path& file) const {
  const std::string text = report();
  const std::string tmp = file.string() + ".tmp";
  const auto failed = [&](const char* what) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    return Error{Errc::system_error, std::string("cannot ") + what + " the report " +
                                         file.string() + " (" + why +
                                         "): check that its directory exists and is writable"};
  };
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return failed("write");
  const bool wrote = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !wrote) return failed("write");
  if (std::rename(tmp.c_str(), file.c_str()) != 0) return failed("rename into");
  return {};
}

}  // namespace bloccs::logs
