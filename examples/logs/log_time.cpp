// SPDX-License-Identifier: Apache-2.0
#include "log_time.hpp"

#include <array>
#include <chrono>
#include <cstdio>

namespace bloccs::logs {
namespace {

using namespace std::chrono;

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The caller names the field and shows the text; this says what is wrong with it.
Error bad(const std::string& why) {
  return Error{Errc::corrupt, why + "; expected dd/Mon/yyyy:hh:mm:ss +hhmm"};
}

// Digits at text[at, at + n) as a number; -1 if any is not a digit.
int digits(std::string_view text, std::size_t at, std::size_t n) {
  int v = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return -1;
    v = v * 10 + (text[i] - '0');
  }
  return v;
}

}  // namespace

Result<std::int64_t> parse_log_time(std::string_view text) {
  // 0         1         2
  // 0123456789012345678901234
  // 10/Oct/2024:13:55:36 +0200
  if (text.size() != 26) return bad("has " + std::to_string(text.size()) + " characters, not 26");
  if (text[2] != '/' || text[6] != '/' || text[11] != ':' || text[14] != ':' || text[17] != ':' ||
      text[20] != ' ')
    return bad("has a separator out of place");
  const int day = digits(text, 0, 2), year = digits(text, 7, 4);
  const int hour = digits(text, 12, 2), minute = digits(text, 15, 2), second = digits(text, 18, 2);
  if (day < 0 || year < 0 || hour < 0 || minute < 0 || second < 0)
    return bad("has a non-digit where a number belongs");
  unsigned month = 0;
  while (month < kMonths.size() && kMonths[month] != text.substr(3, 3)) ++month;
  if (month == kMonths.size()) return bad("names no month (Jan..Dec)");
  const year_month_day date{std::chrono::year(year), std::chrono::month(month + 1),
                            std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return bad("is not a calendar date");
  if (hour > 23 || minute > 59 || second > 60)  // 60: a leap second, counted as the next one
    return bad("is not a time of day");
  const int zh = digits(text, 22, 2), zm = digits(text, 24, 2);
  if ((text[21] != '+' && text[21] != '-') || zh < 0 || zm < 0 || zh > 14 || zm > 59)
    return bad("has no valid UTC offset");
  const int offset = (text[21] == '-' ? -1 : 1) * (zh * 60 + zm);
  const auto local =
      sys_days(date).time_since_epoch() + hours(hour) + minutes(minute) + seconds(second);
  return static_cast<std::int64_t>(duration_cast<seconds>(local - minutes(offset)).count());
}

std::string format_log_time(std::int64_t epoch_seconds, int offset_minutes) {
  const sys_seconds local{seconds(epoch_seconds) + minutes(offset_minutes)};
  const sys_days day = floor<days>(local);
  const year_month_day date(day);
  const hh_mm_ss clock(local - day);
  const int z = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  char out[64];  // room for any int: the compiler cannot know the fields are small
  std::snprintf(
      out, sizeof out, "%02u/%.3s/%04d:%02d:%02d:%02d %c%02d%02d",
      static_cast<unsigned>(date.day()), kMonths[static_cast<unsigned>(date.month()) - 1].data(),
      static_cast<int>(date.year()), static_cast<int>(clock.hours().count()),
      static_cast<int>(clock.minutes().count()), static_cast<int>(clock.seconds().count()),
      offset_minutes < 0 ? '-' : '+', z / 60, z % 60);
  return out;
}

std::string format_utc_hour(std::int64_t epoch_seconds) {
  const sys_seconds t{seconds(epoch_seconds)};
  const sys_days day = floor<days>(t);
  const year_month_day date(day);
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<int>(floor<hours>(t - day).count()));
  return out;
}

}  // namespace bloccs::logs
