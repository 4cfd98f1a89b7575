// SPDX-License-Identifier: Apache-2.0
// What the fuzz targets that read segment files share: a namespace of their own in /dev/shm,
// files written into it as a peer with write access could write them, and segment headers
// made to pass their checks, so that an input reaches the parsers behind the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shm/segment.hpp"

namespace bloccs::fuzz {

// This process's namespace: $BLOCCS_FUZZ_NAMESPACE (the ctest runner gives each target its
// own), else "fuzz-<pid>". Made at first use with a placeholder file in it, so that the
// directory stays while segments come and go; removed with everything in it at exit.
const std::string& ns();

// Writes `bytes` as the file `name` of the namespace (mode 0600), replacing it.
void write_file(std::string_view name, std::span<const std::uint8_t> bytes);
void remove_file(std::string_view name);

// Makes the first 64 bytes a header that passes Segment::open for `kind` and a file of
// bytes.size(): magic, version, kind, size, this user's uid, ready, checksum. The body is left
// as the fuzzer made it. bytes.size() must be at least sizeof(shm::SegmentHeader).
void repair_header(std::span<std::uint8_t> bytes, shm::SegmentKind kind);

// Reads every byte of `s`, so that ASan reports a span reaching outside what it may read.
std::uint64_t touch(std::span<const std::byte> s);
inline std::uint64_t touch(std::string_view s) {
  return touch(std::as_bytes(std::span<const char>(s.data(), s.size())));
}

// Aborts (a crash libFuzzer reports, with the input) if `ok` is false: a property the code
// promises, e.g. "a decoded payload lies inside its record".
void require(bool ok, const char* what);

// Takes `n` bytes off the front of the input (fewer if it is shorter): the fields a target
// reads before the bytes it writes into shared memory.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint64_t take(std::size_t n);  // up to 8 bytes, little endian; 0 past the end
  std::span<const std::uint8_t> rest() const { return {data_, size_}; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

}  // namespace bloccs::fuzz
