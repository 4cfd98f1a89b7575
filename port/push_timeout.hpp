// SPDX-License-Identifier: Apache-2.0
// The process-wide push_timeout, as the push path reads it.
#pragma once

namespace bloccs::port {

// True once the setting is known to be infinite (the default): one relaxed load, so a push pays
// nothing for a timeout it does not have. False also while the environment is not read yet.
bool push_timeout_is_infinite() noexcept;

}  // namespace bloccs::port
