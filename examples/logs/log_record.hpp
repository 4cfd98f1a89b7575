// SPDX-License-Identifier: Apache-2.0
// One request of a web access log: the line format, its parser, and the compact form the
// pipeline's nodes pass to each other.
//
// A line (Combined Log Format plus the request's latency in milliseconds, last):
//
//   203.0.113.7 - alice [10/Oct/2024:13:55:36 +0000] "GET /api/users/42?x=1 HTTP/1.1" 200 2326 "-"
//   "curl/8.4.0" 37 client      ident user  timestamp                 method target protocol status
//   bytes referer agent latency
//
// The client is an IPv4 or IPv6 address; bytes is a number or "-" (none sent); in quoted fields
// \" and \\ stand for " and \ (any other backslash stays, as in nginx's \xHH). A line with a
// control character, longer than kMaxLineBytes, or off this grammar anywhere is malformed:
// parse_line says where and why.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::logs {

// Longer lines are malformed (a request line that long is an attack or a bug). The reader cuts
// them to this length, so that what travels stays under the ports' max_payload.
inline constexpr std::size_t kMaxLineBytes = 2048;

struct LogRecord {
  std::string client;
  std::int64_t time = 0;  // seconds since the Unix epoch, UTC
  std::string method;
  std::string route;  // the path without its query, each id segment replaced by {id}
  std::uint32_t status = 0;
  std::uint64_t bytes = 0;
  std::uint32_t latency_ms = 0;
  friend bool operator==(const LogRecord&, const LogRecord&) = default;
};

// Parses one line (without its newline). `full_length` is the length of the line as it was in
// the file, when `line` is a cut copy of it. Errc::corrupt says what is wrong and at which
// column (1-based), e.g. "status 'x04' is not a 3-digit HTTP status (column 67)".
Result<LogRecord> parse_line(std::string_view line, std::size_t full_length);
inline Result<LogRecord> parse_line(std::string_view line) {
  return parse_line(line, line.size());
}

// The reason a line was refused, as the parse node and the reference both report it.
std::string reject_reason(std::uint64_t line_number, const Error& error);

// "/api/users/42/orders?page=2" -> "/api/users/{id}/orders": segments of digits, and long hex
// or UUID-like segments, are ids.
std::string route_of(std::string_view target);

// The record between nodes: its fields, tab-separated, in declaration order. No field holds a
// tab: the parser refuses control characters.
std::string encode(const LogRecord& record);
Result<LogRecord> decode(std::string_view text);

}  // namespace bloccs::logs
