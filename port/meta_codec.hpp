// SPDX-License-Identifier: Apache-2.0
// How meta lies in a record, in front of the payload:
//
//   0        4          6        7        8
//   +--------+----------+--------+--------+----------------------------------+---------+
//   | attempt| pair bytes| pairs | 0      | pairs: [klen u8][vlen u16][k][v]...| payload |
//   +--------+----------+--------+--------+----------------------------------+---------+
// Little endian. A record with no pairs carries 8 bytes of meta.
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

struct MetaCodec {
  // Encodes `meta` into `out`; returns the bytes used. Errc::bad_meta past a limit.
  static Result<std::size_t> encode(const Meta& meta, std::span<std::byte, kMetaMaxBytes> out);
  // Splits a record into meta and payload, checking every length against the record.
  // False if the record is not well-formed (a peer wrote garbage): the caller refuses it.
  static bool decode(std::span<const std::byte> record, MetaView& meta,
                     std::span<const std::byte>& payload) noexcept;
  // decode, inline for meta without pairs (the common case): one load of the fixed part.
  static bool decode_fast(std::span<const std::byte> record, MetaView& meta,
                          std::span<const std::byte>& payload) noexcept {
    if (record.size() >= kMetaFixed) [[likely]] {
      std::uint64_t fixed;  // read once: a peer may rewrite the record meanwhile
      std::memcpy(&fixed, record.data(), sizeof fixed);
      if ((fixed >> 32) == 0) [[likely]] {  // no pair bytes, no pairs, the zero byte
        meta.attempt_ = static_cast<std::uint32_t>(fixed);
        meta.pairs_ = 0;
        meta.encoded_ = {};
        payload = record.subspan(kMetaFixed);
        return true;
      }
    }
    return decode(record, meta, payload);
  }
};

}  // namespace bloccs
