// SPDX-License-Identifier: Apache-2.0
// Meta: building it, and its encoding in a record (layout drawn in meta_codec.hpp).
#include <cstring>
#include <string>

#include "port/meta_codec.hpp"

namespace bloccs {
namespace {

Error meta_error(const std::string& what) {
  return {Errc::bad_meta, "meta " + what + "; nothing was enqueued. Limits: " +
                              std::to_string(kMetaMaxPairs) + " pairs, keys of 1 to " +
                              std::to_string(kMetaMaxKey) + " bytes, values up to " +
                              std::to_string(kMetaMaxValue) + " bytes, " +
                              std::to_string(kMetaMaxBytes) + " bytes encoded in all"};
}

std::uint32_t load_u32(const std::byte* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

std::uint16_t load_u16(const std::byte* p) noexcept {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

Meta& Meta::set(std::string_view key, std::string_view value) {
  for (auto& [k, v] : values)
    if (k == key) {
      v = value;
      return *this;
    }
  values.emplace_back(key, value);
  return *this;
}

std::optional<std::string_view> Meta::get(std::string_view key) const {
  for (const auto& [k, v] : values)
    if (k == key) return std::string_view(v);
  return std::nullopt;
}

std::optional<std::string_view> MetaView::get(std::string_view key) const {
  std::optional<std::string_view> found;
  for_each([&](std::string_view k, std::string_view v) {
    if (!found && k == key) found = v;
  });
  return found;
}

Meta MetaView::copy() const {
  Meta m;
  m.attempt = attempt_;
  m.values.reserve(pairs_);
  for_each([&](std::string_view k, std::string_view v) { m.values.emplace_back(k, v); });
  return m;
}

Result<std::size_t> MetaCodec::encode(const Meta& meta, std::span<std::byte, kMetaMaxBytes> out) {
  if (meta.values.size() > kMetaMaxPairs)
    return meta_error("has " + std::to_string(meta.values.size()) + " pairs");
  std::size_t at = kMetaFixed;
  for (std::size_t i = 0; i < meta.values.size(); ++i) {
    const auto& [k, v] = meta.values[i];
    if (k.empty() || k.size() > kMetaMaxKey)
      return meta_error("key '" + k.substr(0, kMetaMaxKey) + "' has " + std::to_string(k.size()) +
                        " bytes");
    if (v.size() > kMetaMaxValue)
      return meta_error("value of key '" + k + "' has " + std::to_string(v.size()) + " bytes");
    for (std::size_t j = 0; j < i; ++j)
      if (meta.values[j].first == k) return meta_error("has the key '" + k + "' twice");
    if (at + 3 + k.size() + v.size() > kMetaMaxBytes)
      return meta_error("takes more than " + std::to_string(kMetaMaxBytes) + " bytes encoded");
    out[at] = static_cast<std::byte>(k.size());
    out[at + 1] = static_cast<std::byte>(v.size() & 0xff);
    out[at + 2] = static_cast<std::byte>(v.size() >> 8);
    std::memcpy(out.data() + at + 3, k.data(), k.size());
    if (!v.empty()) std::memcpy(out.data() + at + 3 + k.size(), v.data(), v.size());
    at += 3 + k.size() + v.size();
  }
  const std::uint32_t attempt = meta.attempt;
  const auto pair_bytes = static_cast<std::uint16_t>(at - kMetaFixed);
  std::memcpy(out.data(), &attempt, 4);
  std::memcpy(out.data() + 4, &pair_bytes, 2);
  out[6] = static_cast<std::byte>(meta.values.size());
  out[7] = std::byte{0};
  return at;
}

bool MetaCodec::decode(std::span<const std::byte> record, MetaView& meta,
                       std::span<const std::byte>& payload, std::uint64_t& stamp) noexcept {
  if (record.size() < kMetaFixed) return false;
  const std::byte* p = record.data();
  const std::size_t pair_bytes = load_u16(p + 4);
  const auto pairs = static_cast<std::size_t>(p[6]);
  const std::byte flags = p[7];  // read once: a peer may rewrite it meanwhile
  const std::size_t stamp_bytes = flags == kStamped ? kStampBytes : 0;
  if ((flags != std::byte{0} && flags != kStamped) || pairs > kMetaMaxPairs ||
      kMetaFixed + pair_bytes + stamp_bytes > record.size() ||
      kMetaFixed + pair_bytes > kMetaMaxBytes)
    return false;
  // Walk the pairs once: every length must stay inside the pair area, and fill it exactly.
  // Keys are unique, as push makes them: a record with a key twice is refused (found by the
  // meta_decode fuzz target: the consumer took what no pusher could send, and a node that
  // passed its meta on got bad_meta for it).
  std::size_t at = kMetaFixed;
  const std::size_t end = kMetaFixed + pair_bytes;
  std::size_t key_at[kMetaMaxPairs];  // where each pair starts; left uninitialised: no cost
  for (std::size_t i = 0; i < pairs; ++i) {  // without pairs (the common case) it costs nothing
    if (at + 3 > end) return false;
    const std::size_t k = static_cast<std::size_t>(p[at]);
    const std::size_t v = load_u16(p + at + 1);
    if (k == 0 || k > kMetaMaxKey || v > kMetaMaxValue || at + 3 + k + v > end) return false;
    // An earlier key compared over k bytes ends before this one's do: inside the record even
    // if a peer rewrites its length byte meanwhile.
    for (std::size_t j = 0; j < i; ++j)
      if (static_cast<std::size_t>(p[key_at[j]]) == k &&
          std::memcmp(p + key_at[j] + 3, p + at + 3, k) == 0)
        return false;
    key_at[i] = at;
    at += 3 + k + v;
  }
  if (at != end) return false;
  meta.attempt_ = load_u32(p);
  meta.pairs_ = static_cast<std::uint32_t>(pairs);
  meta.encoded_ = record.subspan(kMetaFixed, pair_bytes);
  stamp = 0;
  if (stamp_bytes) std::memcpy(&stamp, p + end, kStampBytes);
  payload = record.subspan(end + stamp_bytes);
  return true;
}

}  // namespace bloccs
