// SPDX-License-Identifier: Apache-2.0
// Reading a log file line by line, as the read node and the reference both do, so that they
// see the same lines: split at '\n', a final line without one included, one trailing '\r'
// dropped (a file written on Windows), and a line longer than kMaxLineBytes cut to that length
// with its full length reported (parse_line refuses it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

#include "bloccs/result.hpp"

namespace bloccs::logs {

struct Line {
  std::uint64_t number = 0;     // 1-based
  std::string_view text;        // at most kMaxLineBytes; valid during the call
  std::size_t full_length = 0;  // text.size() unless the line was cut
};

// Calls f for each line until it returns false or the file ends. Errc::not_found if the file
// cannot be opened, Errc::system_error if reading it fails.
Status for_each_line(const std::filesystem::path& file, const std::function<bool(const Line&)>& f);

}  // namespace bloccs::logs
