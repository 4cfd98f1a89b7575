// SPDX-License-Identifier: Apache-2.0
// The held store's pages (port/held_store.hpp) as a dead owner's timer may have left them, or a
// peer with write access may have written them, read by the take-over (read_held). Each page is
// read or counted unreadable; every message handed out is within max_message, once per seq,
// in due order; nothing may crash or read past a page.
//
// Input: [max_message: 2][due_end: 5][pages: 1 byte, 1..3][page size: 2 per page][page bytes,
// one after another]. Headers are made to pass when bit 7 of the page count is clear.
#include <algorithm>
#include <set>
#include <vector>

#include "fuzz_support.hpp"
#include "port/held_store.hpp"

using namespace bloccs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const auto max_message = static_cast<std::uint32_t>(in.take(2));
  const std::uint64_t due_end = in.take(5);
  const std::uint64_t pages_byte = in.take(1);
  const std::uint32_t pages = 1 + pages_byte % 3;
  std::vector<std::size_t> sizes(pages);
  for (auto& s : sizes) s = port::kHeldPageData + in.take(2) % 4096;
  std::span<const std::uint8_t> rest = in.rest();
  for (std::uint32_t k = 0; k < pages; ++k) {
    std::vector<std::uint8_t> page(sizes[k]);
    const std::size_t n = std::min(page.size(), rest.size());
    std::copy_n(rest.begin(), n, page.begin());
    rest = rest.subspan(n);
    if (!(pages_byte & 0x80)) fuzz::repair_header(page, shm::SegmentKind::held);
    fuzz::write_file(port::held_page_name("ctl", k), page);
  }

  const port::HeldRead r = port::read_held(fuzz::ns(), "ctl", max_message, due_end);
  fuzz::require(r.unreadable_pages <= pages, "no more unreadable pages than pages");
  std::set<std::uint64_t> seqs;
  for (std::size_t i = 0; i < r.pending.size(); ++i) {
    const port::HeldMessage& m = r.pending[i];
    fuzz::require(m.message.size() <= max_message, "a held message within max_message");
    fuzz::touch(m.message);
    fuzz::require(seqs.insert(m.seq).second, "each seq once");
    if (i > 0) {
      const port::HeldMessage& before = r.pending[i - 1];
      fuzz::require(before.due_ns < m.due_ns || (before.due_ns == m.due_ns && before.seq < m.seq),
                    "by due time, then seq");
    }
  }
  for (std::uint32_t k = 0; k < pages; ++k) fuzz::remove_file(port::held_page_name("ctl", k));
  return 0;
}
