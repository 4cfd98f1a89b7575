// SPDX-License-Identifier: Apache-2.0
#include "fuzz_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "shm/namespace_dir.hpp"
#include "shm/process.hpp"

namespace bloccs::fuzz {
namespace {

constexpr const char* kPlaceholder = "fuzz-keeps-this-directory";

// The namespace's directory for the whole run; its destructor removes it and what is in it.
struct Directory {
  std::string name;
  std::string path;
  Directory() {
    const char* env = std::getenv("BLOCCS_FUZZ_NAMESPACE");
    name = env && *env ? env : "fuzz-" + std::to_string(getpid());
    auto dir = shm::NamespaceDir::open_or_create(name, {});
    if (!dir) {
      std::fprintf(stderr, "fuzz: namespace %s: %s\n", name.c_str(), dir.error().message.c_str());
      std::abort();
    }
    path = dir->path();
    // A file that is not a segment: the namespace's last segment removed takes the directory
    // with it otherwise, and every input would make it anew.
    const int fd = openat(dir->fd(), kPlaceholder, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) std::abort();
    close(fd);
  }
  ~Directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

Directory& directory() {
  static Directory d;
  return d;
}

}  // namespace

const std::string& ns() {
  return directory().name;
}

void write_file(std::string_view name, std::span<const std::uint8_t> bytes) {
  const std::string path = directory().path + "/" + std::string(name);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  require(fd >= 0, "creating a file in the fuzz namespace");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    require(n > 0, "writing a file in the fuzz namespace");
    done += static_cast<std::size_t>(n);
  }
  close(fd);
}

void remove_file(std::string_view name) {
  unlink((directory().path + "/" + std::string(name)).c_str());
}

void repair_header(std::span<std::uint8_t> bytes, shm::SegmentKind kind) {
  require(bytes.size() >= sizeof(shm::SegmentHeader), "repair_header on a short input");
  shm::SegmentHeader h;
  std::memcpy(static_cast<void*>(&h), bytes.data(), sizeof h);
  h.magic = shm::kMagic;
  h.version = shm::kLayoutVersion;
  h.kind = static_cast<std::uint32_t>(kind);
  h.total_size = bytes.size();
  h.creator_uid = static_cast<std::uint32_t>(getuid());
  const shm::ProcessId self = shm::self_process();
  h.creator_pid = self.pid;
  h.creator_start_time = self.start_time;
  h.reserved = 0;
  h.checksum = shm::header_checksum(h);
  h.ready.store(shm::kReady, std::memory_order_relaxed);  // relaxed: a private copy
  h.pad = 0;
  std::memcpy(bytes.data(), static_cast<const void*>(&h), sizeof h);
}

std::uint64_t touch(std::span<const std::byte> s) {
  std::uint64_t sum = 0;
  for (std::byte b : s) sum = sum * 31 + static_cast<std::uint8_t>(b);
  return sum;
}

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: property broken: %s\n", what);
  std::abort();
}

std::uint64_t Input::take(std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n && i < 8; ++i) {
    if (size_ == 0) break;
    v |= static_cast<std::uint64_t>(*data_) << (8 * i);
    ++data_;
    --size_;
  }
  return v;
}

}  // namespace bloccs::fuzz
