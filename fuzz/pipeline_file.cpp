// SPDX-License-Identifier: Apache-2.0
// Pipeline files (bloccs/pipeline.hpp) as `bloccs check` and `bloccs run` read what a user
// wrote: any text gives a spec or a bad_config error that names the file, never a crash,
// a hang or an exception.
#include <string_view>

#include "bloccs/pipeline.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = bloccs::parse_pipeline(text, "fuzz.toml", {.check_programs = false});
  if (!spec) {
    bloccs::fuzz::require(spec.code() == bloccs::Errc::bad_config,
                          "a pipeline file that does not check out is bad_config");
    bloccs::fuzz::require(spec.error().message.find("fuzz.toml") != std::string::npos,
                          "its error names the file");
  }
  return 0;
}
