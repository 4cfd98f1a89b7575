// PLACEHOLDER: replaced by the peers' implementation.
#include "benchmarks/suite/transport.hpp"
namespace bloccs::bench {
std::span<const Transport> peer_transports() { return {}; }
}  // namespace bloccs::bench
