// PLACEHOLDER
#include "benchmarks/suite/report.hpp"
