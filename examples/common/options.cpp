// SPDX-License-Identifier: Apache-2.0
#include "options.hpp"

#include <CLI/CLI.hpp>

namespace bloccs::examples {

int parse_options(int argc, char** argv, const std::string& description,
                  const std::vector<Option>& options) {
  CLI::App app{description};
  for (const Option& o : options) {
    CLI::Option* opt =
        std::visit([&](auto* value) { return app.add_option(o.name, *value, o.help); }, o.value);
    opt->capture_default_str();
    if (o.required) opt->required();
    if (o.range) opt->check(CLI::Range(o.range->first, o.range->second));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

}  // namespace bloccs::examples
