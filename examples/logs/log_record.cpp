// SPDX-License-Identifier: Apache-2.0
#include "log_record.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <optional>

#include "log_time.hpp"

namespace bloccs::logs {
namespace {

// At most this much of a bad field is quoted in an error: reasons travel in dead letters'
// meta (256 bytes at most), and the whole line travels beside them anyway.
constexpr std::size_t kExcerpt = 32;

std::string excerpt(std::string_view s) {
  return s.size() <= kExcerpt ? std::string(s) : std::string(s.substr(0, kExcerpt)) + "...";
}

template <class T>
std::optional<T> number(std::string_view s) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_ipv4(std::string_view s) {
  for (int part = 0; part < 4; ++part) {
    const std::size_t dot = part < 3 ? s.find('.') : s.size();
    if (dot == std::string_view::npos || dot == 0 || dot > 3) return false;
    const auto v = number<unsigned>(s.substr(0, dot));
    if (!v || *v > 255) return false;
    s.remove_prefix(dot == s.size() ? dot : dot + 1);
  }
  return s.empty();
}

// Loose on purpose: hex groups and colons (an IPv4 tail allowed); no zone ids.
bool is_ipv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45 || s.find(':') == std::string_view::npos) return false;
  for (char c : s)
    if (!is_hex(c) && c != ':' && c != '.') return false;
  return true;
}

bool is_id_segment(std::string_view seg) {
  if (seg.empty()) return false;
  bool all_digits = true, hex_or_dash = true, any_digit = false;
  for (char c : seg) {
    all_digits = all_digits && is_digit(c);
    hex_or_dash = hex_or_dash && (is_hex(c) || c == '-');
    any_digit = any_digit || is_digit(c);
  }
  return all_digits || (hex_or_dash && any_digit && seg.size() >= 16);
}

// Walks a line left to right; every error names the column it is about (1-based).
class Cursor {
 public:
  explicit Cursor(std::string_view line) : line_(line) {}

  bool done() const { return at_ == line_.size(); }
  Error error_at(std::size_t at, const std::string& what) const {
    return {Errc::corrupt, what + " (column " + std::to_string(at + 1) + ")"};
  }
  Error error(const std::string& what) const { return error_at(at_, what); }
  // A field read well whose value is wrong: "status '2O0' is not ... (column 61)".
  Error bad(std::string_view name, std::string_view value, std::string_view why) const {
    return error_at(start_, std::string(name) + " '" + excerpt(value) + "' " + std::string(why));
  }

  Status expect(char c, std::string_view before) {
    if (!done() && line_[at_] == c) {
      ++at_;
      return {};
    }
    const std::string found =
        done() ? "the end of the line" : "'" + std::string(1, line_[at_]) + "'";
    return error(std::string("expected '") + c + "' before the " + std::string(before) +
                 ", found " + found);
  }
  // The characters up to the next space or the end; an error if there are none.
  Result<std::string_view> word(std::string_view what) {
    start_ = at_;
    at_ = std::min(line_.find(' ', at_), line_.size());
    if (at_ == start_)
      return error("expected the " + std::string(what) + ", found " +
                   (done() ? "the end of the line" : "a space"));
    return line_.substr(start_, at_ - start_);
  }
  // A space, then a word.
  Result<std::string_view> next(std::string_view what) {
    if (Status st = expect(' ', what); !st) return std::move(st).error();
    return word(what);
  }
  // Text up to `close`, which is consumed.
  Result<std::string_view> until(char close, std::string_view what) {
    start_ = at_;
    const std::size_t end = line_.find(close, at_);
    if (end == std::string_view::npos)
      return error("the " + std::string(what) + " has no closing '" + close + "'");
    at_ = end + 1;
    return line_.substr(start_, end - start_);
  }
  // A space, then a double-quoted field, in which \" and \\ stand for " and \.
  Result<std::string> quoted(std::string_view what) {
    if (Status st = expect(' ', what); !st) return std::move(st).error();
    if (Status st = expect('"', what); !st) return std::move(st).error();
    start_ = at_;
    std::string out;
    for (; at_ < line_.size(); ++at_) {
      char c = line_[at_];
      if (c == '"') {
        ++at_;
        return out;
      }
      if (c == '\\' && at_ + 1 < line_.size() && (line_[at_ + 1] == '"' || line_[at_ + 1] == '\\'))
        c = line_[++at_];
      out.push_back(c);
    }
    return error_at(start_ - 1, "the " + std::string(what) + " has no closing '\"'");
  }

 private:
  std::string_view line_;
  std::size_t at_ = 0;
  std::size_t start_ = 0;  // where the last field read began
};

// What makes a line unreadable before its fields are looked at.
Status check_bytes(std::string_view line, std::size_t full_length) {
  if (full_length > kMaxLineBytes)
    return Error{Errc::corrupt, "line of " + std::to_string(full_length) +
                                    " bytes is longer than the limit of " +
                                    std::to_string(kMaxLineBytes)};
  if (line.empty()) return Error{Errc::corrupt, "empty line"};
  for (std::size_t i = 0; i < line.size(); ++i) {
    const auto b = static_cast<unsigned char>(line[i]);
    if (b < 0x20 || b == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", b);
      return Error{Errc::corrupt, std::string("control character ") + hex + " (column " +
                                      std::to_string(i + 1) + ")"};
    }
  }
  return {};
}

// " [10/Mar/2024:01:00:00 +0100]"
Status parse_time(Cursor& c, LogRecord& r) {
  if (Status st = c.expect(' ', "timestamp"); !st) return st;
  if (Status st = c.expect('[', "timestamp"); !st) return st;
  auto stamp = c.until(']', "timestamp");
  if (!stamp) return std::move(stamp).error();
  auto time = parse_log_time(*stamp);
  if (!time) return c.bad("timestamp", *stamp, time.error().message);
  r.time = *time;
  return {};
}

// ' "GET /path HTTP/1.1"': method and route.
Status parse_request(Cursor& c, LogRecord& r) {
  auto request = c.quoted("request");
  if (!request) return std::move(request).error();
  const std::string_view req = *request;
  const std::size_t sp1 = req.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : req.find(' ', sp1 + 1);
  const auto bad = [&] { return c.bad("request", req, "is not 'METHOD /path HTTP/x.y'"); };
  if (sp2 == std::string_view::npos || req.find(' ', sp2 + 1) != std::string_view::npos)
    return bad();
  const std::string_view method = req.substr(0, sp1);
  const std::string_view target = req.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method.empty() || method.size() > 16) return bad();
  for (char ch : method)
    if (ch < 'A' || ch > 'Z') return bad();
  if (!target.starts_with('/') || !req.substr(sp2 + 1).starts_with("HTTP/")) return bad();
  r.method = method;
  r.route = route_of(target);
  return {};
}

}  // namespace

Result<LogRecord> parse_line(std::string_view line, std::size_t full_length) {
  if (Status st = check_bytes(line, full_length); !st) return std::move(st).error();
  LogRecord r;
  Cursor c(line);
  auto client = c.word("client address");
  if (!client) return std::move(client).error();
  if (!is_ipv4(*client) && !is_ipv6(*client))
    return c.bad("client", *client, "is not an IPv4 or IPv6 address");
  r.client = *client;
  for (const char* field : {"identity", "user"})
    if (auto w = c.next(field); !w) return std::move(w).error();
  if (Status st = parse_time(c, r); !st) return std::move(st).error();
  if (Status st = parse_request(c, r); !st) return std::move(st).error();

  auto status = c.next("status");
  if (!status) return std::move(status).error();
  const auto code = number<std::uint32_t>(*status);
  if (status->size() != 3 || !code || *code < 100 || *code > 599)
    return c.bad("status", *status, "is not an HTTP status (100..599)");
  r.status = *code;
  auto size = c.next("size");
  if (!size) return std::move(size).error();
  const auto bytes = *size == "-" ? std::optional<std::uint64_t>(0) : number<std::uint64_t>(*size);
  if (!bytes) return c.bad("size", *size, "is not a byte count or '-'");
  r.bytes = *bytes;

  for (const char* field : {"referer", "user agent"})
    if (auto q = c.quoted(field); !q) return std::move(q).error();
  auto latency = c.next("latency");
  if (!latency) return std::move(latency).error();
  const auto ms = number<std::uint32_t>(*latency);
  if (!ms) return c.bad("latency", *latency, "is not a whole number of ms");
  r.latency_ms = *ms;
  if (!c.done()) return c.error("unexpected text after the latency");
  return r;
}

std::string reject_reason(std::uint64_t line_number, const Error& error) {
  return "line " + std::to_string(line_number) + ": " + error.message;
}

std::string route_of(std::string_view target) {
  target = target.substr(0, std::min(target.find('?'), target.find('#')));
  std::string out;
  while (!target.empty()) {
    const std::size_t slash = target.find('/', 1);
    std::string_view seg = target.substr(0, slash);  // with its leading '/'
    const bool lead = seg.starts_with('/');
    if (is_id_segment(lead ? seg.substr(1) : seg)) {
      if (lead) out.push_back('/');
      out += "{id}";
    } else {
      out += seg;
    }
    target.remove_prefix(seg.size());
  }
  return out;
}

std::string encode(const LogRecord& r) {
  std::string out;
  out.reserve(r.client.size() + r.method.size() + r.route.size() + 48);
  const auto field = [&out](std::string_view s) { out.append(s).push_back('\t'); };
  field(r.client);
  field(std::to_string(r.time));
  field(r.method);
  field(r.route);
  field(std::to_string(r.status));
  field(std::to_string(r.bytes));
  out += std::to_string(r.latency_ms);
  return out;
}

Result<LogRecord> decode(std::string_view text) {
  std::string_view f[7];
  std::size_t n = 0;
  for (std::string_view rest = text;; ++n) {
    const std::size_t tab = rest.find('\t');
    if (n < 7) f[n] = rest.substr(0, tab);
    if (tab == std::string_view::npos) break;
    rest.remove_prefix(tab + 1);
  }
  const auto bad = [&](const std::string& why) {
    return Error{Errc::corrupt, "record '" + excerpt(text) + "' " + why +
                                    ": is this node wired to the output of bloccs-logs-parse?"};
  };
  if (n + 1 != 7) return bad("has " + std::to_string(n + 1) + " fields, not 7");
  LogRecord r{std::string(f[0]), 0, std::string(f[2]), std::string(f[3]), 0, 0, 0};
  const auto time = number<std::int64_t>(f[1]);
  const auto status = number<std::uint32_t>(f[4]);
  const auto bytes = number<std::uint64_t>(f[5]);
  const auto latency = number<std::uint32_t>(f[6]);
  if (!time || !status || !bytes || !latency) return bad("has a field that is not a number");
  r.time = *time;
  r.status = *status;
  r.bytes = *bytes;
  r.latency_ms = *latency;
  return r;
}

}  // namespace bloccs::logs
