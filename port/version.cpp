// SPDX-License-Identifier: Apache-2.0
// The library's own version (bloccs/version.hpp), compiled in: what a program linked against.
#include "bloccs/version.hpp"

namespace bloccs {

const char* version() noexcept { return BLOCCS_VERSION; }

}  // namespace bloccs
