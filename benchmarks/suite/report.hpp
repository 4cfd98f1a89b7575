// PLACEHOLDER
#pragma once
#include "benchmarks/suite/figure.hpp"
