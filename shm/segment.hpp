// Named POSIX shared-memory segments, created exclusively, validated on open, unmapped by RAII.
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
// The creator writes the header and the body, then stores `ready` last (release); an opener that
// sees `ready` (acquire) sees a fully initialised segment. The checksum (FNV-1a over bytes 0..47)
// catches a header that was overwritten or truncated.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <boost/interprocess/mapped_region.hpp>

#include "bloccs/result.hpp"

namespace bloccs::shm {

inline constexpr std::uint64_t kMagic = 0x0153434F43434C42ull;  // "BLOCCS\x01"
inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr std::uint32_t kReady = 0x52454459;  // "REDY"

enum class SegmentKind : std::uint32_t { ring = 1, registry = 2, port = 3, node = 4 };

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
  mode_t mode = 0600;  // owner-only; 0660 to let the owner's group attach
};

struct OpenOptions {
  bool read_only = false;  // inspection tools map read-only and never write
};

class Segment {
 public:
  // Creates "/bloccs.<ns>.<name>" of `size` bytes (header included), exclusively: an existing
  // name is Errc::already_exists, never reused. The body is zeroed; call publish() once it is
  // initialised. The segment is unlinked when this handle is destroyed, unless disown()ed.
  static Result<Segment> create(std::string_view ns, std::string_view name, SegmentKind kind,
                                std::size_t size, CreateOptions options = {});

  // Opens and validates an existing segment: size, owner uid and mode (fstat), magic, version,
  // checksum, kind and readiness. Each failure is its own Errc with a message saying what to do.
  static Result<Segment> open(std::string_view ns, std::string_view name, SegmentKind kind,
                              OpenOptions options = {});

  // Removes the name from /dev/shm (mappings stay valid). Errc::not_found if absent.
  static Status remove(std::string_view ns, std::string_view name);

  // Removes "<name>" and every "<name>.<anything>" of the namespace: a port's family of segments.
  // Returns how many it removed.
  static std::size_t remove_family(std::string_view ns, std::string_view name);

  // Removes a segment whose creator died before publishing it: one with a complete header that
  // is not ready while its creator is gone, or one whose header is still incomplete (or that is
  // still empty) `empty_grace` after its creation. A header being written is never judged by
  // its creator pid, which may not be there yet. True if it removed one. Used for segments that
  // anybody may create (the registry, a chain's next link).
  static bool remove_if_abandoned(std::string_view ns, std::string_view name,
                                  std::chrono::milliseconds empty_grace);

  Segment(Segment&& other) noexcept
      : name_(std::move(other.name_)),
        region_(std::move(other.region_)),
        creator_pid_(other.creator_pid_),
        inode_(other.inode_),
        unlink_on_close_(std::exchange(other.unlink_on_close_, false)) {}
  Segment& operator=(Segment&&) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  std::byte* base() const noexcept { return static_cast<std::byte*>(region_.get_address()); }
  std::size_t size() const noexcept { return region_.get_size(); }
  const SegmentHeader& header() const noexcept { return *reinterpret_cast<SegmentHeader*>(base()); }
  const std::string& name() const noexcept { return name_; }  // "bloccs.<ns>.<name>"

  // Marks the segment initialised (creator only); openers refuse it until then.
  void publish() noexcept;
  // Removes the name from /dev/shm if it still names the object this handle mapped (and not a
  // newer one created under it since). True if it removed it.
  bool remove_if_still_named() const;
  // Keeps the name in /dev/shm after this handle dies (ownership passes elsewhere). A forked
  // child never unlinks its parent's segment: only the creating process does.
  void disown() noexcept { unlink_on_close_ = false; }

 private:
  Segment(std::string name, boost::interprocess::mapped_region region, bool unlink_on_close)
      : name_(std::move(name)), region_(std::move(region)), unlink_on_close_(unlink_on_close) {}

  std::string name_;
  boost::interprocess::mapped_region region_;
  pid_t creator_pid_ = 0;  // ours, not the shared header's: a peer must not stop our unlink
  ino_t inode_ = 0;        // which object we mapped, whatever its name names later
  bool unlink_on_close_ = false;
};

}  // namespace bloccs::shm
