// SPDX-License-Identifier: Apache-2.0
// A namespace's directory, /dev/shm/bloccs.<ns>/: the one place that decides who may create,
// open and remove the namespace's segments.
//
//   private  mode 0700, the default: its owner's alone.
//   shared   mode 2770, with one group, given deliberately (BLOCCS_NAMESPACE_GROUP, or an
//            option of the process that creates it): every member may create segments in it,
//            they take the directory's group (setgid), and a member may remove another's
//            (no sticky bit), so an owner clears the links its pushers made for it.
//
// A directory appears whole: it is made under a temporary name, given its mode and group, and
// only then renamed into place, so nobody ever sees one half made. A directory that fails the
// checks (another user's and not shared with us, writable by every user, not a directory) is
// refused with its owner's uid, and nothing in it is opened, created or removed; names inside
// a directory nobody else may write cannot be squatted.
#pragma once

#include <sys/types.h>

#include <optional>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "bloccs/result.hpp"

namespace bloccs::shm {

// What a process asks of a namespace's sharing.
struct Sharing {
  // The group the namespace must be shared with; nullopt asks nothing (a namespace this
  // process creates is then private, and an existing one is taken as it is).
  std::optional<gid_t> group;
};

// BLOCCS_NAMESPACE_GROUP (a group name or number), or no requirement if it is unset.
Result<Sharing> sharing_from_environment();
// A group name or number; Errc::bad_config naming it if there is no such group.
Result<gid_t> parse_group(std::string_view text);

enum class DirUse {
  write,    // create, open read-write, remove: the directory must be ours or shared with us
  inspect,  // read-only tools: any directory this process can read (root reads every one)
};

class NamespaceDir {
 public:
  // The namespace's directory; Errc::not_found if it does not exist.
  static Result<NamespaceDir> open(std::string_view ns, DirUse use = DirUse::write);
  // Creates it as `sharing` asks if it does not exist; an existing one must match `sharing`.
  static Result<NamespaceDir> open_or_create(std::string_view ns, const Sharing& sharing);

  NamespaceDir(NamespaceDir&& other) noexcept;
  NamespaceDir& operator=(NamespaceDir&& other) noexcept;
  NamespaceDir(const NamespaceDir&) = delete;
  NamespaceDir& operator=(const NamespaceDir&) = delete;
  ~NamespaceDir();

  int fd() const noexcept { return fd_; }
  const std::string& ns() const noexcept { return ns_; }
  std::string path() const;  // "/dev/shm/bloccs.<ns>"
  bool shared() const noexcept { return shared_; }
  gid_t group() const noexcept { return group_; }
  uid_t owner() const noexcept { return owner_; }
  // Errc::bad_config, saying what differs, unless the directory is as `sharing` asks.
  Status check_sharing(const Sharing& sharing) const;
  // The entries that start with `prefix`, temporary ones (".new.*") left out.
  std::vector<std::string> list(std::string_view prefix = {}) const;
  // Removes the directory if nothing is left in it (the namespace's last segment is gone).
  void remove_if_empty() const;

 private:
  NamespaceDir(int fd, std::string ns) : fd_(fd), ns_(std::move(ns)) {}
  Status check(DirUse use);  // fills owner_, group_, shared_ from fstat, and judges them

  int fd_ = -1;
  std::string ns_;
  uid_t owner_ = 0;
  gid_t group_ = 0;
  bool shared_ = false;
};

// The namespaces that have a directory in /dev/shm, sorted (for tools).
std::vector<std::string> list_namespaces();

// The directories that processes killed while making namespace `ns` left under their
// temporary name (.bloccs.<ns>.new.<pid>.<n>, made whole there, never renamed into place),
// untouched for `min_age` or more: a making takes microseconds, so an older one is abandoned.
// Names relative to /dev/shm, sorted. For shmctl gc.
std::vector<std::string> unfinished_namespace_dirs(const std::string& ns,
                                                   std::chrono::seconds min_age);
// Removes one of those (it holds nothing: segments are made only once it is in place).
Status remove_unfinished_namespace_dir(const std::string& name);

// Whether this process is a member of `gid` (effective or supplementary).
bool in_group(gid_t gid);

}  // namespace bloccs::shm
