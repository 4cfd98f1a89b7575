// SPDX-License-Identifier: Apache-2.0
// Access-log timestamps, "10/Oct/2024:13:55:36 +0200", to and from seconds since the Unix
// epoch (UTC). The offset is honoured: two servers in different zones agree on the hour.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::logs {

// The text between the brackets of a log line. Errc::corrupt saying what is wrong with it (a month
// that is not Jan..Dec, the 31st of February, an offset that is not +hhmm/-hhmm, ...).
Result<std::int64_t> parse_log_time(std::string_view text);

// The same form, for `offset_minutes` east of UTC (the generator writes it).
std::string format_log_time(std::int64_t epoch_seconds, int offset_minutes);

// The UTC hour an instant falls in, "2024-10-10T13": the aggregate's per-hour key, which sorts
// as text in time order.
std::string format_utc_hour(std::int64_t epoch_seconds);

}  // namespace bloccs::logs
