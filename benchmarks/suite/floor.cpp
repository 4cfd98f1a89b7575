// PLACEHOLDER
#include "benchmarks/suite/transport.hpp"
namespace bloccs::bench {
std::span<const Transport> floor_transports() { return {}; }
}  // namespace bloccs::bench
