// SPDX-License-Identifier: Apache-2.0
// Meta decoding (port/meta_codec.hpp) as the consumer runs it on every record a peer wrote:
// a record that decodes has its payload and every pair inside it, within the limits, and
// encodes back to the same bytes; one that does not is refused, never read past its end.
#include <cstring>
#include <vector>

#include "fuzz_support.hpp"
#include "port/meta_codec.hpp"

using namespace bloccs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // A copy of exactly `size` bytes: ASan then sees a read one byte past the record.
  std::vector<std::byte> record(size);
  if (size) std::memcpy(record.data(), data, size);
  MetaView meta;
  std::span<const std::byte> payload;
  std::uint64_t stamp;
  const bool ok = MetaCodec::decode(record, meta, payload, stamp);
  // The inline path the consumer takes agrees with the full decode, on every input.
  MetaView fast_meta;
  std::span<const std::byte> fast_payload;
  std::uint64_t fast_stamp;
  fuzz::require(MetaCodec::decode_fast(record, fast_meta, fast_payload, fast_stamp) == ok,
                "decode_fast accepts what decode accepts");
  if (!ok) return 0;
  fuzz::require(fast_payload.data() == payload.data() && fast_payload.size() == payload.size() &&
                    fast_stamp == stamp && fast_meta.attempt() == meta.attempt() &&
                    fast_meta.size() == meta.size(),
                "decode_fast reads what decode reads");

  const std::byte* begin = record.data();
  const std::byte* end = begin + record.size();
  fuzz::require(payload.data() >= begin && payload.data() + payload.size() <= end,
                "the payload lies inside the record");
  fuzz::require(meta.size() <= kMetaMaxPairs, "at most kMetaMaxPairs pairs");
  std::size_t pairs = 0, bytes = 0;
  meta.for_each([&](std::string_view k, std::string_view v) {
    fuzz::require(!k.empty() && k.size() <= kMetaMaxKey, "a key of 1..kMetaMaxKey bytes");
    fuzz::require(v.size() <= kMetaMaxValue, "a value of at most kMetaMaxValue bytes");
    fuzz::touch(k);
    fuzz::touch(v);
    ++pairs;
    bytes += 3 + k.size() + v.size();
  });
  fuzz::require(pairs == meta.size(), "for_each visits every pair decode counted");
  fuzz::touch(payload);

  // What decoded is what a pusher could have sent: it encodes back to the same meta bytes.
  const Meta copy = meta.copy();
  std::array<std::byte, kMetaMaxBytes> out{};
  auto used = MetaCodec::encode(copy, out);
  fuzz::require(used.ok(), "a decoded meta encodes again");
  fuzz::require(*used == kMetaFixed + bytes, "it encodes to as many bytes as it decoded from");
  const bool stamped = record[7] == kStamped;  // then 8 bytes of stamp follow the meta
  fuzz::require(static_cast<std::size_t>(payload.data() - begin) ==
                    *used + (stamped ? kStampBytes : 0),
                "the payload starts where the meta (and its stamp) ends");
  std::vector<std::byte> unstamped(begin, begin + *used);
  unstamped[7] = std::byte{0};
  fuzz::require(std::memcmp(out.data(), unstamped.data(), *used) == 0,
                "it encodes to the same bytes (but for the stamped flag)");
  return 0;
}
