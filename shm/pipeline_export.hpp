// SPDX-License-Identifier: Apache-2.0
// BLOCCS_FOR_PIPELINE: a layer type or function that libbloccs.so exports although it is not
// API, because libbloccs-pipeline.so (the node runtime) builds on it: the node block is a
// segment with a liveness lock. No header of these is installed, so no user can reach them.
#pragma once

#define BLOCCS_FOR_PIPELINE __attribute__((visibility("default")))
