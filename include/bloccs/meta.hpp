// SPDX-License-Identifier: Apache-2.0
// Metadata that travels with every message, unchanged: the retry counter `attempt` and a small
// set of user key/value pairs.
//
// Limits (push refuses more with Errc::bad_meta and enqueues nothing):
//   at most kMetaMaxPairs pairs; keys 1..kMetaMaxKey bytes, unique; values 0..kMetaMaxValue bytes;
//   the encoded whole at most kMetaMaxBytes (8 bytes + 3 per pair + the keys and values).
// Keys and values are bytes: any encoding, NULs included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bloccs/result.hpp"

namespace bloccs {
struct MetaCodec;  // port/meta_codec.hpp: meta in records; a friend, not API
}  // namespace bloccs

#pragma GCC visibility push(default)  // the API: what libbloccs.so exports
namespace bloccs {

inline constexpr std::size_t kMetaMaxPairs = 16;
inline constexpr std::size_t kMetaMaxKey = 64;
inline constexpr std::size_t kMetaMaxValue = 256;
inline constexpr std::size_t kMetaMaxBytes = 512;

struct Meta {
  std::uint32_t attempt = 0;
  std::vector<std::pair<std::string, std::string>> values;

  // Sets `key` (replacing an existing value) and returns *this, for chaining.
  Meta& set(std::string_view key, std::string_view value);
  std::optional<std::string_view> get(std::string_view key) const;
  friend bool operator==(const Meta&, const Meta&) = default;
};

// Meta as it lies in the ring, decoded in place (valid while the MessageView is). Checked on
// receipt: a record whose meta does not parse (a peer wrote garbage) is dropped before anyone
// sees it, and counted (PortStats::refused).
class MetaView {
 public:
  MetaView() = default;
  std::uint32_t attempt() const noexcept { return attempt_; }
  std::size_t size() const noexcept { return pairs_; }
  std::optional<std::string_view> get(std::string_view key) const;
  // Calls f(std::string_view key, std::string_view value) for each pair, in the pushed order.
  template <class F>
  void for_each(F&& f) const;
  Meta copy() const;

 private:
  friend struct MetaCodec;
  std::uint32_t attempt_ = 0;
  std::uint32_t pairs_ = 0;
  std::span<const std::byte> encoded_;  // the pairs: [klen u8][vlen u16 LE][key][value] ...
};

template <class F>
void MetaView::for_each(F&& f) const {
  // The lengths were checked on receipt, but they lie in shared memory: a peer could rewrite
  // them since. Check each again against the bytes the view covers (never read past them).
  const std::byte* p = encoded_.data();
  const std::byte* const end = p + encoded_.size();
  for (std::uint32_t i = 0; i < pairs_ && end - p >= 3; ++i) {
    const std::size_t k = static_cast<std::size_t>(p[0]);
    const std::size_t v = static_cast<std::size_t>(p[1]) | static_cast<std::size_t>(p[2]) << 8;
    if (static_cast<std::size_t>(end - p) < 3 + k + v) return;
    const char* s = reinterpret_cast<const char*>(p + 3);
    f(std::string_view(s, k), std::string_view(s + k, v));
    p += 3 + k + v;
  }
}

}  // namespace bloccs
#pragma GCC visibility pop
