// SPDX-License-Identifier: Apache-2.0
// How meta lies in a record, in front of the payload:
//
//   0        4          6       7       8                                     +8 if stamped
//   +--------+----------+-------+-------+-----------------------------------+--------+---------+
//   | attempt| pair bytes| pairs | flags | pairs: [klen u8][vlen u16][k][v]...| stamp  | payload |
//   +--------+----------+-------+-------+-----------------------------------+--------+---------+
// Little endian. flags: 0, or kStamped: the 8 bytes after the pairs are the push's stamp (the
// port's stamp clock, stamp_clock.hpp), for its time-in-queue histogram. A record with no
// pairs carries 8 bytes of meta, 16 when stamped.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "bloccs/meta.hpp"
#include "bloccs/result.hpp"

namespace bloccs {

inline constexpr std::size_t kMetaFixed = 8;
inline constexpr std::size_t kStampBytes = 8;
// The most meta a record carries: the encoded meta and its stamp.
inline constexpr std::size_t kMetaWireMax = kMetaMaxBytes + kStampBytes;
inline constexpr std::byte kStamped{1};

struct MetaCodec {
  // Encodes `meta` into `out`; returns the bytes used. Errc::bad_meta past a limit.
  static Result<std::size_t> encode(const Meta& meta, std::span<std::byte, kMetaMaxBytes> out);
  // Splits a record into meta and payload, checking every length against the record.
  // False if the record is not well-formed (a peer wrote garbage): the caller refuses it.
  // `stamp` is the record's stamp, 0 if it has none.
  static bool decode(std::span<const std::byte> record, MetaView& meta,
                     std::span<const std::byte>& payload, std::uint64_t& stamp) noexcept;
  // decode, inline for meta without pairs (the common case): one load of the fixed part.
  [[gnu::always_inline]] static bool decode_fast(std::span<const std::byte> record,
                                                 MetaView& meta,
                                                 std::span<const std::byte>& payload,
                                                 std::uint64_t& stamp) noexcept {
    if (record.size() >= kMetaFixed + kStampBytes) [[likely]] {
      std::uint64_t fixed;  // read once: a peer may rewrite the record meanwhile
      std::memcpy(&fixed, record.data(), sizeof fixed);
      const std::uint64_t rest = fixed >> 32;  // pair bytes, pairs, flags
      if (rest == 0 || rest == kStampedNoPairs) [[likely]] {
        meta.attempt_ = static_cast<std::uint32_t>(fixed);
        meta.pairs_ = 0;
        meta.encoded_ = {};
        const std::size_t at = rest ? kMetaFixed + kStampBytes : kMetaFixed;
        stamp = 0;
        if (rest) std::memcpy(&stamp, record.data() + kMetaFixed, kStampBytes);
        payload = record.subspan(at);
        return true;
      }
    }
    return decode(record, meta, payload, stamp);
  }
  // Marks encoded meta (`head`, as encode wrote it) as stamped and appends `stamp` after it;
  // `out` holds head.size() + kStampBytes. Returns the stamped head.
  static std::span<const std::byte> stamped(std::span<const std::byte> head, std::uint64_t stamp,
                                            std::byte* out) noexcept {
    std::memcpy(out, head.data(), head.size());
    out[7] = kStamped;
    std::memcpy(out + head.size(), &stamp, kStampBytes);
    return {out, head.size() + kStampBytes};
  }
  // Splits a record into its encoded meta without the stamp (`meta`) and what follows the
  // stamp, if any (`rest`: the payload), by the fixed part's lengths alone. False if they do
  // not fit the record (the record is then passed on as it is, and its consumer refuses it).
  static bool split_stamp(std::span<const std::byte> record, std::span<const std::byte>& meta,
                          std::span<const std::byte>& rest) noexcept {
    if (record.size() < kMetaFixed) return false;
    std::uint16_t pair_bytes;
    std::memcpy(&pair_bytes, record.data() + 4, 2);
    const std::byte flags = record[7];
    const std::size_t meta_len = kMetaFixed + pair_bytes;
    const std::size_t stamp_len = flags == kStamped ? kStampBytes : 0;
    if ((flags != std::byte{0} && flags != kStamped) || meta_len > kMetaMaxBytes ||
        meta_len + stamp_len > record.size())
      return false;
    meta = record.first(meta_len);
    rest = record.subspan(meta_len + stamp_len);
    return true;
  }
  // Rewrites the stamp of a stamped head (a loan's, at commit).
  static void restamp(std::span<std::byte> head, std::uint64_t stamp) noexcept {
    std::memcpy(head.data() + head.size() - kStampBytes, &stamp, kStampBytes);
  }

 private:
  static constexpr std::uint64_t kStampedNoPairs = std::uint64_t{1} << 24;  // flags kStamped
};

}  // namespace bloccs
