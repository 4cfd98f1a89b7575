// SPDX-License-Identifier: Apache-2.0
// Named POSIX shared-memory segments: files in a namespace's directory in /dev/shm
// (shm/namespace_dir.hpp), created whole, validated on open, unmapped by RAII.
//
// Every segment starts with this header; what follows it depends on `kind`.
//
//   0          8          12         16                     24         28         32
//   +----------+----------+----------+----------------------+----------+----------+
//   | magic    | version  | kind     | total_size           | uid      | pid      |
//   +----------+----------+----------+----------------------+----------+----------+
//   32                    40                                 48                    56     60     64
//   +----------------------+----------------------------------+---------------------+------+------+
//   | creator start time   | reserved (0)                     | checksum [0,48)     | ready| 0    |
//   +----------------------+----------------------------------+---------------------+------+------+
//
// A segment is made under a temporary name (".new.<pid>.<n>.<name>", which no opener looks
// for), its header and body are written, then publish() stores `ready` (release) and renames it
// into place, failing if the name is taken. So a segment under its name is always complete: one
// whose header does not check out is damaged, never "still being made". The checksum (FNV-1a
// over bytes 0..47) catches a header that was overwritten.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/interprocess/mapped_region.hpp>

#include "shm/pipeline_export.hpp"
#include "bloccs/result.hpp"
#include "shm/fence.hpp"
#include "shm/namespace_dir.hpp"

namespace bloccs::shm {

inline constexpr std::uint64_t kMagic = 0x0153434F43434C42ull;  // "BLOCCS\x01"
inline constexpr std::uint32_t kLayoutVersion = 5;   // 5: stamped meta, time in queue, park ledger
inline constexpr std::uint32_t kReady = 0x52454459;  // "REDY"

enum class SegmentKind : std::uint32_t { ring = 1, registry = 2, port = 3, node = 4, held = 5 };

struct SegmentHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t kind;
  std::uint64_t total_size;
  std::uint32_t creator_uid;
  std::uint32_t creator_pid;
  std::uint64_t creator_start_time;
  std::uint64_t reserved;
  std::uint64_t checksum;
  std::atomic<std::uint32_t> ready;
  std::uint32_t pad;
};
static_assert(sizeof(SegmentHeader) == 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// FNV-1a over the header's first 48 bytes (everything before the checksum).
std::uint64_t header_checksum(const SegmentHeader& h) noexcept;

struct CreateOptions {
  mode_t mode = 0600;  // owner-only; 0660 lets the namespace's group attach (a shared namespace)
  // What the namespace must be if this creates it (or if it exists); nullopt: the
  // environment's BLOCCS_NAMESPACE_GROUP.
  std::optional<Sharing> sharing = std::nullopt;
};

struct OpenOptions {
  bool read_only = false;  // inspection tools map read-only and never write
  // Root only, for `shmctl gc` and `rm`: another user's segment in another user's namespace.
  bool any_owner = false;
};

struct RemoveOptions {
  // Root only, for `shmctl gc`: remove bloccs segments of any user (a dead user's leftovers).
  bool any_owner = false;
};

class BLOCCS_FOR_PIPELINE Segment {
 public:
  // Makes a segment of `size` bytes (header included) that will be named "<name>" in the
  // namespace's directory once published. The body is zeroed; call publish() once it is
  // initialised. Removed when this handle is destroyed, unless disown()ed.
  static Result<Segment> create(std::string_view ns, std::string_view name, SegmentKind kind,
                                std::size_t size, CreateOptions options = {});

  // Opens and validates a published segment: file type, owner and mode (fstat), size, magic,
  // version, checksum, kind and readiness. Each failure is its own Errc with a message saying
  // what to do.
  static Result<Segment> open(std::string_view ns, std::string_view name, SegmentKind kind,
                              OpenOptions options = {});

  // Removes a segment from its namespace (mappings stay valid): one of this user's, or, in a
  // shared namespace, a valid bloccs segment of another member. Never anything else: a file
  // bloccs did not make is refused (Errc::permission_denied, naming its owner). Errc::not_found
  // if absent. The namespace's directory goes with its last segment.
  static Status remove(std::string_view ns, std::string_view name, RemoveOptions options = {});

  // Removes "<name>" and every "<name>.<anything>" of the namespace (a port's family of
  // segments), as remove() would each. Returns how many it removed.
  static std::size_t remove_family(std::string_view ns, std::string_view name,
                                   RemoveOptions options = {});

  // Whether the liveness lock (shm/liveness.hpp) at byte `offset` of segment `name` is held,
  // read straight from the file: for tools judging a segment whose header may be damaged (a
  // live owner's port must not be taken for garbage because a peer scribbled on it).
  // Errc::not_found if there is no such segment, Errc::segment_invalid if it is too small.
  static Result<bool> lock_held(std::string_view ns, std::string_view name, std::size_t offset);

  Segment(Segment&& other) noexcept;
  Segment& operator=(Segment&&) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  std::byte* base() const noexcept { return static_cast<std::byte*>(region_.get_address()); }
  std::size_t size() const noexcept { return region_.get_size(); }
  const SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base()); }
  const std::string& name() const noexcept { return name_; }  // "bloccs.<ns>/<name>"
  const std::string& ns() const noexcept { return ns_; }
  bool published() const noexcept { return tmp_.empty(); }
  // True once a fault hit this mapping (the file was cut short under us: shm/fence.hpp). Every
  // call that uses the segment checks it and returns damage_error() from then on.
  bool damaged() const noexcept {
    // relaxed: set by this process's SIGBUS handler; a late read sees it on the next call.
    return damaged_flag_->load(std::memory_order_relaxed);
  }
  Error damage_error() const;
  // damaged(), or the file under its name is shorter than what we mapped (cut short where no
  // fault showed it yet: the lost part of the last page reads as zeros); such a mapping is
  // marked damaged. A system call: for the paths where something was not found.
  bool intact() const noexcept;

  // Marks the segment initialised and gives it its name (creator only); Errc::already_exists
  // if another segment holds the name (this one is then removed).
  Status publish();
  // Removes the name if it still names the object this handle mapped (and not a newer one made
  // under it since). True if it removed it.
  bool remove_if_still_named() const;
  // Keeps the name in /dev/shm after this handle dies (ownership passes elsewhere). A forked
  // child never unlinks its parent's segment: only the creating process does.
  void disown() noexcept { unlink_on_close_ = false; }

 private:
  Segment(std::string ns, std::string leaf, boost::interprocess::mapped_region region,
          bool unlink_on_close);
  void close_dir() noexcept;

  std::string ns_;
  std::string leaf_;  // the name inside the namespace's directory
  std::string name_;  // "bloccs.<ns>/<leaf>", for messages
  std::string tmp_;   // the temporary name until published
  int dir_fd_ = -1;   // the namespace's directory, kept until published
  boost::interprocess::mapped_region region_;
  pid_t creator_pid_ = 0;  // ours, not the shared header's: a peer must not stop our unlink
  ino_t inode_ = 0;        // which object we mapped, whatever its name names later
  bool unlink_on_close_ = false;
  bool admin_ = false;   // opened by root as any_owner: may remove it from another's namespace
  int fence_slot_ = -1;  // our mapping in the SIGBUS fence
  const std::atomic<bool>* damaged_flag_ = &fence_flag(-1);  // the fence's flag for it
};

}  // namespace bloccs::shm
