// SPDX-License-Identifier: Apache-2.0
// Command-line options of the example programs, parsed by CLI11 in one compiled file. CLI11 is
// header-only here, and compiling it into each small program cost about 45 s of build time per
// program and build (three builds in CI); declared as data, every program shares one copy.
//
//   std::uint64_t messages = 20'000;
//   if (int rc = parse_options(argc, argv, "the generator node",
//                              {{"--messages", "how many messages to emit", &messages}});
//       rc >= 0)
//     return rc;  // --help printed (0), or a usage error explained (non-zero)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace bloccs::examples {

struct Option {
  std::string name;  // "--messages"
  std::string help;
  std::variant<std::string*, std::uint64_t*, std::uint32_t*, int*, double*> value;
  bool required = false;
  std::optional<std::pair<double, double>> range = std::nullopt;  // inclusive
};

// Parses argv into the options' values. -1 when the program should go on; otherwise the exit
// status to return (after printing the help, or what was wrong with the arguments).
int parse_options(int argc, char** argv, const std::string& description,
                  const std::vector<Option>& options);

}  // namespace bloccs::examples
